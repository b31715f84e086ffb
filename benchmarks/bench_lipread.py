"""Lip-reading critic speed on this machine: mouth-ROI extraction (ours: OpenCV warp straight into the
96x96 patch) against the official pipeline's way (skimage ``warp`` of the whole 256x256 canvas, then the
cut; measured in the same run), and ROI + inference clips/s for LRW-length clips (29 frames) with the
official width (1.0, random weights: speed only) and the shipped critic.
Run: ``python -m benchmarks.bench_lipread``."""

from __future__ import annotations

import time

import numpy as np
import torch

FRAMES = 29
CLIPS = 4


def _clip(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from talkbench.critics.mouth_roi import MEAN_FACE_STABLE, STABLE_IDS

    frames = rng.integers(0, 255, (FRAMES, 128, 128, 3), dtype=np.uint8)
    lm = rng.uniform(30, 100, (FRAMES, 68, 2)).astype(np.float32)
    lm[:, list(STABLE_IDS)] = MEAN_FACE_STABLE * 0.45 + 5
    lm[:, 48:68] = rng.normal((63, 76), (6, 3), (FRAMES, 20, 2))
    return frames, lm


def _skimage_rois(frames: np.ndarray, lms: np.ndarray) -> np.ndarray:
    """The official per-frame steps (whole-canvas skimage warp + cut + gray), for the reference timing."""
    import cv2
    from skimage import transform as tf

    from talkbench.critics.mouth_roi import frame_transforms, interpolate_landmarks

    lm = interpolate_landmarks(lms)
    ms = frame_transforms(lm)
    out = []
    for f, m, pts in zip(frames, ms, lm, strict=True):
        t = tf.SimilarityTransform(matrix=np.vstack([m, [0, 0, 1]]))
        w = (tf.warp(f, inverse_map=t.inverse, output_shape=(256, 256)) * 255).astype("uint8")
        cx, cy = t(pts[48:68]).mean(0)
        cx, cy = min(max(cx, 48), 208), min(max(cy, 48), 208)
        p = w[int(round(cy)) - 48: int(round(cy)) + 48, int(round(cx)) - 48: int(round(cx)) + 48]
        out.append(cv2.cvtColor(p, cv2.COLOR_RGB2GRAY))
    return np.stack(out)


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    from talkbench.critics.lipreader import LipReader, LipReaderConfig, load_lipreader
    from talkbench.critics.mouth_roi import mouth_rois, to_model_input
    from talkbench.weights import shipped_weights

    rng = np.random.default_rng(0)
    clips = [_clip(rng) for _ in range(CLIPS)]
    print(f"torch threads: {torch.get_num_threads()}; {CLIPS} clips of {FRAMES} frames (128 px crops)")
    ours = _time(lambda: [mouth_rois(f, lm) for f, lm in clips])
    ref = _time(lambda: [_skimage_rois(f, lm) for f, lm in clips], repeat=1)
    print(f"ROI: ours {CLIPS / ours:.1f} clips/s, skimage whole-canvas {CLIPS / ref:.1f} clips/s "
          f"(x{ref / ours:.1f})")

    rois = [mouth_rois(f, lm) for f, lm in clips]
    x = torch.from_numpy(np.stack([to_model_input(r) for r in rois]))
    models = {"official width 1.0 (random)": LipReader(LipReaderConfig()).eval()}
    shipped = shipped_weights("lipreader-synth")
    if shipped:
        models[f"shipped {shipped.name}"] = load_lipreader(shipped)
    for name, model in models.items():
        with torch.inference_mode():
            model(x[:1])  # warm-up
            one = _time(lambda m=model: [m(x[i: i + 1]) for i in range(CLIPS)], repeat=2)
            batch = _time(lambda m=model: m(x), repeat=2)
        print(f"{name}: inference {CLIPS / batch:.2f} clips/s batched ({CLIPS / one:.2f} one at a time); "
              f"ROI + inference {CLIPS / (batch + ours):.2f} clips/s "
              f"= {CLIPS * FRAMES / 25 / (batch + ours):.1f}x real time")


if __name__ == "__main__":
    main()
