"""Mouth regions of interest for the lip reader: the two mouth-ROI pipelines of mpc001's LRW code.

mpc001/Lipreading_using_Temporal_Convolutional_Networks (read at 0cc99fa) has two pipelines, and each
released model was evaluated on the crops of one of them (see :func:`pipeline_for_weights` in
:mod:`talkbench.metrics.lipread` and ``docs/lipreading.md``):

``"legacy"`` (``legacy_preprocessing/crop_mouth_from_video.py``, ``transform.py``; the 2020-21 PReLU
models and the README's Table 2):

1. Landmarks (68-point iBUG) of frames without a face are linearly interpolated; leading/trailing gaps
   hold the nearest detected frame.
2. Frame ``t`` is aligned by a least-squares similarity (skimage ``similarity``) that maps the stable
   points 33, 36, 39, 42, 45 of the landmarks *averaged over frames t..t+11* onto the same points of the
   20-word mean face in a 256x256 canvas; the last 11 frames reuse the last window's transform.
3. The colour frame is warped (bilinear, black outside, float image then truncation to uint8), a 96x96
   patch is cut around the mean of the transformed *raw* mouth landmarks 48-67 (centre clamped so the
   patch stays inside the canvas), then converted to grayscale.

``"preprocessing"`` (``preprocessing/crop_mouth_from_video.py``, ``dataloader.py``; the 2022 Swish models
of the README's Table 1, including ``resnet18_mstcn_video``, 88.9%):

1. Same interpolation.
2. Landmarks of frame ``t`` are smoothed over the *centred* window ``t-m..t+m`` with
   ``m = min(6, t, T-1-t)`` (it shrinks at both clip ends), then shifted so their centroid equals frame
   ``t``'s own landmark centroid.
3. The frame is converted to grayscale *before* the warp; the transform is
   ``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)`` from the smoothed landmarks' eight stable points
   28, 33, 36, 39, 42, 45, 48, 54 onto the mean face's; uint8 bilinear ``warpAffine`` into 256x256.
4. The 96x96 patch is cut around the mean of the transformed *smoothed* mouth landmarks 48-67.

Both pipelines need at least 12 frames: the official legacy script crashes on shorter clips and the
newer one returns nothing for them (its batch script then skips the clip). Here a shorter clip raises
:class:`ClipTooShortError`, which the scorer records as a per-item error (NaN with its reason).

Model input (``lipreading/dataloaders.py``, same for both): pixels / 255, centre crop 88x88 (random crop +
horizontal flip when training), then (x - 0.421) / 0.165.

Differences, documented: the legacy warp is done straight into the 96x96 patch (the patch lies inside the
canvas) with OpenCV instead of skimage (within 1 grey level, ``tests/test_lipread_roi.py``).
"""

from __future__ import annotations

import itertools
from typing import Literal

import cv2
import numpy as np

from talkbench.errors import FaceNotFoundError, TalkbenchError

RoiPipeline = Literal["legacy", "preprocessing"]
ROI_PIPELINES: tuple[str, ...] = ("legacy", "preprocessing")

# Rows of mpc001's ``20words_mean_face.npy`` (68x2, 256x256 canvas) that either pipeline uses.
MEAN_FACE = {
    28: (128.48854473271905, 106.92459505614299),
    33: (128.87017960974802, 137.30253355584708),
    36: (92.52245552947952, 94.36876013925871),
    39: (112.7724172413806, 94.94360869870115),
    42: (145.52511509158018, 94.5349986248377),
    45: (166.67710071343456, 93.56562295717796),
    48: (107.16760614090083, 157.19606764242243),
    54: (152.19284005377082, 156.98711116207943),
}
STABLE_IDS = (33, 36, 39, 42, 45)  # legacy
STABLE_IDS_2022 = (28, 33, 36, 39, 42, 45, 48, 54)  # preprocessing/
MEAN_FACE_STABLE = np.array([MEAN_FACE[i] for i in STABLE_IDS])
MEAN_FACE_STABLE_2022 = np.array([MEAN_FACE[i] for i in STABLE_IDS_2022])
CANVAS = 256
ROI_SIZE = 96
CROP_SIZE = 88
MEAN, STD = 0.421, 0.165
WINDOW = 12  # both pipelines' ``window_margin``; also their minimum clip length
MOUTH = slice(48, 68)


class ClipTooShortError(TalkbenchError):
    """A clip has fewer frames than the mouth-ROI pipeline needs."""


def check_pipeline(pipeline: str) -> str:
    if pipeline not in ROI_PIPELINES:
        raise ValueError(f"unknown mouth-ROI pipeline {pipeline!r} (known: {', '.join(ROI_PIPELINES)})")
    return pipeline


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
    out = lm.copy()
    # start + i / gap * (stop - start), the official ``linear_interpolate`` formula (same rounding).
    for a, b in itertools.pairwise(idx):
        for i in range(1, b - a):
            out[a + i] = out[a] + i / float(b - a) * (out[b] - out[a])
    out[: idx[0]] = out[idx[0]]
    out[idx[-1] + 1 :] = out[idx[-1]]
    return out


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


def _check_length(n: int, source: str) -> None:
    if n < WINDOW:
        raise ClipTooShortError(f"clip has {n} frames; the mouth-ROI pipelines need at least {WINDOW}", source)


