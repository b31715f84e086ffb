"""Build the synthetic corpus in a real dataset's on-disk layout (LRS2 for ``synth-lrs2``).

Each clip: espeak-ng speech (voice, rate and pitch drawn per clip) -> phoneme timings ->
coarticulated articulation at 25 fps -> a procedural identity with head motion and blinks -> frames.
Written as H.264 + PCM (bit-exact audio) in ``mvlrs_v1/main/<video_id>/<clip>.mp4`` with the LRS2
``.txt`` transcript and sidecars: ``.align.json`` (phonemes and words, seconds), ``.landmarks.npy``
(T, 68, 2 exact landmarks), ``.artic.npz`` (articulation parameters), ``.meta.json`` (identity,
voice, seeds, corpus version). Everything derives from (corpus, split, clip index, seed) so the same
corpus version and seed produce identical audio samples and frames.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from talkbench.cache import atomic_write, cache_dir, save_json_atomic
from talkbench.datasets.synth.articulation import PARAMS, segments, trajectory
from talkbench.datasets.synth.face import apply, face_landmarks, make_identity, pose_matrix, render
from talkbench.datasets.synth.photo import PORTRAITS, PhotoFace, portraits, render_photo
from talkbench.datasets.synth.speech import VOICES, synthesize
from talkbench.errors import ConfigError, DatasetError
from talkbench.progress import shown

# Bumped when a seed's clips change. lrs2-2 / lrw-2 / hdtf-3: encoded with x264's C paths, the same bytes
# whatever the process encoded before (earlier versions' files depended on that history).
CORPUS_VERSION = "synth-lrs2-2"
VERSIONS = {"synth-lrs2": CORPUS_VERSION, "synth-lrw": "synth-lrw-2", "synth-hdtf": "synth-hdtf-3"}
LRW_FRAMES = 29  # LRW: 1.16 s windows with the target word centred
FPS = 25
SR = 16000
N_IDENTITIES = 120
SPLIT_SEEDS = {"train": 11, "val": 22, "test": 33}
DEFAULT_CLIPS = {"train": 1200, "val": 60, "test": 200}
DEFAULT_CLIPS_LRW = {"train": 2000, "val": 500, "test": 500}  # one test clip per word
DEFAULT_CLIPS_HDTF = {"train": 60, "val": 10, "test": 20}  # long 512 px clips: a few per identity
TOP = {"synth-lrs2": "mvlrs_v1", "synth-lrw": "lipread_mp4", "synth-hdtf": "clips"}
WORDS_FILE = Path(__file__).resolve().parent / "lrw_words.txt"


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    size: int
    min_words: int
    max_words: int


SPECS = {"synth-lrs2": CorpusSpec("synth-lrs2", 160, 4, 12),
         # LRW-like: a target word with one context word each side (cut to 29 frames around it).
         "synth-lrw": CorpusSpec("synth-lrw", 256, 1, 1),
         # HDTF-like: long monologues (about 10-25 s) at HDTF's distributed resolution, 512 px.
         "synth-hdtf": CorpusSpec("synth-hdtf", 512, 30, 70)}


def load_vocabulary(path: str | Path = WORDS_FILE) -> list[str]:
    """One word per line, letters (and apostrophes) only; a bad line is an error naming the line."""
    p = Path(path)
    if not p.exists():
        raise DatasetError("vocabulary file not found", p)
    words = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        w = line.strip()
        if not w:
            continue
        if not w.replace("'", "").isalpha():
            raise DatasetError(f"line {n}: {w!r} is not a word (letters only)", p)
        words.append(w.lower())
    if not words:
        raise DatasetError("vocabulary file has no words", p)
    return words


def _clip_plan(spec: CorpusSpec, split: str, index: int, seed: int, vocab: list[str],
               photos: tuple[str, ...] = ()) -> dict:
    rng = np.random.default_rng([seed, SPLIT_SEEDS[split], index])
    n = int(rng.integers(spec.min_words, spec.max_words + 1))
    words = [vocab[int(i)] for i in rng.integers(0, len(vocab), n)]
    target = None
    if spec.name == "synth-lrw":  # words take turns, so every class gets clips in every split
        target = vocab[index % len(vocab)]
        words = [vocab[int(rng.integers(len(vocab)))], target, vocab[int(rng.integers(len(vocab)))]]
    text = " ".join(words)
    return {
        "text": text, "target_word": target, "voice": VOICES[int(rng.integers(len(VOICES)))], "rate": int(rng.integers(140, 190)),
        "pitch": int(rng.integers(30, 75)), "identity": int(rng.integers(N_IDENTITIES)),
        "motion_seed": int(rng.integers(2**31)),
        # Photo mode (opt-in): every 4th clip uses a real portrait, taking turns over the portraits.
        "photo": photos[(index // 4) % len(photos)] if photos and index % 4 == 3 else None,
    }


def head_motion(rng: np.random.Generator, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame head pose of a clip: in-plane angle (rad), shifts dx, dy (fractions of the frame) and
    scale, as :func:`face.pose_matrix` takes them. Draws 8 numbers from ``rng`` (a clip's
    ``default_rng(plan["motion_seed"])``, which then goes on to draw the blinks)."""
    ph = rng.uniform(0, 2 * np.pi, 4)
    f = rng.uniform(0.15, 0.5, 4)
    t = np.arange(n_frames) / FPS
    angle = 0.04 * np.sin(2 * np.pi * f[0] * t + ph[0])
    dx = 0.015 * np.sin(2 * np.pi * f[1] * t + ph[1])
    dy = 0.012 * np.sin(2 * np.pi * f[2] * t + ph[2])
    scale = 1 + 0.02 * np.sin(2 * np.pi * f[3] * t + ph[3])
    return angle, dx, dy, scale


