"""PC-AVS's face alignment (``scripts/align_68.py``) and load-time crop (``voxtest_dataset.load_img``),
reimplemented, plus the inverse that brings generated frames back into the protocol crop.

- three points per frame from 68 landmarks: left-eye centre (36-41), right-eye centre (42-47),
  inner-mouth centre (60-67);
- one similarity transform (least squares, Umeyama - what skimage's ``SimilarityTransform.estimate``
  computes) from the points averaged over the clip to the template (87,59), (137,59), (112,120);
- per frame, the translation is corrected so the mouth centre lands on (112,120), smoothed as
  ``bias_t = 0.2 * bias_{t-1} + 0.8 * raw_t``;
- ``cv2.warpAffine`` to 224x224 (border 0), then rows 0..191, columns 16..207 resized back to 224
  (bilinear), RGB, [-1, 1].

Frames whose landmarks failed (NaN) get their three points linearly interpolated in time from the
frames that have them; a clip with none is an error.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkbench.errors import MethodError

TEMPLATE = np.array([[87.0, 59.0], [137.0, 59.0], [112.0, 120.0]])
CANVAS = 224
CROP_LEN = 16  # the loader keeps rows [0, 192) and columns [16, 208)


def three_points(landmarks: np.ndarray) -> np.ndarray:
    """``(..., 68, 2)`` -> ``(..., 3, 2)``: eye centres and inner-mouth centre."""
    lm = np.asarray(landmarks, np.float64)
    return np.stack([lm[..., 36:42, :].mean(-2), lm[..., 42:48, :].mean(-2), lm[..., 60:68, :].mean(-2)], -2)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``
    (Umeyama 1991); ``(2, 3)``."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1
    r = u @ np.diag(d) @ vt
    scale = (sv * d).sum() / s0.var(0).sum()
    return np.hstack([scale * r, (md - scale * r @ ms)[:, None]])


def fill_missing(points: np.ndarray) -> np.ndarray:
    """``(T, 3, 2)`` with NaN frames -> linearly interpolated over time (held at the ends)."""
    pts = np.asarray(points, np.float64).copy()
    ok = ~np.isnan(pts).any(axis=(1, 2))
    if not ok.any():
        raise MethodError("no face landmarks in any frame of the clip")
    if ok.all():
        return pts
    t = np.arange(len(pts))
    for i in range(3):
        for j in range(2):
            pts[~ok, i, j] = np.interp(t[~ok], t[ok], pts[ok, i, j])
    return pts


def clip_transforms(landmarks: np.ndarray) -> np.ndarray:
    """``(T, 68, 2)`` landmarks -> ``(T, 2, 3)`` per-frame affines into the 224 aligned canvas."""
    pts = fill_missing(three_points(landmarks))
    m = similarity(pts.mean(0), TEMPLATE)
    out = np.empty((len(pts), 2, 3))
    prev = None
    for t, p in enumerate(pts):
        mouth = m[:, :2] @ p[2] + m[:, 2]
        bias = TEMPLATE[2] - mouth
        bias = bias if prev is None else 0.2 * prev + 0.8 * bias
        prev = bias
        out[t] = m
        out[t, :, 2] = m[:, 2] + bias
    return out


def load_crop_affine() -> np.ndarray:
    """The loader's crop-and-resize as a ``(2, 3)`` affine on the aligned canvas (pixel centres)."""
    s = CANVAS / (CANVAS - 2 * CROP_LEN)
    # cv2.resize maps pixel centres: x' + 0.5 = (x - 16 + 0.5) * s
    return np.array([[s, 0.0, (0.5 - CROP_LEN) * s - 0.5], [0.0, s, 0.5 * s - 0.5]])


def to_model_input(frame_rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    """One RGB frame -> the (224, 224, 3) float32 model input in [-1, 1]: warp, crop, resize."""
    warped = cv2.warpAffine(np.ascontiguousarray(frame_rgb), m, (CANVAS, CANVAS), borderValue=0.0)
    crop = warped[: CANVAS - 2 * CROP_LEN, CROP_LEN : CANVAS - CROP_LEN]
    img = cv2.resize(crop, (CANVAS, CANVAS))
    return img.astype(np.float32) / 255.0 * 2.0 - 1.0


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Affine ``a`` after ``b`` (both (2, 3))."""
    return a[:, :2] @ np.hstack([b[:, :2], b[:, 2:]]) + np.hstack([np.zeros((2, 2)), a[:, 2:]])


def from_model_output(image_rgb: np.ndarray, m: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A generated (224, 224, 3) uint8 frame back into the ``size`` protocol crop through the inverse
    of (alignment, then load-time crop); returns the frame and a bool mask of the pixels it covers."""
    full = compose(load_crop_affine(), m)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(np.ascontiguousarray(image_rgb), full, (size, size), flags=flags, borderValue=0)
    cover = cv2.warpAffine(np.full((CANVAS, CANVAS), 255, np.uint8), full, (size, size), flags=flags, borderValue=0)
    return back, cover > 127
