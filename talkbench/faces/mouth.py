"""The mouth box of 68-point landmarks, and boxes as pixel masks: what the trainers' mouth loss terms
(ATVGnet, Audio2Head, docs/atvgnet.md) pay for."""

from __future__ import annotations

import numpy as np
import torch


def mouth_boxes(landmarks: np.ndarray, scale: float = 1.0, size: int | None = None, grow: float = 0.25) -> np.ndarray:
    """Mouth boxes of landmarks (T, 68, 2): the bounding box of points 48..67 times ``scale``, grown by
    ``grow`` of its size on each side, clipped to ``[0, size]`` when given: (T, 4) x0, y0, x1, y1."""
    m = np.asarray(landmarks, np.float64)[:, 48:68] * scale
    lo, hi = m.min(1), m.max(1)
    pad = grow * (hi - lo)
    lo, hi = lo - pad, hi + pad
    if size is not None:
        lo, hi = np.clip(lo, 0, size), np.clip(hi, 0, size)
    return np.concatenate([lo, hi], 1).astype(np.float32)


def box_mask(boxes: np.ndarray, size: int) -> torch.Tensor:
    """(N, 4) boxes -> (N, 1, size, size) 0/1 masks: the pixels whose centres lie inside the box."""
    c = torch.arange(size, dtype=torch.float32) + 0.5
    b = torch.from_numpy(np.asarray(boxes, np.float32))
    inx = (c[None] >= b[:, :1]) & (c[None] <= b[:, 2:3])
    iny = (c[None] >= b[:, 1:2]) & (c[None] <= b[:, 3:4])
    return (iny[:, :, None] & inx[:, None, :]).float()[:, None]
