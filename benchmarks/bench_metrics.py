"""PSNR+SSIM: batched torch vs a per-frame scikit-image loop on the same frames (same values), and
LMD / CSIM throughput including landmark detection. Run: ``python -m benchmarks.bench_metrics``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "videos" / "vox_741400104.mp4"


def _frames() -> tuple[np.ndarray, np.ndarray]:
    if REAL.exists():
        from talkbench.faces.crop import load_clip
        from talkbench.types import Sample

        clip = load_clip(Sample("bench", "bench", "v", REAL), size=128, landmarks=False)
        f = clip.frames
        return f[1:], f[:-1]  # consecutive frames: realistic small differences
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (300, 128, 128, 3), dtype=np.uint8)
    return a, np.clip(a.astype(int) + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)


def main() -> None:
    from skimage.metrics import peak_signal_noise_ratio as sk_psnr
    from skimage.metrics import structural_similarity as sk_ssim

    from talkbench.metrics import METRICS
    from talkbench.metrics.base import ScoreInput
    from talkbench.metrics.functional.image import peak_signal_noise_ratio, structural_similarity

    a, b = _frames()
    n = len(a)
    structural_similarity(a[:4], b[:4])  # one-time torch initialisation is not part of the rate
    t0 = time.perf_counter()
    ref_p = [sk_psnr(y, x, data_range=255) for x, y in zip(a, b)]
    ref_s = [sk_ssim(x, y, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                     data_range=255) for x, y in zip(a, b)]
    t_sk = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = peak_signal_noise_ratio(a, b)
    s = structural_similarity(a, b)
    t_ours = time.perf_counter() - t0
    print(f"PSNR+SSIM on {n} 128x128 frames (torch {torch.__version__}, {torch.get_num_threads()} threads): "
          f"skimage loop {n / t_sk:.0f} frames/s, ours {n / t_ours:.0f} frames/s -> {t_sk / t_ours:.1f}x; "
          f"max |diff| psnr {np.abs(p.numpy() - ref_p).max():.2e}, ssim {np.abs(s.numpy() - ref_s).max():.2e}")
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        structural_similarity(a, b, device="cuda")
        torch.cuda.synchronize()
        print(f"SSIM on CUDA: {n / (time.perf_counter() - t0):.0f} frames/s")
    item = ScoreInput("bench", a[:100], np.zeros(1), reference=b[:100])
    for name in ("lmd", "csim"):
        scorer = METRICS.get(name)()
        t0 = time.perf_counter()
        scorer.score(item)
        dt = time.perf_counter() - t0
        print(f"{name}: {100 / dt:.0f} frames/s including landmark/face detection (100 frame pairs)")
    # The runner's path: boxes from cached ground-truth landmarks, no HOG on the ground truth.
    from talkbench.faces.detect import FaceDetector
    from talkbench.faces.landmarks import detect_landmarks

    cached = detect_landmarks(b[:100], None, None, FaceDetector(upsample=1, max_side=0))
    item = ScoreInput("bench", a[:100], np.zeros(1), reference=b[:100], reference_landmarks=cached)
    t0 = time.perf_counter()
    out = METRICS.get("lmd")().score(item)
    dt = time.perf_counter() - t0
    print(f"lmd with cached reference landmarks (box from landmarks={out['lmd_box_from_landmarks']:.0f}): "
          f"{100 / dt:.0f} frames/s")


if __name__ == "__main__":
    main()