def render_clip(spec: CorpusSpec, plan: dict, seed: int) -> dict:
    """Audio, frames, landmarks and parameters of one clip (pure function of ``plan`` and ``seed``)."""
    utt = synthesize(plan["text"], plan["voice"], plan["rate"], plan["pitch"], SR)
    t0 = 0.0
    if plan.get("target_word") is not None:
        # LRW window: 29 frames centred on the middle of the target (second) word; zero audio where the
        # window runs past the utterance. Alignment times are shifted to the window's clock.
        _, ws, we = utt.words[1]
        n_frames = LRW_FRAMES
        t0 = round((ws + we) / 2 * FPS - n_frames / 2) / FPS
    else:
        n_frames = int(np.ceil(len(utt.audio) / SR * FPS))
    audio = np.zeros(n_frames * SR // FPS, np.float32)
    first = int(round(t0 * SR))
    src = utt.audio[max(0, first): max(0, first + len(audio))]
    dst = max(0, -first)
    audio[dst: dst + len(src)] = src[: len(audio) - dst]
    segs = segments([(p.phone, p.start, p.end) for p in utt.phones], [w[1] for w in utt.words])
    times = t0 + (np.arange(n_frames) + 0.5) / FPS  # frame k shows the mouth at the middle of its interval
    params = trajectory(segs, times)
    identity = make_identity(plan["identity"], seed)
    rng = np.random.default_rng(plan["motion_seed"])
    angle, dx, dy, scale = head_motion(rng, n_frames)
    blink = np.zeros(n_frames)
    for start in np.flatnonzero(rng.random(n_frames) < 0.012):
        blink[start : start + 4] = np.maximum(blink[start : start + 4], [0.5, 1.0, 1.0, 0.5][: min(4, n_frames - start)])
    frames = np.empty((n_frames, spec.size, spec.size, 3), np.uint8)
    lms = np.empty((n_frames, 68, 2), np.float32)
    photo = _photo_face(plan["photo"], spec.size) if plan.get("photo") else None
    for k in range(n_frames):
        if photo is not None:  # no blinks: the portrait's eyes are not re-drawn
            frames[k], lms[k] = render_photo(photo, params[k], pose_matrix(spec.size, angle[k], dx[k], dy[k], scale[k]),
                                             spec.size)
            continue
        m = pose_matrix(spec.size, angle[k], dx[k], dy[k], scale[k])
        px = apply(m, face_landmarks(identity, params[k], blink[k]))
        frames[k] = render(identity, px, params[k], spec.size, m)
        lms[k] = px
    return {
        "audio": audio, "frames": frames, "landmarks": lms, "params": params.astype(np.float32),
        "phonemes": [{"phone": s.phone, "start": s.start - t0, "end": s.end - t0} for s in segs],
        "words": [{"word": w, "start": s - t0, "end": e - t0} for w, s, e in utt.words],
        "identity": identity.to_dict() if photo is None else {"photo": photo.source, "sha256": photo.sha256},
    }


@functools.lru_cache(maxsize=8)
def _photo_face(path: str, size: int) -> PhotoFace:
    return PhotoFace.load(path, size)


def _write_clip_safe(args: tuple) -> tuple[str | None, str | None]:
    """(relative clip id, None) or (None, error): one bad clip must not stop a corpus build."""
    try:
        return _write_clip(args), None
    except Exception as exc:  # any per-clip failure is recorded in CORPUS.json, the build goes on
        return None, f"{args[1]}[{args[2]}]: {type(exc).__name__}: {exc}"


def _collect(rel: str | None, err: str | None, rels: list[str], failures: list[str]) -> None:
    if rel:
        rels.append(rel)
    else:
        failures.append(str(err))


def lrs2_rel(split: str, index: int) -> str:
    """``<video_id>/<clip>`` of clip ``index`` of a synth-lrs2 split (fixed by the index alone)."""
    return f"{SPLIT_SEEDS[split]:02d}{index // 10:08d}/{index % 10:05d}"


def default_clips(corpus: str, split: str) -> int:
    return {"synth-lrw": DEFAULT_CLIPS_LRW, "synth-hdtf": DEFAULT_CLIPS_HDTF}.get(corpus, DEFAULT_CLIPS)[split]


def _write_clip(args: tuple) -> str:
    from talkbench.io.video import write_video

    spec, split, index, seed, vocab, root, photos = args
    plan = _clip_plan(spec, split, index, seed, vocab, photos)
    if spec.name == "synth-lrw":  # lipread_mp4/<WORD>/<split>/<WORD>_<NNNNN>.mp4
        word = plan["target_word"].upper()
        clip_id = f"{word}_{index // len(vocab) + 1:05d}"
        rel = f"{word}/{split}/{clip_id}"
        folder = root / "lipread_mp4" / word / split
    elif spec.name == "synth-hdtf":  # clips/<Speaker>_<NNN>.mp4, split files in splits/
        clip_id = f"Synth{plan['identity']:03d}_{SPLIT_SEEDS[split]:02d}{index:04d}"
        rel = clip_id
        folder = root / "clips"
    else:  # mvlrs_v1/main/<video_id>/<clip>.mp4
        rel = lrs2_rel(split, index)
        video_id, clip_id = rel.split("/")
        folder = root / "mvlrs_v1" / "main" / video_id
    stem = folder / clip_id
    if (stem.with_suffix(".meta.json")).exists():  # written last: the clip is complete
        return rel
    clip = render_clip(spec, plan, seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_video(stem.with_suffix(".mp4"), clip["frames"], clip["audio"], FPS, SR, codec="pcm", portable=True)
    with atomic_write(stem.with_suffix(".txt"), "w") as f:
        if spec.name == "synth-lrw":
            w = clip["words"][1]
            f.write(f"Text: {word}\nConf: 4\n\nDuration: {w['end'] - w['start']:.2f} seconds\n")
        else:
            f.write(f"Text:  {plan['text'].upper()}\nConf:  4\n")
    with atomic_write(stem.with_suffix(".landmarks.npy")) as f:
        np.save(f, clip["landmarks"])
    with atomic_write(stem.with_suffix(".artic.npz")) as f:
        np.savez(f, params=clip["params"], names=np.array(PARAMS))
    save_json_atomic(stem.with_suffix(".align.json"),
                     {"phonemes": clip["phonemes"], "words": clip["words"], "fps": FPS, "sample_rate": SR})
    save_json_atomic(stem.with_suffix(".meta.json"), {"corpus_version": VERSIONS[spec.name], "seed": seed, "split": split,
                                                       "index": index, "plan": plan, "identity": clip["identity"],
                                                       "photo": plan["photo"] is not None})
    return rel


def build_corpus(corpus: str = "synth-lrs2", out: str | Path | None = None, clips: int | dict[str, int] | None = None,
                 seed: int = 0, splits: tuple[str, ...] = ("test",), progress: bool = True, workers: int | None = None,
                 photo: bool = False, partial_ok: bool = False) -> Path:
    """Generate ``splits`` of ``corpus`` into ``out`` (idempotent: finished clips are kept).

    Args:
        corpus: ``synth-lrs2`` (LRS2 layout, 160 px sentences) or ``synth-lrw`` (LRW layout, 29 frames).
        out: output folder; None: the cache's default location for this version and seed.
        clips: clips per split (an int for every split, or a dict split -> count); None: the defaults.
        seed: corpus seed (with the version, it fixes every sample and frame).
        splits: which splits to write.
        progress: show a progress bar.
        workers: processes (default up to 2).
        partial_ok: accept a folder without CORPUS.json (an interrupted build of this corpus, see
            :func:`ensure_corpus`); otherwise such a non-empty folder is refused.
        photo: every 4th clip uses a real portrait from ``shared/data/real/portraits`` beside the repository (or ``$TALKBENCH_PORTRAITS``) (the
            version gets a ``+photo`` suffix and CORPUS.json lists the portraits' hashes). A
            :class:`DatasetError` when the folder is missing.

    Returns:
        The corpus root.
    """
    if corpus not in SPECS:
        raise ConfigError(f"unknown synthetic corpus {corpus!r}; available: {', '.join(SPECS)}")
    spec = SPECS[corpus]
    version = VERSIONS[corpus] + ("+photo" if photo else "")
    photos: tuple[str, ...] = ()
    if photo:
        usable, skipped = [], {}
        for p in portraits():
            try:
                _photo_face(str(p), spec.size)
                usable.append(str(p))
            except DatasetError as exc:  # e.g. no face found: leave that portrait out, say so
                skipped[p.name] = str(exc)
        photos = tuple(usable)
        info_photo_skipped = skipped
        if not photos:
            raise DatasetError("photo mode needs portraits, none found", PORTRAITS)
    root = Path(out) if out else cache_dir() / "synth" / f"{version}-seed{seed}"
    manifest = root / "CORPUS.json"
    info = {"corpus": corpus, "version": version, "seed": seed, "splits": {}}
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old.get("version") != version or old.get("seed") != seed or old.get("corpus") != corpus:
            raise DatasetError(f"folder holds a different corpus ({old.get('corpus')} {old.get('version')} seed "
                               f"{old.get('seed')}); refusing to overwrite it with {corpus} {version} seed {seed}", root)
        info = old
    elif root.exists() and any(root.iterdir()) and not partial_ok:
        raise DatasetError("output folder is not empty and holds no CORPUS.json; refusing to write into it", root)
    vocab = load_vocabulary()
    workers = workers or min(2, os.cpu_count() or 1)
    for split in splits:
        if split not in SPLIT_SEEDS:
            raise ConfigError(f"unknown split {split!r}; use {', '.join(SPLIT_SEEDS)}")
        defaults = {"synth-lrw": DEFAULT_CLIPS_LRW, "synth-hdtf": DEFAULT_CLIPS_HDTF}.get(corpus, DEFAULT_CLIPS)
        n = clips.get(split, defaults[split]) if isinstance(clips, dict) else (clips or defaults[split])
        jobs = [(spec, split, i, seed, vocab, root, photos) for i in range(n)]
        top = root / TOP[corpus]
        top.mkdir(parents=True, exist_ok=True)
        rels: list[str] = []
        failures: list[str] = []
        bar = tqdm(total=n, desc=f"synth {corpus}/{split}", unit="clip", disable=not shown(progress))
        if workers > 1 and n > 1:
            with mp.get_context("fork").Pool(workers) as pool:
                for rel, err in pool.imap(_write_clip_safe, jobs, chunksize=2):
                    _collect(rel, err, rels, failures)
                    bar.update(1)
        else:
            for job in jobs:
                rel, err = _write_clip_safe(job)
                _collect(rel, err, rels, failures)
                bar.update(1)
        bar.close()
        if failures:
            info.setdefault("failures", {})[split] = failures
            tqdm.write(f"{len(failures)} clip(s) of {split} failed (listed in CORPUS.json): {failures[0]}")
        if corpus == "synth-lrw":
            info["splits"][split] = n
            # LRW has no split files: every word folder holds every split folder (empty when a small
            # build gave that word no clip in a split), so the reader finds no missing folders.
            for word_dir in (p for p in top.iterdir() if p.is_dir()):
                for s in info["splits"]:
                    (word_dir / s).mkdir(exist_ok=True)
        else:
            split_dir = root / "splits" if corpus == "synth-hdtf" else top
            split_dir.mkdir(exist_ok=True)
            with atomic_write(split_dir / f"{split}.txt", "w") as f:
                f.write("".join(f"{r}\n" for r in rels))
            info["splits"][split] = n
        if photos:
            info["portraits_skipped"] = info_photo_skipped
            info["portraits"] = {Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in photos}
        save_json_atomic(manifest, info)
    return root


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock (released when the process dies, so a crash leaves no stale lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _has_split(root: Path, split: str) -> bool:
    manifest = root / "CORPUS.json"
    try:
        return manifest.exists() and split in json.loads(manifest.read_text()).get("splits", {})
    except (OSError, json.JSONDecodeError):
        return False


def ensure_corpus(corpus: str = "synth-lrs2", split: str = "test", seed: int = 0) -> Path:
    """The default corpus in the cache, generating ``split`` on first use.

    Concurrent callers serialise on a lock file beside the corpus, and the one that builds re-checks
    first, so two runs on an empty cache both succeed and the corpus is built once. A first build
    goes to a hidden ``.<name>.building`` folder renamed into place when complete, so an
    interrupted build never leaves a half corpus where readers look (the next build resumes it:
    finished clips are kept). Splits added to an existing corpus are written in place; CORPUS.json
    lists a split only once it is complete.
    """
    if corpus not in SPECS:
        raise ConfigError(f"unknown synthetic corpus {corpus!r}; available: {', '.join(SPECS)}")
    root = cache_dir() / "synth" / f"{VERSIONS[corpus]}-seed{seed}"
    if _has_split(root, split):
        return root
    with _file_lock(root.with_name(f".{root.name}.lock")):
        if _has_split(root, split):  # built by another process while this one waited
            return root
        if (root / "CORPUS.json").exists():
            return build_corpus(corpus, root, seed=seed, splits=(split,))
        building = root.with_name(f".{root.name}.building")
        build_corpus(corpus, building, seed=seed, splits=(split,), partial_ok=True)
        if root.exists():
            # A folder without CORPUS.json: a build interrupted before builds were atomic. Move it
            # aside first so the rename below cannot fail, then drop it (it is our own cache).
            stale = root.with_name(f".{root.name}.stale-{os.getpid()}-{time.time_ns()}")
            root.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        building.rename(root)
        return root


def default_root(corpus: str = "synth-lrs2", seed: int = 0) -> Path:
    return cache_dir() / "synth" / f"{VERSIONS[corpus]}-seed{seed}"


def _ensure_manifest(corpus: str, root: Path, seed: int) -> None:
    """A corpus folder with its CORPUS.json and no split yet, renamed into place whole (call under
    the corpus lock). A folder without CORPUS.json (an interrupted pre-atomic build) is replaced."""
    if (root / "CORPUS.json").exists():
        return
    building = root.with_name(f".{root.name}.skeleton-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    (building / TOP[corpus] / ("main" if corpus == "synth-lrs2" else "")).mkdir(parents=True, exist_ok=True)
    save_json_atomic(building / "CORPUS.json", {"corpus": corpus, "version": VERSIONS[corpus], "seed": seed,
                                                "splits": {}})
    if root.exists():
        stale = root.with_name(f".{root.name}.stale-{os.getpid()}-{time.time_ns()}")
        root.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    building.rename(root)


def ensure_first_clips(split: str, n: int, seed: int = 0, progress: bool = True) -> Path:
    """The first ``n`` clips of a synth-lrs2 split in the cached default corpus, without the rest:
    a run with ``--limit n`` needs only them (the demo: 12 of 200). The clips are exactly those a
    full build writes (each is fixed by its index), and the split is not marked complete: a later
    :func:`ensure_corpus` keeps them and writes the others. Under the same lock as ensure_corpus."""
    corpus = "synth-lrs2"
    root = default_root(corpus, seed)
    if _has_split(root, split):
        return root
    with _file_lock(root.with_name(f".{root.name}.lock")):
        if _has_split(root, split):
            return root
        _ensure_manifest(corpus, root, seed)
        vocab = load_vocabulary()
        n = min(n, default_clips(corpus, split))
        jobs = [(SPECS[corpus], split, i, seed, vocab, root, ()) for i in range(n)
                if not (root / TOP[corpus] / "main" / f"{lrs2_rel(split, i)}.meta.json").exists()]
        bar = tqdm(total=len(jobs), desc=f"synth {corpus}/{split} (first {n})", unit="clip",
                   disable=not shown(progress) or not jobs)
        workers = min(2, os.cpu_count() or 1, len(jobs))
        if workers > 1:
            with mp.get_context("fork").Pool(workers) as pool:
                for _ in pool.imap(_write_clip_safe, jobs):
                    bar.update(1)
        else:
            for job in jobs:
                _write_clip_safe(job)
                bar.update(1)
        bar.close()
    return root
