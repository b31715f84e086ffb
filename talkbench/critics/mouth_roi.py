"""Mouth regions of interest for the lip reader, as mpc001's LRW preprocessing makes them.

Facts matched (mpc001/Lipreading_using_Temporal_Convolutional_Networks at 0cc99fa,
``legacy_preprocessing/crop_mouth_from_video.py``, ``transform.py``, ``lipreading/dataloaders.py``):

1. Landmarks (68-point iBUG) of frames without a face are linearly interpolated; leading/trailing gaps
   hold the nearest detected frame.
2. Each frame ``t`` is aligned by a similarity transform (least squares, skimage ``similarity``) that maps
   the stable points 33, 36, 39, 42, 45 of the landmarks *averaged over frames t..t+11* (a 12-frame
   window) onto the same points of their 20-word mean face in a 256x256 canvas; the last 11 frames reuse
   the last window's transform.
3. The frame is warped (bilinear, black outside, float image then truncation to uint8 as
   ``warped * 255`` -> ``astype('uint8')``), and a 96x96 patch is cut around the mean of the transformed
   mouth landmarks 48-67 (the centre is clamped so the patch stays inside the canvas), then converted
   to grayscale.
4. For the model: pixels / 255, centre crop 88x88 (random crop + horizontal flip when training), then
   (x - 0.421) / 0.165.

Differences, documented: clips shorter than the 12-frame window (the official script crashes on them)
use one transform from the mean over all their frames; the warp is done straight into the 96x96 patch
(identical to warping the whole canvas and cutting, as the patch lies inside it) with OpenCV instead of
skimage; ``tests/test_lipread_roi.py`` checks agreement with the skimage pipeline.
"""

from __future__ import annotations

import cv2
import numpy as np

from talkbench.errors import FaceNotFoundError

STABLE_IDS = (33, 36, 39, 42, 45)
# The stable points of mpc001's ``20words_mean_face.npy`` (68x2, 256x256 canvas), rows 33, 36, 39, 42, 45.
MEAN_FACE_STABLE = np.array([
    [128.87017961, 137.30253356],
    [92.52245553, 94.36876014],
    [112.77241724, 94.9436087],
    [145.52511509, 94.53499862],
    [166.67710071, 93.56562296],
])
CANVAS = 256
ROI_SIZE = 96
CROP_SIZE = 88
MEAN, STD = 0.421, 0.165
WINDOW = 12
MOUTH = slice(48, 68)


def interpolate_landmarks(landmarks: np.ndarray, source: str = "<landmarks>") -> np.ndarray:
    """Fill NaN frames of ``(T, 68, 2)`` landmarks linearly; ends hold the nearest valid frame.

    Raises:
        FaceNotFoundError: no frame has landmarks.
    """
    lm = np.asarray(landmarks, np.float64)
    valid = ~np.isnan(lm).any(axis=(1, 2))
    if not valid.any():
        raise FaceNotFoundError("no frame has face landmarks", source)
    if valid.all():
        return lm
    idx = np.flatnonzero(valid)
    t = np.arange(len(lm))
    flat = lm.reshape(len(lm), -1)
    # np.interp holds the end values outside [idx[0], idx[-1]], as the official corner case does.
    out = np.stack([np.interp(t, idx, flat[idx, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape(lm.shape)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``
    (Umeyama, the estimator behind skimage's ``SimilarityTransform``)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1
    r = u @ np.diag(d) @ vt
    scale = (sig * d).sum() / s0.var(0).sum()
    a = scale * r
    return np.hstack([a, (md - a @ ms)[:, None]])


def frame_transforms(landmarks: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """``(T, 2, 3)`` per-frame alignment transforms from (already interpolated) landmarks."""
    n = len(landmarks)
    if n < window:
        m = similarity(landmarks.mean(0)[list(STABLE_IDS)], MEAN_FACE_STABLE)
        return np.repeat(m[None], n, axis=0)
    stable = landmarks[:, list(STABLE_IDS)]
    # Mean over t..t+window-1 for every t with a full window (cumulative sums).
    c = np.concatenate([np.zeros((1, *stable.shape[1:])), np.cumsum(stable, axis=0)])
    means = (c[window:] - c[:-window]) / window
    ms = np.stack([similarity(m, MEAN_FACE_STABLE) for m in means])
    tail = np.repeat(ms[-1:], n - len(ms), axis=0)
    return np.concatenate([ms, tail])


def _patch_origin(m: np.ndarray, mouth: np.ndarray, half: int = ROI_SIZE // 2) -> tuple[int, int]:
    """Top-left of the 96x96 cut in canvas pixels, as the official ``cut_patch`` places it."""
    pts = mouth @ m[:, :2].T + m[:, 2]
    cx, cy = pts.mean(0)
    cx = min(max(cx, half), CANVAS - half)
    cy = min(max(cy, half), CANVAS - half)
    return int(round(cx) - half), int(round(cy) - half)


def mouth_rois(frames: np.ndarray, landmarks: np.ndarray, source: str = "<clip>") -> np.ndarray:
    """``(T, 96, 96)`` uint8 grayscale mouth ROIs from RGB frames and their 68-point landmarks.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        landmarks: ``(T, 68, 2)`` (x, y) in the frames' pixels; NaN rows are interpolated.
        source: name used in errors.

    Raises:
        FaceNotFoundError: no frame has landmarks.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    if len(landmarks) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(landmarks)} landmark rows")
    lm = interpolate_landmarks(landmarks, source)
    ms = frame_transforms(lm)
    out = np.empty((len(frames), ROI_SIZE, ROI_SIZE), np.uint8)
    for t, (frame, m) in enumerate(zip(frames, ms, strict=True)):
        x0, y0 = _patch_origin(m, lm[t, MOUTH])
        shifted = m.copy()
        shifted[:, 2] -= (x0, y0)
        # Float warp then truncation, as skimage's warp of a [0, 1] image followed by astype(uint8).
        warped = cv2.warpAffine(frame.astype(np.float32) / 255.0, shifted, (ROI_SIZE, ROI_SIZE),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        rgb = (warped * 255.0).astype(np.uint8)
        out[t] = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return out


def to_model_input(rois: np.ndarray, train: bool = False, rng: np.random.Generator | None = None) -> np.ndarray:
    """``(T, 96, 96)`` uint8 ROIs -> ``(1, T, 88, 88)`` float32 normalised (centre crop; random crop and
    horizontal flip with probability 0.5 when ``train``)."""
    t, h, w = rois.shape
    if train:
        rng = rng or np.random.default_rng()
        y0 = int(rng.integers(0, h - CROP_SIZE + 1))
        x0 = int(rng.integers(0, w - CROP_SIZE + 1))
    else:
        y0 = int(round((h - CROP_SIZE) / 2))
        x0 = int(round((w - CROP_SIZE) / 2))
    x = rois[:, y0 : y0 + CROP_SIZE, x0 : x0 + CROP_SIZE].astype(np.float32) / 255.0
    if train and rng.random() < 0.5:
        x = x[:, :, ::-1]
    return ((x - MEAN) / STD)[None].astype(np.float32)