def frame_transforms(landmarks: np.ndarray, window: int = WINDOW, source: str = "<clip>") -> np.ndarray:
    """Legacy pipeline: ``(T, 2, 3)`` per-frame transforms from (already interpolated) landmarks."""
    n = len(landmarks)
    _check_length(n, source)
    stable = landmarks[:, list(STABLE_IDS)]
    # Mean over t..t+window-1 for every t with a full window (cumulative sums).
    c = np.concatenate([np.zeros((1, *stable.shape[1:])), np.cumsum(stable, axis=0)])
    means = (c[window:] - c[:-window]) / window
    ms = np.stack([similarity(m, MEAN_FACE_STABLE) for m in means])
    tail = np.repeat(ms[-1:], n - len(ms), axis=0)
    return np.concatenate([ms, tail])


def smoothed_landmarks(landmarks: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """``preprocessing/`` pipeline: landmarks averaged over the centred window that shrinks at the clip
    ends, each frame re-centred on its own landmark centroid."""
    n, half = len(landmarks), window // 2
    out = np.empty_like(landmarks)
    for t in range(n):
        m = min(half, t, n - 1 - t)
        s = landmarks[t - m : t + m + 1].mean(axis=0)
        s += landmarks[t].mean(axis=0) - s.mean(axis=0)
        out[t] = s
    return out


def partial_affine_transforms(smoothed: np.ndarray, source: str = "<clip>") -> np.ndarray:
    """``preprocessing/`` pipeline: ``(T, 2, 3)`` LMedS partial-affine fits of the eight stable points."""
    ms = []
    for t, lm in enumerate(smoothed):
        m, _ = cv2.estimateAffinePartial2D(lm[list(STABLE_IDS_2022)], MEAN_FACE_STABLE_2022, method=cv2.LMEDS)
        if m is None:
            raise FaceNotFoundError(f"frame {t}: no alignment transform for its landmarks", source)
        ms.append(m)
    return np.stack(ms)


def _patch_origin(m: np.ndarray, landmarks: np.ndarray, half: int = ROI_SIZE // 2) -> tuple[int, int]:
    """Top-left of the 96x96 cut in canvas pixels around the transformed mouth points of the 68
    ``landmarks`` (all 68 are transformed, then sliced, as the official code does)."""
    pts = (np.matmul(landmarks, m[:, :2].T) + m[:, 2])[MOUTH]
    cx, cy = pts.mean(0)
    cx = min(max(cx, half), CANVAS - half)
    cy = min(max(cy, half), CANVAS - half)
    return int(round(cx) - half), int(round(cy) - half)


def _legacy_rois(frames: np.ndarray, lm: np.ndarray, source: str) -> np.ndarray:
    ms = frame_transforms(lm, source=source)
    out = np.empty((len(frames), ROI_SIZE, ROI_SIZE), np.uint8)
    for t, (frame, m) in enumerate(zip(frames, ms, strict=True)):
        x0, y0 = _patch_origin(m, lm[t])
        shifted = m.copy()
        shifted[:, 2] -= (x0, y0)
        # Float warp then truncation, as skimage's warp of a [0, 1] image followed by astype(uint8).
        warped = cv2.warpAffine(frame.astype(np.float32) / 255.0, shifted, (ROI_SIZE, ROI_SIZE),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        rgb = (warped * 255.0).astype(np.uint8)
        out[t] = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return out


def _preprocessing_rois(frames: np.ndarray, lm: np.ndarray, source: str) -> np.ndarray:
    _check_length(len(frames), source)
    smoothed = smoothed_landmarks(lm)
    ms = partial_affine_transforms(smoothed, source)
    out = np.empty((len(frames), ROI_SIZE, ROI_SIZE), np.uint8)
    for t, (frame, m) in enumerate(zip(frames, ms, strict=True)):
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        # The whole canvas, not just the patch: OpenCV's fixed-point uint8 warp rounds the source
        # coordinates per output pixel, and a shifted matrix can move that rounding by one step.
        canvas = cv2.warpAffine(gray, m, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        x0, y0 = _patch_origin(m, smoothed[t])
        out[t] = canvas[y0 : y0 + ROI_SIZE, x0 : x0 + ROI_SIZE]
    return out


def mouth_rois(frames: np.ndarray, landmarks: np.ndarray, source: str = "<clip>",
               pipeline: RoiPipeline = "legacy") -> np.ndarray:
    """``(T, 96, 96)`` uint8 grayscale mouth ROIs from RGB frames and their 68-point landmarks.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        landmarks: ``(T, 68, 2)`` (x, y) in the frames' pixels; NaN rows are interpolated.
        source: name used in errors.
        pipeline: ``"legacy"`` or ``"preprocessing"`` (module docstring).

    Raises:
        FaceNotFoundError: no frame has landmarks.
        ClipTooShortError: fewer than 12 frames.
    """
    check_pipeline(pipeline)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {frames.shape}")
    if len(landmarks) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(landmarks)} landmark rows")
    _check_length(len(frames), source)
    lm = interpolate_landmarks(landmarks, source)
    if pipeline == "legacy":
        return _legacy_rois(frames, lm, source)
    return _preprocessing_rois(frames, lm, source)


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
    # float64 arithmetic then float32, as the official transforms (numpy) and collate (FloatTensor) round.
    x = rois[:, y0 : y0 + CROP_SIZE, x0 : x0 + CROP_SIZE].astype(np.float64) / 255.0
    if train and rng.random() < 0.5:
        x = x[:, :, ::-1]
    return ((x - MEAN) / STD)[None].astype(np.float32)
