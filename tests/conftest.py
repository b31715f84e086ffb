"""Shared fixtures: real media (skipped cleanly when absent), tiny talking clips made from a real
portrait, and an isolated cache directory for every test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


EXIT_GRACE_S = 120


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Name what the tests left running: a leftover child process or non-daemon thread makes the
    interpreter wait for it at exit (a CI run once passed every test and then hung until killed)."""
    import multiprocessing
    import threading

    left = [f"process {c.name} (pid {c.pid})" for c in multiprocessing.active_children()]
    left += [f"thread {t.name}" for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
    from talkbench.pipeline import open_pools

    left += [f"process pool never shut down, made by {origin}" for origin in open_pools()]
    if left:
        print(f"\nconftest: still running after the session: {', '.join(left)}")
    _exit_watchdog(int(exitstatus))


def _exit_watchdog(status: int) -> None:
    """If the interpreter has not exited ``EXIT_GRACE_S`` after the session (the results are printed
    by then), print every thread's stack and the child processes, and exit with the session's status:
    the tracebacks say what hung, and a hang no longer costs the whole CI time limit."""
    import faulthandler
    import multiprocessing
    import os
    import sys
    import threading

    def fire() -> None:
        sys.stderr.write(f"\nconftest: the test process did not exit {EXIT_GRACE_S} s after the session; "
                         f"children: {[(c.name, c.pid) for c in multiprocessing.active_children()]}; "
                         "stacks:\n")
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        os._exit(status)

    timer = threading.Timer(EXIT_GRACE_S, fire)
    timer.daemon = True
    timer.start()


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    import os

    os.environ["TALKBENCH_CACHE"] = str(tmp_path_factory.mktemp("tbcache"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real`` or skip."""
    if not (REAL / "MANIFEST.md").exists():
        pytest.skip("real media folder ../shared/data/real is not present")
    return REAL


def portrait_frame(size: int = 224) -> np.ndarray:
    """A real frontal face (RGB uint8) resized to ``size``; skips when the media are absent."""
    import cv2

    path = REAL / "portraits" / "vox_512400353_000000.jpg"
    if not path.exists():
        pytest.skip("real portraits not present")
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def tone(seconds: float, sr: int = 16000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def talking_frames(n: int = 20, size: int = 224, dx: float = 1.0) -> np.ndarray:
    """A real face drifting horizontally by ``dx`` px per frame, with a darkened mouth that opens
    and closes (enough motion for trackers and crops)."""
    import cv2

    base = portrait_frame(size)
    frames = []
    for t in range(n):
        m = np.float32([[1, 0, dx * (t - n / 2)], [0, 1, 0]])
        f = cv2.warpAffine(base, m, (size, size), borderMode=cv2.BORDER_REPLICATE)
        frames.append(f)
    return np.stack(frames)


@pytest.fixture(scope="session")
def talking_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s, 25 fps mp4 (H.264 + AAC) of a real face with a tone as audio."""
    from talkbench.io.video import write_video

    path = tmp_path_factory.mktemp("clips") / "talking.mp4"
    write_video(path, talking_frames(25), tone(1.0), fps=25)
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny convolutions: one thread is fastest and does not thrash a shared CI machine. A module opts in
    with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``; its thread count is restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _restore_registries():
    """Tests that register methods, metrics or datasets leave the registries as they found them."""
    from talkbench.datasets import DATASETS
    from talkbench.methods import METHODS
    from talkbench.metrics import METRICS

    saved = [(r, dict(r._entries)) for r in (METHODS, METRICS, DATASETS)]
    yield
    for reg, entries in saved:
        reg._entries.clear()
        reg._entries.update(entries)


def tiny_cals_config(**sections: dict) -> dict:
    """The one tiny CALS config the tests train and run (seconds per stage on a CPU); ``sections``
    update its ``model`` / ``loss`` / ``train`` entries."""
    cfg = {"model": {"img_size": 32, "unit_dim": 16, "d_model": 32, "layers": 1, "heads": 2, "ff": 64, "unet_base": 8,
                     "sync_width": 0.1, "dropout": 0.0},
           "loss": {"sync_after_steps": 1, "segments": 2},
           "train": {"window": 10, "batch_size": 2, "sync_steps": 2, "a2l_steps": 2, "e2e_steps": 2, "log_every": 1,
                     "ckpt_every": 2}}
    for name, values in sections.items():
        cfg[name].update(values)
    return cfg


def smooth_noise_clips(frames: int, face_size: int, n: int = 3, seed: int = 0):
    """Trainer test clips: ``n`` (name, faces, Wav2Lip mel) with smooth frames (8x8 noise upsampled to 64,
    learnable unlike per-pixel noise) cut to ``face_size`` faces, and noise audio of ``frames`` frames."""
    import cv2

    from baselines.wav2lip.preprocess import to_faces
    from baselines.wav2lip.train import Wav2LipClips
    from talkbench.io.audio import wav2lip_mel

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        small = rng.integers(0, 255, (frames, 8, 8, 3)).astype(np.float32)
        video = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_CUBIC) for f in small]).clip(0, 255).astype(np.uint8)
        audio = (rng.standard_normal(frames * 640) * 0.1).astype(np.float32)
        out.append((f"c{i}", to_faces(video, None, face_size), wav2lip_mel(audio)))
    return Wav2LipClips(out)
