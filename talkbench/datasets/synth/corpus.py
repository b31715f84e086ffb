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

import json
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from talkbench.cache import atomic_write, cache_dir, save_json_atomic
from talkbench.datasets.synth.articulation import PARAMS, segments, trajectory
from talkbench.datasets.synth.face import apply, face_landmarks, make_identity, pose_matrix, render
from talkbench.datasets.synth.speech import VOICES, synthesize
from talkbench.errors import ConfigError, DatasetError

CORPUS_VERSION = "synth-lrs2-1"
FPS = 25
SR = 16000
N_IDENTITIES = 120
SPLIT_SEEDS = {"train": 11, "val": 22, "test": 33}
DEFAULT_CLIPS = {"train": 1200, "val": 60, "test": 200}
WORDS_FILE = Path(__file__).resolve().parent / "lrw_words.txt"


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    size: int
    min_words: int
    max_words: int


SPECS = {"synth-lrs2": CorpusSpec("synth-lrs2", 160, 4, 12)}


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


def _clip_plan(spec: CorpusSpec, split: str, index: int, seed: int, vocab: list[str]) -> dict:
    rng = np.random.default_rng([seed, SPLIT_SEEDS[split], index])
    n = int(rng.integers(spec.min_words, spec.max_words + 1))
    text = " ".join(vocab[int(i)] for i in rng.integers(0, len(vocab), n))
    return {
        "text": text, "voice": VOICES[int(rng.integers(len(VOICES)))], "rate": int(rng.integers(140, 190)),
        "pitch": int(rng.integers(30, 75)), "identity": int(rng.integers(N_IDENTITIES)),
        "motion_seed": int(rng.integers(2**31)),
    }


