"""Bad and tricky inputs, built from real and synthetic media and run through the CLI (issue 18):
each case asserts the outcome a user is promised (a number equal to an independent reference, a
named per-item error, exit code 2 with nothing created, a recorded note)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import types
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from talkbench.cli import cli
from talkbench.io.video import read_video, write_video
from tests.conftest import REAL, portrait_frame, talking_frames, tone

ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def score_json(*args: str) -> tuple[int, dict]:
    res = invoke("score", *args, "--json")
    try:
        return res.exit_code, json.loads(res.output.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise AssertionError(f"exit {res.exit_code}: {res.output}") from res.exception


def write_lossless(path: Path, frames_rgb: np.ndarray, pcm16: np.ndarray | None) -> Path:
    """FFV1 (RGB, lossless) + PCM: the CLI decodes exactly these pixels and samples."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("ffv1", rate=25)
        vs.width, vs.height, vs.pix_fmt = frames_rgb.shape[2], frames_rgb.shape[1], "bgr0"
        a = None
        if pcm16 is not None:
            a = c.add_stream("pcm_s16le", rate=16000)
            a.layout = "mono"
        for img in frames_rgb:
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if a is not None:
            for i in range(0, len(pcm16), 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm16[None, i : i + 1024]), format="s16",
                                                layout="mono")
                af.sample_rate, af.pts, af.time_base = 16000, i, Fraction(1, 16000)
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def faststart_copy(src: Path, dst: Path) -> Path:
    """Remux with the index (moov) first, as web-ready mp4s are: a cut file still opens."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "faststart"}) as o:
        out = {s.index: o.add_stream_from_template(s) for s in i.streams if s.type in ("video", "audio")}
        for pkt in i.demux():
            if pkt.dts is None or pkt.stream.index not in out:
                continue
            pkt.stream = out[pkt.stream.index]
            o.mux(pkt)
    return dst


# ---------------------------------------------------------------------------------------------------
# score --crop none: the frames as given, equal to the independent references


def test_crop_none_psnr_ssim_equal_scikit_image_on_native_224(tmp_path: Path, real_data: Path) -> None:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ref = real_data / "videos" / "vox_00086.mp4"
    frames = read_video(ref)[:30]
    shifted = np.stack([cv2.GaussianBlur(np.roll(f, 2, axis=1), (5, 5), 1.0) for f in frames])
    gen = write_video(tmp_path / "gen.mp4", shifted, None)
    code, out = score_json(gen, "--reference", ref, "--metrics", "psnr,ssim", "--crop", "none")
    assert code == 0, out
    assert out["crop_policy"] == "none(native 224x224)"
    g, r = read_video(gen), read_video(ref)[:30]
    psnr = np.mean([peak_signal_noise_ratio(b, a, data_range=255) for a, b in zip(g, r)])
    ssim = np.mean([structural_similarity(a, b, data_range=255, channel_axis=-1, gaussian_weights=True,
                                          sigma=1.5, use_sample_covariance=False) for a, b in zip(g, r)])
    assert out["metrics"]["psnr"] == pytest.approx(psnr, abs=1e-4)
    assert out["metrics"]["ssim"] == pytest.approx(ssim, abs=1e-4)
    # An explicit --size still resizes, and says so.
    code, out = score_json(gen, "--reference", ref, "--metrics", "psnr", "--crop", "none", "--size", "128")
    assert out["crop_policy"] == "none(resize=128)" and out["metrics"]["psnr"] != pytest.approx(psnr, abs=1e-3)


def test_crop_none_lse_equals_syncnet_python_evaluate(tmp_path: Path, real_data: Path) -> None:
    from scipy.io import wavfile

    from talkbench.critics.syncnet import SyncNetS
    from talkbench.io.audio import load_audio
    from tests.test_critics_syncnet import _reference_module

    mods = _reference_module()
    torch.manual_seed(0)
    model = SyncNetS()
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    weights = tmp_path / "syncnet_v2.model"
    torch.save({k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}, weights)

    video = real_data / "videos" / "vox_00086.mp4"  # 224x224 face-centred, as evaluate expects
    n = 40
    frames, audio = read_video(video)[:n], load_audio(video, 16000)[: n * 640]
    work = tmp_path / "work"
    work.mkdir()
    for i, f in enumerate(frames):  # evaluate reads JPEG frames and a wav from its tmp_dir
        cv2.imwrite(str(work / f"{i + 1:06d}.jpg"), f[:, :, ::-1])
    pcm16 = np.round(audio * 32767).astype(np.int16)
    wavfile.write(work / "audio.wav", 16000, pcm16)
    net = mods["SyncNetModel"].S()
    net.load_state_dict(torch.load(weights, weights_only=True), strict=False)
    inst = mods["SyncNetInstance"].SyncNetInstance(net, device="cpu")
    offset, conf, dist = inst.evaluate(types.SimpleNamespace(tmp_dir=str(work), batch_size=20, vshift=15))

    # The CLI gets the very pixels evaluate read (the JPEGs) in a lossless file, and no --size.
    jpeg_rgb = np.stack([cv2.imread(str(work / f"{i + 1:06d}.jpg"))[:, :, ::-1] for i in range(n)])
    clip = write_lossless(tmp_path / "clip.mkv", jpeg_rgb, pcm16)
    code, out = score_json(clip, "--metrics", "lse", "--crop", "none", "--syncnet", weights)
    assert code == 0, out
    assert out["metrics"]["av_offset"] == offset
    assert out["metrics"]["lse_d"] == pytest.approx(dist, abs=1e-4)
    assert out["metrics"]["lse_c"] == pytest.approx(conf, abs=1e-4)


# ---------------------------------------------------------------------------------------------------
# Silent wrong numbers: short audio, truncated files, two faces


def test_audio_shorter_than_video_scores_only_the_overlap(tmp_path: Path) -> None:
    frames = talking_frames(75, size=128)
    write_video(tmp_path / "full.mp4", frames, tone(3.0))
    write_video(tmp_path / "cut.mp4", frames, tone(0.5))
    code, out = score_json(tmp_path / "cut.mp4", "--reference", tmp_path / "full.mp4", "--metrics", "psnr",
                           "--crop", "none")
    assert code == 0, out
    # AAC priming leaves 0.5 s of audio covering 12 frames and part of a 13th.
    assert out["frames"] in (12, 13)
    assert any("cut.mp4" in w and "shorter than the video" in w for w in out["warnings"]), out["warnings"]
    res = invoke("score", tmp_path / "cut.mp4", "--metrics", "psnr", "--reference", tmp_path / "full.mp4",
                 "--crop", "none")
    assert "warning: cut.mp4: audio (0.5" in res.output


def test_truncated_faststart_mp4_is_an_item_failure(tmp_path: Path, real_data: Path) -> None:
    whole = faststart_copy(real_data / "videos" / "vox_00086.mp4", tmp_path / "whole.mp4")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    code, out = score_json(cut, "--reference", whole, "--metrics", "psnr", "--crop", "none")
    assert code == 1 and "truncated" in out["errors"]["input"] and "cut.mp4" in out["errors"]["input"]
    assert "5.20 s" in out["errors"]["input"]
    code, out = score_json(whole, "--reference", whole, "--metrics", "psnr", "--crop", "none")
    assert code == 0 and out["frames"] == 130


def two_face_clip(path: Path, n: int = 10) -> Path:
    """A real face (large, right) and another real face (smaller, left) side by side."""
    big = portrait_frame(300)
    other = cv2.cvtColor(cv2.imread(str(REAL / "portraits" / "vox_517600055_000000.jpg")), cv2.COLOR_BGR2RGB) \
        if (REAL / "portraits" / "vox_517600055_000000.jpg").exists() else portrait_frame(220)
    small = cv2.resize(other, (220, 220), interpolation=cv2.INTER_AREA)
    canvas = np.full((360, 640, 3), 70, np.uint8)
    canvas[70:290, 20:240] = small
    canvas[30:330, 320:620] = big
    return write_video(path, np.repeat(canvas[None], n, axis=0), tone(n / 25))


def test_two_faces_are_counted_and_the_pick_is_named(tmp_path: Path, real_data: Path) -> None:
    clip = two_face_clip(tmp_path / "two.mp4")
    code, out = score_json(clip, "--reference", clip, "--metrics", "psnr")
    assert code == 0, out
    assert out["faces"]["persistent_faces"] == 2 and out["faces"]["max_faces"] == 2
    assert "face 1 by size of 2" in out["faces"]["pick"] and "largest" in out["faces"]["rule"]
    assert any("2 faces in most frames" in w for w in out["warnings"])
    res = invoke("score", clip, "--reference", clip, "--metrics", "psnr")
    assert "faces: 2 (followed the face 1 by size of 2" in res.output
    # One face: nothing to say.
    one = write_video(tmp_path / "one.mp4", talking_frames(10), tone(0.4))
    code, out = score_json(one, "--reference", one, "--metrics", "psnr")
    assert out["faces"]["persistent_faces"] == 1 and not out["warnings"]


# ---------------------------------------------------------------------------------------------------
# Checked early and right: metrics, audio, exit codes, checkpoints, critics


def test_unknown_metric_is_rejected_before_decoding(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4000))
    res = invoke("score", junk, "--metrics", "psnrr")
    assert res.exit_code == 2 and "Did you mean: psnr" in res.output and "cannot open" not in res.output


def test_bad_input_file_is_an_item_failure_exit_1(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4000))
    code, out = score_json(junk, "--metrics", "psnr", "--reference", junk)
    assert code == 1 and "junk.mp4" in out["errors"]["input"]


def test_no_audio_fails_only_audio_metrics(tmp_path: Path) -> None:
    silent = write_video(tmp_path / "silent.mp4", talking_frames(30, size=128), None)
    code, out = score_json(silent, "--reference", silent, "--metrics", "psnr,ssim,lse", "--crop", "none")
    assert code == 1
    assert out["metrics"]["ssim"] == 1.0 and set(out["errors"]) == {"lse"} and "no audio" in out["errors"]["lse"]
    code, out = score_json(silent, "--reference", silent, "--metrics", "psnr,ssim", "--crop", "none")
    assert code == 0 and not out["errors"]


def test_default_metrics_and_critic_named(tmp_path: Path) -> None:
    from talkbench.metrics.sync import default_syncnet_weights
    from talkbench.weights import read_card

    critic = default_syncnet_weights()
    if critic is None:
        pytest.skip("no SyncNet weights available")
    clip = write_video(tmp_path / "clip.mp4", talking_frames(40, size=128), tone(1.6))
    code, out = score_json(clip, "--crop", "none")
    assert code == 0, out
    assert "lse_d" in out["metrics"] and "psnr" not in out["metrics"]  # no reference: no-reference metrics
    code, out = score_json(clip, "--crop", "none", "--reference", clip)
    assert {"psnr", "ssim", "lmd"} <= set(out["metrics"]) and "lse_d" not in out["metrics"]
    res = invoke("score", clip, "--crop", "none")
    assert f"critic for lse: syncnet {critic.name} (sha256 " in res.output
    synthetic = str(read_card(critic).get("data", {}).get("dataset", "")).startswith("synth")
    assert ("SYNTHETIC critic" in res.output) == synthetic


def test_checkpoint_messages(tmp_path: Path, talking_clip: Path) -> None:
    rand = tmp_path / "random.pth"
    rand.write_bytes(np.random.default_rng(0).bytes(5000))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, evil)
    old = tmp_path / "old.pth"
    torch.save({"w": torch.zeros(2)}, old, _use_new_zipfile_serialization=False, pickle_protocol=4)
    outs = {}
    for f in (rand, evil, old):
        with _no_warnings():
            outs[f.name] = invoke("score", talking_clip, "--metrics", "lse", "--crop", "none", "--syncnet", f)
    for name, res in outs.items():
        assert res.exit_code == 1 and name in res.output, res.output
        assert "weights_only" not in res.output and "pickle protocol" not in res.output
    assert "not a readable PyTorch checkpoint" in outs["random.pth"].output
    assert "code execution" not in outs["random.pth"].output
    assert "needs code execution" in outs["evil.pth"].output and "pwned" not in outs["evil.pth"].output
    assert "not a readable PyTorch checkpoint" in outs["old.pth"].output


class _no_warnings:
    """Fails if the body emits any Python warning (PyTorch's pickle-protocol one in particular)."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.caught = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        msgs = [str(w.message) for w in self.caught if "pickle" in str(w.message)]
        assert not msgs, msgs
        return False


# ---------------------------------------------------------------------------------------------------
# run: configuration checked before a run directory exists


@pytest.mark.parametrize("args, needle", [
    (["--limit", "-1"], "-1"),
    (["--limit", "0"], "0"),
    (["--metrics", "psnrr"], "Did you mean: psnr"),
    (["--methods", "statik"], "Did you mean: static"),
    (["--dataset", "lrs3"], "unknown dataset"),
    (["--dataset", "folder", "--root", "/nonexistent/talkbench"], "does not exist"),
    (["--split", "tset"], "unknown split"),
])
def test_run_config_errors_exit_2_and_create_nothing(tmp_path: Path, args: list[str], needle: str) -> None:
    root = tmp_path / "data"
    root.mkdir()
    write_video(root / "a.mp4", talking_frames(8, size=64), tone(0.32))
    base = {"--methods": "static", "--metrics": "psnr", "--dataset": "folder", "--root": str(root)}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    run_dir = tmp_path / "run"
    res = invoke("run", *[x for kv in base.items() for x in kv], "--run-dir", run_dir, "--no-report")
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert not run_dir.exists()


def test_same_stem_videos_are_an_error_naming_both(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    write_video(root / "x.mp4", talking_frames(8, size=64), tone(0.32))
    write_video(root / "x.mov", talking_frames(8, size=64), tone(0.32))
    res = invoke("run", "--methods", "static", "--metrics", "psnr", "--dataset", "folder", "--root", root,
                 "--run-dir", tmp_path / "run", "--no-report")
    assert res.exit_code == 2 and "x.mp4" in res.output and "x.mov" in res.output, res.output


# ---------------------------------------------------------------------------------------------------
# Files and memory


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_files_follow_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        cache = tmp_path / "cache"
        os.environ["TALKBENCH_CACHE"], saved = str(cache), os.environ.get("TALKBENCH_CACHE")
        clip = write_video(tmp_path / "c.mp4", talking_frames(8, size=64), tone(0.32))
        code, _ = score_json(clip, "--reference", clip, "--metrics", "psnr", "--crop", "none")
        assert code == 0
    finally:
        os.umask(old)
        os.environ["TALKBENCH_CACHE"] = saved or ""
    written = [p for p in cache.rglob("*") if p.is_file()]
    assert written
    for p in written:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask, p


def test_clip_loading_streams_with_bounded_memory(tmp_path: Path) -> None:
    """A 1280x720 clip of 100 frames is 276 MB decoded; load_clip (crop auto) holds chunks, not it."""
    import tracemalloc

    from talkbench.faces.crop import load_clip
    from talkbench.types import Sample

    face = portrait_frame(360)
    frames = np.full((100, 720, 1280, 3), 60, np.uint8)
    for t in range(100):
        x = 400 + 2 * t
        frames[t, 180:540, x : x + 360] = face
    path = write_video(tmp_path / "hd.mp4", frames, tone(4.0))
    full = frames.nbytes
    del frames
    tracemalloc.start()
    clip = load_clip(Sample("folder", "t", "hd", path), size=128, cache=False, landmarks=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert clip.frames.shape == (100, 128, 128, 3) and clip.meta["frames_without_face"] == 0
    assert peak < full / 4, f"peak {peak / 2**20:.0f} MB vs {full / 2**20:.0f} MB decoded"



# ---------------------------------------------------------------------------------------------------
# The synthetic corpus in an empty (or interrupted) cache, two runs at once

DRIVER = """
import sys
import talkbench.datasets.synth.corpus as corpus
corpus.DEFAULT_CLIPS = {"train": 2, "val": 2, "test": 3}  # a tiny default corpus for the test
from talkbench.cli import main
sys.argv = ["talkbench", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_concurrent_first_runs_on_an_interrupted_cache_both_succeed(tmp_path: Path) -> None:
    from talkbench.datasets.synth.corpus import VERSIONS

    cache = tmp_path / "cache"
    stale = cache / "synth" / f"{VERSIONS['synth-lrs2']}-seed0"
    (stale / "mvlrs_v1" / "main").mkdir(parents=True)  # what a killed first build used to leave
    (stale / "mvlrs_v1" / "main" / "half.mp4").write_bytes(b"\0" * 100)
    env = {**os.environ, "TALKBENCH_CACHE": str(cache), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "TALKBENCH_GEN_CACHE": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", DRIVER, "run", "--methods", "static", "--metrics", "psnr",
                               "--crop", "none", "--limit", "2", "--no-report", "--run-dir", str(tmp_path / f"run{i}")],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
        assert "samples: 2" in out
    corpus = json.loads((stale / "CORPUS.json").read_text())
    # `--limit 2` builds only the two clips it uses (the split is not marked complete), once, for both runs
    assert "test" not in corpus["splits"] and not (stale / "mvlrs_v1" / "main" / "half.mp4").exists()
    assert len(list((stale / "mvlrs_v1" / "main").rglob("*.mp4"))) == 2
    assert not [p for p in (cache / "synth").iterdir() if ".building" in p.name or ".stale" in p.name]


# ---------------------------------------------------------------------------------------------------
# run: identity by content, retry on resume, per-item failures that never end the run


def folder(tmp_path: Path, n: int = 2, frames: int = 25) -> Path:
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    for i in range(n):
        write_video(root / f"clip{i}.mp4", talking_frames(frames, size=128, dx=0.5 + i), tone(frames / 25, freq=200 + 40 * i))
    return root


def run_cli(root: Path, run_dir: Path, *extra: str, methods: str = "static", metrics: str = "psnr"):
    return invoke("run", "--methods", methods, "--metrics", metrics, "--dataset", "folder", "--root", root,
                  "--crop", "none", "--no-report", "--no-gen-cache", "--run-dir", run_dir, *extra)


def store_rows(run_dir: Path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(run_dir / "results.sqlite") as c:
        return c.execute("SELECT method, sample_id, metric, value, error FROM results ORDER BY 1, 2, 3").fetchall()


def perturbed_copy(src: Path, dst: Path, scale: float) -> Path:
    from safetensors.torch import load_file, save_file

    sd = load_file(str(src))
    k = next(k for k, v in sd.items() if v.is_floating_point() and v.ndim > 1)
    sd[k] = sd[k] * scale
    save_file(sd, str(dst))
    dst.with_suffix(".json").write_text(src.with_suffix(".json").read_text())  # the card (architecture config)
    return dst


def test_a_run_on_another_synthetic_corpus_version_is_not_resumed(tmp_path: Path) -> None:
    """synth-lrs2's reader roots at mvlrs_v1/, its CORPUS.json is one level up: the run's identity must
    still carry the corpus version, so rows made on a corpus version 1 (whose clips differed from build
    to build) are never mixed with rows made on version 2."""
    from talkbench.datasets.synth.corpus import VERSIONS, build_corpus

    root = build_corpus("synth-lrs2", tmp_path / "corpus", clips=1, progress=False, workers=1)
    run_dir = tmp_path / "run"
    args = ("run", "--methods", "static", "--metrics", "psnr", "--dataset", "synth-lrs2", "--root", root,
            "--no-report", "--no-gen-cache", "--run-dir", run_dir)
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    record = json.loads((run_dir / "run.json").read_text())
    assert record["identity"]["dataset"]["corpus"] == {"version": VERSIONS["synth-lrs2"], "seed": 0}
    first = store_rows(run_dir)
    record["identity"]["dataset"]["corpus"]["version"] = "synth-lrs2-1"  # as a run made before the bump
    (run_dir / "run.json").write_text(json.dumps(record))
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert "dataset.corpus.version" in res.output and "synth-lrs2-1" in res.output
    assert store_rows(run_dir) == first


def test_overwritten_checkpoint_is_refused_and_fresh_starts_a_new_dir(tmp_path: Path) -> None:
    from talkbench.weights import sha256_file, shipped_weights

    shipped = shipped_weights("wav2lip-synth")
    if shipped is None:
        pytest.skip("no shipped wav2lip weights")
    root = folder(tmp_path, n=1)
    ckpt = perturbed_copy(shipped, tmp_path / "w2l.safetensors", 1.0)
    run_dir = tmp_path / "run"
    res = run_cli(root, run_dir, "--weights", f"wav2lip={ckpt}", methods="wav2lip")
    assert res.exit_code == 0, res.output
    first = store_rows(run_dir)
    old_sha = sha256_file(ckpt)
    perturbed_copy(shipped, ckpt, 1.5)  # the same path, other weights
    res = run_cli(root, run_dir, "--weights", f"wav2lip={ckpt}", methods="wav2lip")
    assert res.exit_code == 2, res.output
    assert "methods.wav2lip.weights_sha256" in res.output and old_sha[:12] in res.output and "--fresh" in res.output
    assert store_rows(run_dir) == first  # nothing mixed in
    res = run_cli(root, run_dir, "--weights", f"wav2lip={ckpt}", "--fresh", methods="wav2lip")
    assert res.exit_code == 0, res.output
    fresh = tmp_path / "run-2"
    assert f"run dir: {fresh}" in res.output
    record = json.loads((fresh / "run.json").read_text())
    assert record["identity"]["methods"]["wav2lip"]["weights_sha256"] == sha256_file(ckpt) != old_sha
    # Moving the unchanged file elsewhere is not a change: the run resumes.
    moved = tmp_path / "moved.safetensors"
    moved.write_bytes(ckpt.read_bytes())
    moved.with_suffix(".json").write_text(ckpt.with_suffix(".json").read_text())
    res = run_cli(root, fresh, "--weights", f"wav2lip={moved}", methods="wav2lip")
    assert res.exit_code == 0 and "resumed (skipped): 2" in res.output, res.output


def test_critic_appearing_in_weights_dir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from talkbench.critics.syncnet import SyncNetS
    from talkbench.weights import shipped_weights

    if shipped_weights("syncnet-synth") is None:
        pytest.skip("no shipped SyncNet critic")
    official = tmp_path / "weights"
    official.mkdir()
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(official))
    root = folder(tmp_path, n=1)
    run_dir = tmp_path / "run"
    # (The folder holds real faces: the synthetic critic scores them only when allowed.)
    res = run_cli(root, run_dir, "--allow-synthetic-critics", metrics="lse")
    assert res.exit_code == 0, res.output
    torch.manual_seed(0)  # an "official" file appears between two invocations
    torch.save({k: v for k, v in SyncNetS().state_dict().items() if not k.endswith("num_batches_tracked")},
               official / "syncnet_v2.model")
    res = run_cli(root, run_dir, "--allow-synthetic-critics", metrics="lse")
    assert res.exit_code == 2 and "metrics.lse.critics.syncnet" in res.output, res.output


def test_failed_items_are_retried_on_resume(tmp_path: Path) -> None:
    from talkbench.weights import sha256_file, shipped_weights

    shipped = shipped_weights("wav2lip-synth")
    if shipped is None:
        pytest.skip("no shipped wav2lip weights")
    root = folder(tmp_path, n=1)
    ckpt = tmp_path / "w2l.safetensors"
    ckpt.write_bytes(np.random.default_rng(1).bytes(3000))  # a broken checkpoint
    for run_dir in (tmp_path / "keep", tmp_path / "retry"):
        res = run_cli(root, run_dir, "--weights", f"wav2lip={ckpt}", methods="wav2lip")
        assert res.exit_code == 1 and "failed items: 1" in res.output, res.output
        assert any(r[0] == "wav2lip" and r[4] for r in store_rows(run_dir))
    ckpt.write_bytes(shipped.read_bytes())  # fixed in place (with its card)
    ckpt.with_suffix(".json").write_text(shipped.with_suffix(".json").read_text())
    res = run_cli(root, tmp_path / "keep", "--weights", f"wav2lip={ckpt}", "--no-retry-failed", methods="wav2lip")
    assert res.exit_code == 1 and "retried: 0" in res.output
    res = run_cli(root, tmp_path / "retry", "--weights", f"wav2lip={ckpt}", methods="wav2lip")
    assert res.exit_code == 0 and "retried: 1" in res.output, res.output
    rows = [r for r in store_rows(tmp_path / "retry") if r[0] == "wav2lip"]
    assert rows and all(r[4] is None for r in rows) and any(r[2] == "psnr" and r[3] > 10 for r in rows)
    record = json.loads((tmp_path / "retry" / "run.json").read_text())
    assert record["methods"]["wav2lip"]["weights"]["sha256"] == sha256_file(ckpt)
    assert "wav2lip" not in record["methods_unavailable"]


def test_media_write_error_is_a_per_item_error(tmp_path: Path) -> None:
    root = folder(tmp_path, n=2)
    run_dir = tmp_path / "run"
    (run_dir / "media").mkdir(parents=True)
    (run_dir / "media" / "static").write_text("a file where the folder should be")
    res = run_cli(root, run_dir)
    assert res.exit_code == 1 and "failed items: 2" in res.output, res.output
    rows = store_rows(run_dir)
    media_errors = [r for r in rows if r[2] == "__media__"]
    assert len(media_errors) == 2 and all("cannot" in r[4] and "static" in r[4] for r in media_errors)
    assert sum(1 for r in rows if r[0] == "gt" and r[2] == "psnr" and r[4] is None) == 2  # the rest was scored


WRITE_LIMITED = """
import resource, signal, sys
import numpy as np
from talkbench.errors import MediaError
from talkbench.io.video import write_video
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
noise = np.random.default_rng(0).integers(0, 255, (30, 128, 128, 3), dtype=np.uint8)
try:
    write_video(sys.argv[1], noise, None)
except MediaError as exc:
    print("MediaError:", exc)
"""


def test_full_disk_leaves_no_temp_file(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", WRITE_LIMITED, str(tmp_path / "v.mp4")], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert "MediaError:" in out.stdout and "cannot write video" in out.stdout, out.stdout + out.stderr
    assert list(tmp_path.iterdir()) == []


def test_non_talkbench_exception_while_loading_is_a_per_item_error(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import talkbench.faces.crop as crop

    real = crop.load_clip

    def flaky(sample, *a, **kw):
        if sample.sample_id == "clip0":
            raise MemoryError("cannot allocate 12 GiB")
        return real(sample, *a, **kw)

    monkeypatch.setattr(crop, "load_clip", flaky)
    root = folder(tmp_path, n=2)
    # --workers 0: the patch lives in this process (the pipelined executor's workers catch the same
    # exceptions with the same talkbench.runner.prepare)
    res = run_cli(root, tmp_path / "run", "--workers", "0")
    assert res.exit_code == 1 and "failed items: 2" in res.output, res.output
    rows = store_rows(tmp_path / "run")
    assert {(r[0], r[1]) for r in rows if r[2] == "__sample__" and "MemoryError" in r[4]} == {("gt", "clip0"),
                                                                                            ("static", "clip0")}
    assert sum(1 for r in rows if r[1] == "clip1" and r[2] == "psnr" and r[4] is None) == 2


def test_failures_are_counted_per_pair(tmp_path: Path) -> None:
    from talkbench.results import load_run
    from talkbench.stats import summarize
    from talkbench.weights import shipped_weights

    if shipped_weights("syncnet-synth") is None:
        pytest.skip("no shipped SyncNet critic")
    root = tmp_path / "data"
    root.mkdir()
    write_video(root / "silent.mp4", talking_frames(25, size=128), np.zeros(16000, np.float32))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\0" * 64)
    res = run_cli(root, tmp_path / "run", "--weights", f"wav2lip={broken}", "--allow-synthetic-critics",
                  methods="static,wav2lip", metrics="psnr,lse")
    assert res.exit_code == 1
    # gt and static: LSE fails (silent audio: 4 error rows each); wav2lip: its weights do not load.
    assert "failed items: 3" in res.output, res.output
    from talkbench.runner import count_failures

    assert count_failures(tmp_path / "run") == 3
    s = summarize(load_run(tmp_path / "run").frame).set_index(["method", "metric"])
    assert s.loc[("gt", "lse_d"), "failed"] == 1 and s.loc[("gt", "psnr"), "n"] == 1
    assert s.loc[("wav2lip", "psnr"), "failed"] == 1 and s.loc[("wav2lip", "psnr"), "n"] == 0


def test_short_audio_two_faces_and_truncation_in_a_run(tmp_path: Path, real_data: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    write_video(root / "short.mp4", talking_frames(75, size=128), tone(0.5))
    two_face_clip(root / "two.mp4")
    whole = faststart_copy(real_data / "videos" / "vox_00086.mp4", tmp_path / "whole.mp4")
    (root / "cut.mp4").write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.3)])
    run_dir = tmp_path / "run"
    res = invoke("run", "--methods", "static", "--metrics", "psnr", "--dataset", "folder", "--root", root,
                 "--no-report", "--no-gen-cache", "--run-dir", run_dir)
    assert res.exit_code == 1, res.output
    record = json.loads((run_dir / "run.json").read_text())
    assert "shorter than the video" in record["sample_notes"]["short"][0]
    assert any("2 faces in most frames" in n for n in record["sample_notes"]["two"])
    rows = store_rows(run_dir)
    assert {r[0] for r in rows if r[1] == "two" and r[2] == "__faces__" and r[3] == 2} == {"gt", "static"}
    cut = [r for r in rows if r[1] == "cut"]
    assert {r[2] for r in cut} == {"__sample__"} and all("truncated" in r[4] for r in cut)


def test_sanitised_names_do_not_share_media(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    for i, name in enumerate(("a b", "a&b", "a__b")):
        write_video(root / f"{name}.mp4", talking_frames(10, size=64, dx=i), tone(0.4))
    run_dir = tmp_path / "run"
    res = run_cli(root, run_dir)
    assert res.exit_code == 0, res.output
    media = sorted(p.name for p in (run_dir / "media" / "static").iterdir())
    assert len(media) == 3 and "a__b.mp4" in media, media
