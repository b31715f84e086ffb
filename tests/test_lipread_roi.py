"""Mouth ROI against an independent reference: the official pipeline's steps written with skimage
(``estimate_transform('similarity')``, ``warp`` of the whole 256x256 canvas, ``cut_patch``) on the same
frames and landmarks."""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
import pytest
from skimage import transform as tf

from talkbench.critics.mouth_roi import (
    MEAN_FACE_STABLE,
    STABLE_IDS,
    ClipTooShortError,
    frame_transforms,
    interpolate_landmarks,
    mouth_rois,
    similarity,
    to_model_input,
)
from talkbench.errors import FaceNotFoundError


def _reference_rois(frames: np.ndarray, landmarks: np.ndarray, margin: int = 12) -> np.ndarray:  # legacy
    """The legacy crop_mouth_from_video.py algorithm (queue of ``margin`` frames), with skimage."""
    mean_face = np.zeros((68, 2))
    mean_face[list(STABLE_IDS)] = MEAN_FACE_STABLE

    def warp(img, tform):
        return (tf.warp(img, inverse_map=tform.inverse, output_shape=(256, 256)) * 255).astype("uint8")

    def cut(img, pts, half=48):
        cx, cy = np.mean(pts, axis=0)
        cx, cy = min(max(cx, half), 256 - half), min(max(cy, half), 256 - half)
        return img[int(round(cy) - half): int(round(cy) + half), int(round(cx) - half): int(round(cx) + half)]

    qf, ql, seq = deque(), deque(), []
    trans = None
    for i, (frame, lm) in enumerate(zip(frames, landmarks, strict=True)):
        ql.append(lm)
        qf.append(frame)
        if len(qf) == margin:
            smoothed = np.mean(ql, axis=0)
            cur_lm, cur_f = ql.popleft(), qf.popleft()
            trans = tf.estimate_transform("similarity", smoothed[list(STABLE_IDS)], mean_face[list(STABLE_IDS)])
            seq.append(cut(warp(cur_f, trans), trans(cur_lm)[48:68]))
        if i == len(landmarks) - 1:
            while qf:
                cur_f = qf.popleft()
                seq.append(cut(warp(cur_f, trans), trans(ql.popleft())[48:68]))
    return np.stack([cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in seq])


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n, size = 16, 128
    noise = rng.random((n, size // 4, size // 4, 3)).astype(np.float32)
    frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in noise])
    frames = np.clip(frames * 255, 0, 255).astype(np.uint8)
    base = rng.uniform(20, 108, (68, 2))
    base[list(STABLE_IDS)] = MEAN_FACE_STABLE * 0.45 + 5  # a face about half the canvas scale
    base[48:68] = rng.normal((63, 76), (6, 3), (20, 2))
    drift = np.cumsum(rng.normal(0, 0.7, (n, 1, 2)), axis=0)  # head motion, smoothed by the window
    lms = (base[None] + drift + rng.normal(0, 0.3, (n, 68, 2))).astype(np.float32)
    return frames, lms


def test_similarity_matches_skimage():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    want = tf.estimate_transform("similarity", src, MEAN_FACE_STABLE).params[:2]
    np.testing.assert_allclose(similarity(src, MEAN_FACE_STABLE), want, atol=1e-9)


def test_rois_match_reference_pipeline(clip):
    frames, lms = clip
    got = mouth_rois(frames, lms)
    want = _reference_rois(frames, lms)
    assert got.shape == want.shape == (16, 96, 96)
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.mean() < 0.3 and (diff <= 1).mean() > 0.99, (diff.mean(), diff.max())


def test_window_smoothing_and_tail(clip):
    _, lms = clip
    ms = frame_transforms(lms.astype(np.float64))
    # Frame 0 uses the mean of frames 0..11; the last 11 frames reuse the last window's transform.
    np.testing.assert_allclose(ms[0], similarity(lms[:12].mean(0)[list(STABLE_IDS)], MEAN_FACE_STABLE), atol=1e-4)
    assert all(np.allclose(ms[i], ms[4]) for i in range(5, 16))
    assert not np.allclose(ms[3], ms[4])
    with pytest.raises(ClipTooShortError, match="clip has 5 frames"):  # the official script crashes on these
        frame_transforms(lms[:5].astype(np.float64))


def test_interpolation_and_no_face(clip):
    _, lms = clip
    holes = lms.copy().astype(np.float64)
    holes[[0, 1, 5, 6, 15]] = np.nan
    filled = interpolate_landmarks(holes)
    np.testing.assert_allclose(filled[0], holes[2])
    np.testing.assert_allclose(filled[15], holes[14])
    np.testing.assert_allclose(filled[5], holes[4] + (holes[7] - holes[4]) / 3, atol=1e-9)
    with pytest.raises(FaceNotFoundError, match="no frame has face landmarks"):
        mouth_rois(clip[0], np.full_like(lms, np.nan), "x.mp4")


def test_model_input_crop_flip_normalisation():
    rois = np.random.default_rng(2).integers(0, 256, (3, 96, 96), dtype=np.uint8)
    x = to_model_input(rois)
    assert x.shape == (1, 3, 88, 88)
    np.testing.assert_allclose(x[0], (rois[:, 4:92, 4:92] / 255.0 - 0.421) / 0.165, atol=1e-6)
    seen_flip = seen_plain = False
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = to_model_input(rois, train=True, rng=rng)[0] * 0.165 + 0.421
        # every training crop is some 88x88 window of the ROI, mirrored or not
        for flip in (False, True):
            src = rois[:, :, ::-1] if flip else rois
            found = any(np.allclose(y, src[:, i:i + 88, j:j + 88] / 255.0, atol=1e-5)
                        for i in range(9) for j in range(9))
            seen_flip |= found and flip
            seen_plain |= found and not flip
    assert seen_flip and seen_plain
