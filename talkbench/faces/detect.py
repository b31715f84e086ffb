"""Face detection with dlib: HOG (default, fast on CPU) or MMOD (CNN, slow on CPU)."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from talkbench.faces.models import hog_detector, mmod_detector


class FaceDetector:
    """Detect faces in RGB frames; boxes are ``(N, 5)`` float32 rows ``x1, y1, x2, y2, score`` in
    the frame's pixels, best first.

    ``max_side``: frames are downscaled so their longest side is at most this before detection (HOG
    finds faces down to ~80 px, and its cost grows with the area), boxes are scaled back.
    """

    def __init__(self, kind: Literal["hog", "mmod"] = "hog", upsample: int = 0, max_side: int = 320) -> None:
        if kind not in ("hog", "mmod"):
            raise ValueError(f"unknown detector kind {kind!r}: use 'hog' or 'mmod'")
        self.kind = kind
        self.upsample = upsample
        self.max_side = max_side

    @property
    def policy(self) -> str:
        return f"dlib-{self.kind}(upsample={self.upsample},max_side={self.max_side})"

    def detect(self, frame: np.ndarray) -> np.ndarray:
        img = _as_rgb(frame)
        h, w = img.shape[:2]
        scale = min(1.0, self.max_side / max(h, w)) if self.max_side else 1.0
        small = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else img
        small = np.ascontiguousarray(small)
        rows = []
        if self.kind == "hog":
            rects, scores, _ = hog_detector().run(small, self.upsample, -0.2)
            for r, s in zip(rects, scores):
                rows.append((r.left(), r.top(), r.right(), r.bottom(), s))
        else:
            for d in mmod_detector()(small, self.upsample):
                r = d.rect
                rows.append((r.left(), r.top(), r.right(), r.bottom(), d.confidence))
        if not rows:
            return np.zeros((0, 5), np.float32)
        out = np.asarray(rows, np.float32)
        out[:, :4] /= scale
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w - 1)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h - 1)
        return out[np.argsort(-out[:, 4])]


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    """Grayscale (H, W) or (H, W, 1) frames are expanded to RGB; dlib wants uint8."""
    f = np.asarray(frame)
    if f.ndim == 2:
        f = np.repeat(f[:, :, None], 3, axis=2)
    elif f.ndim == 3 and f.shape[2] == 1:
        f = np.repeat(f, 3, axis=2)
    elif f.ndim == 3 and f.shape[2] == 4:
        f = f[:, :, :3]
    if f.dtype != np.uint8:
        f = np.clip(f, 0, 255).astype(np.uint8)
    return f
