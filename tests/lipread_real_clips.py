"""LRW-layout clips built from the real media in ``../shared/data/real`` (for the lip-reading golden
tests and for the script that made ``tests/fixtures/lipread_golden``), and the seeded-weight rule of
the golden logits."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np

LRW_FRAMES, LRW_SIZE = 29, 256
# name -> (video in ../shared/data/real/videos, frames whose landmarks are dropped to exercise the
# interpolation of missed detections: a leading one and an inner gap)
CLIPS = {
    "retalking_3": ("retalking_3.mp4", ()),
    "retalking_2": ("retalking_2.mp4", (0, 13, 14)),
}


def lrw_frames(real: Path, video: str) -> np.ndarray:
    """The first 29 frames at 25 fps, resized (INTER_AREA) to LRW's 256x256: ``(29, 256, 256, 3)`` RGB."""
    import cv2

    from talkbench.io.video import iter_video

    first = next(iter_video(real / "videos" / video, fps=25.0, chunk_frames=LRW_FRAMES))
    return np.stack([cv2.resize(f, (LRW_SIZE, LRW_SIZE), interpolation=cv2.INTER_AREA) for f in first])


def frames_digest(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames, np.uint8).tobytes()).hexdigest()


def seeded_tensor(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The value of state-dict entry ``key`` in the golden checkpoints (float32; see the fixture README).

    Generator ``numpy.random.default_rng(crc32(key))``; with ``z`` standard normal of ``shape``:
    ``running_mean`` 0.1 z, ``running_var`` 0.5 + |z|, ``num_batches_tracked`` 0, 1-D PReLU ``weight``
    (keys with ``relu``/``non_lin`` or ``frontend3D.2``) 0.25 + 0.05 z, other 1-D ``weight`` (batch norm)
    1 + 0.1 z, ``bias`` 0.1 z, N-D ``weight`` z / sqrt(fan_in) (fan_in = size / shape[0]).
    """
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, np.int64)
    z = rng.standard_normal(shape)
    if key.endswith("running_mean"):
        v = 0.1 * z
    elif key.endswith("running_var"):
        v = 0.5 + np.abs(z)
    elif key.endswith("bias"):
        v = 0.1 * z
    elif len(shape) == 1:
        prelu = "relu" in key or "non_lin" in key or key.startswith("frontend3D.2.")
        v = 0.25 + 0.05 * z if prelu else 1.0 + 0.1 * z
    else:
        v = z / np.sqrt(np.prod(shape) / shape[0])
    return v.astype(np.float32)


def seeded_state_dict(template: dict) -> dict:
    """``{key: torch tensor}`` by :func:`seeded_tensor` for every key of ``template`` (a state dict)."""
    import torch

    return {k: torch.from_numpy(seeded_tensor(k, tuple(v.shape))) for k, v in template.items()}