def render_clip(spec: CorpusSpec, plan: dict, seed: int) -> dict:
    """Audio, frames, landmarks and parameters of one clip (pure function of ``plan`` and ``seed``)."""
    utt = synthesize(plan["text"], plan["voice"], plan["rate"], plan["pitch"], SR)
    n_frames = int(np.ceil(len(utt.audio) / SR * FPS))
    audio = np.zeros(n_frames * SR // FPS, np.float32)
    audio[: len(utt.audio)] = utt.audio[: len(audio)]
    segs = segments([(p.phone, p.start, p.end) for p in utt.phones], [w[1] for w in utt.words])
    times = (np.arange(n_frames) + 0.5) / FPS  # frame k shows the mouth at the middle of its interval
    params = trajectory(segs, times)
    identity = make_identity(plan["identity"], seed)
    rng = np.random.default_rng(plan["motion_seed"])
    ph = rng.uniform(0, 2 * np.pi, 4)
    f = rng.uniform(0.15, 0.5, 4)
    t = np.arange(n_frames) / FPS
    angle = 0.04 * np.sin(2 * np.pi * f[0] * t + ph[0])
    dx = 0.015 * np.sin(2 * np.pi * f[1] * t + ph[1])
    dy = 0.012 * np.sin(2 * np.pi * f[2] * t + ph[2])
    scale = 1 + 0.02 * np.sin(2 * np.pi * f[3] * t + ph[3])
    blink = np.zeros(n_frames)
    for start in np.flatnonzero(rng.random(n_frames) < 0.012):
        blink[start : start + 4] = np.maximum(blink[start : start + 4], [0.5, 1.0, 1.0, 0.5][: min(4, n_frames - start)])
    frames = np.empty((n_frames, spec.size, spec.size, 3), np.uint8)
    lms = np.empty((n_frames, 68, 2), np.float32)
    for k in range(n_frames):
        m = pose_matrix(spec.size, angle[k], dx[k], dy[k], scale[k])
        px = apply(m, face_landmarks(identity, params[k], blink[k]))
        frames[k] = render(identity, px, params[k], spec.size, m)
        lms[k] = px
    return {
        "audio": audio, "frames": frames, "landmarks": lms, "params": params.astype(np.float32),
        "phonemes": [{"phone": s.phone, "start": s.start, "end": s.end} for s in segs],
        "words": [{"word": w, "start": s, "end": e} for w, s, e in utt.words],
        "identity": identity.to_dict(),
    }


def _write_clip(args: tuple) -> str:
    from talkbench.io.video import write_video

    spec, split, index, seed, vocab, root = args
    plan = _clip_plan(spec, split, index, seed, vocab)
    video_id = f"{SPLIT_SEEDS[split]:02d}{index // 10:08d}"
    clip_id = f"{index % 10:05d}"
    rel = f"{video_id}/{clip_id}"
    folder = root / "mvlrs_v1" / "main" / video_id
    stem = folder / clip_id
    if (stem.with_suffix(".meta.json")).exists():  # written last: the clip is complete
        return rel
    clip = render_clip(spec, plan, seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_video(stem.with_suffix(".mp4"), clip["frames"], clip["audio"], FPS, SR, codec="pcm")
    with atomic_write(stem.with_suffix(".txt"), "w") as f:
        f.write(f"Text:  {plan['text'].upper()}\nConf:  4\n")
    with atomic_write(stem.with_suffix(".landmarks.npy")) as f:
        np.save(f, clip["landmarks"])
    with atomic_write(stem.with_suffix(".artic.npz")) as f:
        np.savez(f, params=clip["params"], names=np.array(PARAMS))
    save_json_atomic(stem.with_suffix(".align.json"),
                     {"phonemes": clip["phonemes"], "words": clip["words"], "fps": FPS, "sample_rate": SR})
    save_json_atomic(stem.with_suffix(".meta.json"), {"corpus_version": CORPUS_VERSION, "seed": seed, "split": split,
                                                       "index": index, "plan": plan, "identity": clip["identity"],
                                                       "photo": False})
    return rel


def build_corpus(corpus: str = "synth-lrs2", out: str | Path | None = None, clips: int | dict[str, int] | None = None,
                 seed: int = 0, splits: tuple[str, ...] = ("test",), progress: bool = True, workers: int | None = None) -> Path:
    """Generate ``splits`` of ``corpus`` into ``out`` (idempotent: finished clips are kept)."""
    if corpus not in SPECS:
        raise ConfigError(f"unknown synthetic corpus {corpus!r}; available: {', '.join(SPECS)}")
    spec = SPECS[corpus]
    root = Path(out) if out else cache_dir() / "synth" / f"{CORPUS_VERSION}-seed{seed}"
    manifest = root / "CORPUS.json"
    info = {"corpus": corpus, "version": CORPUS_VERSION, "seed": seed, "splits": {}}
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old.get("version") != CORPUS_VERSION or old.get("seed") != seed or old.get("corpus") != corpus:
            raise DatasetError(f"folder holds a different corpus ({old.get('corpus')} {old.get('version')} seed "
                               f"{old.get('seed')}); refusing to overwrite it with {corpus} {CORPUS_VERSION} seed {seed}", root)
        info = old
    elif root.exists() and any(root.iterdir()):
        raise DatasetError("output folder is not empty and holds no CORPUS.json; refusing to write into it", root)
    vocab = load_vocabulary()
    workers = workers or min(2, os.cpu_count() or 1)
    for split in splits:
        if split not in SPLIT_SEEDS:
            raise ConfigError(f"unknown split {split!r}; use {', '.join(SPLIT_SEEDS)}")
        n = clips.get(split, DEFAULT_CLIPS[split]) if isinstance(clips, dict) else (clips or DEFAULT_CLIPS[split])
        jobs = [(spec, split, i, seed, vocab, root) for i in range(n)]
        (root / "mvlrs_v1").mkdir(parents=True, exist_ok=True)
        rels: list[str] = []
        bar = tqdm(total=n, desc=f"synth {corpus}/{split}", unit="clip", disable=not progress)
        if workers > 1 and n > 1:
            with mp.get_context("fork").Pool(workers) as pool:
                for rel in pool.imap(_write_clip, jobs, chunksize=2):
                    rels.append(rel)
                    bar.update(1)
        else:
            for job in jobs:
                rels.append(_write_clip(job))
                bar.update(1)
        bar.close()
        with atomic_write(root / "mvlrs_v1" / f"{split}.txt", "w") as f:
            f.write("".join(f"{r}\n" for r in rels))
        info["splits"][split] = n
        save_json_atomic(manifest, info)
    return root


def ensure_corpus(corpus: str = "synth-lrs2", split: str = "test", seed: int = 0) -> Path:
    """The default corpus in the cache, generating ``split`` on first use."""
    root = cache_dir() / "synth" / f"{CORPUS_VERSION}-seed{seed}"
    manifest = root / "CORPUS.json"
    if manifest.exists() and split in json.loads(manifest.read_text()).get("splits", {}):
        return root
    return build_corpus(corpus, root, seed=seed, splits=(split,))
