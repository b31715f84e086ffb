"""Throughput of the field's metrics (FID, FVD, LPIPS, ArcFace CSIM, CPBD) on one CPU thread, with
official-layout files of seeded weights (speed does not depend on the values), and the cost of one
Fréchet bootstrap resample. Run: ``python -m benchmarks.bench_field_metrics``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "videos" / "vox_741400104.mp4"


def _rate(fn, n: int) -> str:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    return f"{n / dt:7.2f} /s  ({dt:.2f} s for {n})"


def main() -> None:
    from talkbench.io.video import read_video
    from talkbench.metrics._nets_runtime import to_tensor
    from talkbench.metrics.functional.distribution import frechet_distance_features
    from talkbench.metrics.functional.sharpness import cpbd
    from talkbench.metrics.nets.alexnet import load_lpips_alex
    from talkbench.metrics.nets.i3d import load_i3d
    from talkbench.metrics.nets.inception import load_fid_inception
    from talkbench.metrics.nets.iresnet import load_arcface
    from talkbench.metrics.nets.seeded import write_seeded_weights

    torch.set_num_threads(1)
    frames = read_video(REAL)[:32] if REAL.exists() else np.random.default_rng(0).integers(0, 255, (32, 224, 224, 3), np.uint8)
    import cv2

    crops = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in frames])
    with tempfile.TemporaryDirectory() as d:
        w = write_seeded_weights(d, arcface_depth=100)
        inc, i3d = load_fid_inception(w["inception-fid"]), load_i3d(w["i3d-kinetics400"])
        lp, arc = load_lpips_alex(w["alexnet"], w["lpips-alex"]), load_arcface(w["arcface"])
        x = to_tensor(crops[:8], 0, 1)
        a = to_tensor(crops[:16], -1, 1)
        faces = to_tensor(np.stack([cv2.resize(f, (112, 112)) for f in crops[:8]]), -1, 1)
        clip = to_tensor(np.stack([cv2.resize(f, (224, 224)) for f in crops[:16]]), -1, 1).permute(1, 0, 2, 3)[None]
        with torch.no_grad():
            print("FID Inception (128-px crops -> 299), frames:", _rate(lambda: inc(x), 8))
            print("LPIPS AlexNet (128-px pairs), pairs:        ", _rate(lambda: lp(a, a.flip(0)), 16))
            print("ArcFace iresnet100 (112 aligned), frames:    ", _rate(lambda: arc(faces), 8))
            print("FVD I3D (16 x 224 x 224 clip), clips:         ", _rate(lambda: i3d(clip), 1))
    print("CPBD (128-px crop), frames:                   ", _rate(lambda: [cpbd(f) for f in crops], len(crops)))
    print("CPBD (224-px frame), frames:                  ", _rate(lambda: [cpbd(f) for f in frames[:8]], 8))
    rng = np.random.default_rng(0)
    for n in (500, 3000):
        g, r = rng.normal(size=(n, 2048)), rng.normal(size=(n, 2048))
        print(f"Fréchet resample, {n} x 2048 rows per side:  ", _rate(lambda g=g, r=r: frechet_distance_features(g, r), 1))


if __name__ == "__main__":
    main()
