"""CALS generation and training throughput on this machine (CUDA when present, bf16 there).

Generation: frames/s of whole-sequence generation (10 s of audio, 250 frames) at the paper's 128x128
configuration (6x512 transformer, 1024-d units, U-Net base 32) and the synthetic preset, through the
same :func:`cals.inference.generate` the harness calls; the aim on a CPU is real time (25 fps).
Training: end-to-end frames/s with every loss on (L1, GAN, d_av + d_vv) for the synthetic preset.
Run: ``python -m benchmarks.bench_cals``."""

from __future__ import annotations

import time

import numpy as np
import torch

from cals.config import CALSConfig, load_config, with_overrides
from cals.inference import generate
from cals.model import CALS

REAL_TIME_FPS = 25.0


def _gen_fps(cfg: CALSConfig, device: str, seconds: float = 10.0) -> float:
    torch.manual_seed(0)
    model = CALS(cfg.model).to(device).eval()
    rng = np.random.default_rng(0)
    t = int(seconds * 25)
    audio = (rng.standard_normal(t * 640) * 0.1).astype(np.float32)
    ref = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    pose = rng.integers(0, 255, (t, 128, 128, 3), dtype=np.uint8)
    generate(model, audio[: 50 * 640], ref, pose[:50], device=device)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    generate(model, audio, ref, pose, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return t / (time.perf_counter() - t0)


def _train_fps(cfg: CALSConfig, device: str, steps: int = 3) -> float:
    from cals.data import ClipBank
    from cals.train import Trainer

    rng = np.random.default_rng(0)
    s = cfg.model.img_size
    clips = [(f"c{i}", rng.integers(0, 255, (60, s, s, 3), dtype=np.uint8),
              (rng.standard_normal(60 * 640) * 0.1).astype(np.float32)) for i in range(4)]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tr = Trainer(cfg, d, device, ClipBank(clips))
        tr.sync_on = True
        tr.train_e2e()
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.train_e2e()
        dt = (time.perf_counter() - t0) / steps
    rendered = cfg.train.render_segments * cfg.train.t_s if cfg.train.render_segments else cfg.train.window
    return cfg.train.batch_size * rendered / dt


def _peak_rss_60s(preset: str) -> float:
    """Peak resident memory (MiB) of a fresh process generating 60 s (1500 frames) with ``preset``."""
    import resource
    import subprocess
    import sys

    code = (
        "import numpy as np, torch; from cals.config import load_config; from cals.model import CALS;"
        "from cals.inference import generate; torch.manual_seed(0);"
        f"m = CALS(load_config('{preset}').model).eval(); r = np.random.default_rng(0); t = 1500;"
        "a = (r.standard_normal(t * 640) * 0.1).astype(np.float32);"
        "p = r.integers(0, 255, (t, 128, 128, 3), dtype=np.uint8); generate(m, a, p[0], p)"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run([sys.executable, "-c", code], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024


def main() -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    paper = load_config("lrs2")
    synth = load_config("synth")
    print(f"device: {device}, torch threads {torch.get_num_threads()}")
    for name, cfg in (("paper 128px (6x512)", paper), ("synth preset", synth)):
        n = sum(p.numel() for p in CALS(cfg.model).parameters()) / 1e6
        fps = _gen_fps(cfg, device)
        print(f"generation {name:22s} {n:6.1f} M params  {fps:8.1f} frames/s  = {fps / REAL_TIME_FPS:5.2f}x real time")
    fps = _train_fps(with_overrides(synth, train={"batch_size": 4}), device)
    print(f"training e2e, all losses (synth preset): {fps:.1f} rendered frames/s")
    if device == "cpu":
        print(f"peak RSS generating a 60 s clip (synth preset, fresh process): {_peak_rss_60s('synth'):.0f} MiB")


if __name__ == "__main__":
    main()
