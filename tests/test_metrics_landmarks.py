"""LMD variants reproduce their published definitions on hand-built landmark sets; LVD separates
jitter from a constant offset; scorers on real crops."""

from __future__ import annotations

import numpy as np
import pytest

from talkbench.errors import MetricError
from talkbench.metrics import METRICS
from talkbench.metrics.accumulators import LMDAccumulator
from talkbench.metrics.base import ScoreInput
from talkbench.metrics.functional.landmarks import (
    landmark_distance,
    landmark_velocity_error,
    per_frame_distance,
)


def _ref(t: int = 5) -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.uniform(20, 100, (t, 68, 2))


def test_identical_landmarks_give_zero() -> None:
    r = _ref()
    for variant in ("mean-centred", "sum-centred", "l1-raw", "m-lmd-68", "face-mean-centred"):
        assert landmark_distance(r, r, variant)[0] == 0.0


def test_variants_follow_their_definitions() -> None:
    r = _ref(4)
    g = r.copy()
    g[:, 48:68] += np.array([3.0, 4.0])  # every mouth point moved by a 5 px vector
    # Centred variants ignore a pure translation of the mouth... except for the centroid shift they
    # remove: the mouth centroid moves by the same (3, 4), so the centred distance is 0.
    assert landmark_distance(g, r, "mean-centred")[0] == pytest.approx(0.0, abs=1e-12)
    # Uncentred: ViCo L1 is mean |dx|,|dy| = (3 + 4) / 2; M-LMD sums 20 points of 5 px over 68.
    assert landmark_distance(g, r, "l1-raw")[0] == pytest.approx(3.5)
    assert landmark_distance(g, r, "m-lmd-68")[0] == pytest.approx(20 * 5.0 / 68)
    # A deformation: one point of the mouth moved by 10 px in x.
    h = r.copy()
    h[:, 50, 0] += 10.0
    c = h[:, 48:68] - h[:, 48:68].mean(axis=1, keepdims=True)
    d = r[:, 48:68] - r[:, 48:68].mean(axis=1, keepdims=True)
    per_point = np.linalg.norm(c - d, axis=2)
    assert landmark_distance(h, r, "mean-centred")[0] == pytest.approx(per_point.mean())
    assert landmark_distance(h, r, "sum-centred")[0] == pytest.approx(per_point.sum(axis=1).mean())  # ATVGnet
    assert landmark_distance(h, r, "mean-centred", scale=2.0)[0] == pytest.approx(2 * per_point.mean())


def test_missing_frames_are_counted_not_zero_filled() -> None:
    r = _ref(4)
    g = r.copy()
    g[:, 50, 0] += 10.0
    g[1] = np.nan
    value, scored, missing = landmark_distance(g, r)
    assert (scored, missing) == (3, 1)
    assert value == pytest.approx(np.nanmean(per_frame_distance(g, r)))
    with pytest.raises(MetricError, match="no frame"):
        landmark_distance(np.full_like(r, np.nan), r)


def test_jitter_scores_worse_than_smooth_copy_with_same_lmd() -> None:
    t = 20
    base = np.tile(_ref(1), (t, 1, 1))
    base[:, 57, 1] += 5 * np.sin(np.arange(t) / 3)  # the jaw opens and closes
    deform = np.zeros((68, 2))
    deform[48:60, 1] = np.linspace(-2, 2, 12)
    smooth = base + deform
    jitter = base + deform * np.where(np.arange(t) % 2 == 0, 1.0, -1.0)[:, None, None]
    assert landmark_distance(smooth, base)[0] == pytest.approx(landmark_distance(jitter, base)[0])
    assert landmark_velocity_error(smooth, base)[0] == pytest.approx(0.0, abs=1e-9)
    assert landmark_velocity_error(jitter, base)[0] > 1.0


def test_accumulator_chunked_equals_one_shot() -> None:
    r = _ref(6)
    g = r + np.random.default_rng(0).normal(0, 1, r.shape)
    acc = LMDAccumulator()
    acc.update(g[:4], r[:4])
    acc.update(g[4:], r[4:])
    assert acc.compute() == pytest.approx(landmark_distance(g, r)[0])


def test_lmd_scorer_on_real_face(talking_clip) -> None:
    from talkbench.faces.crop import load_clip
    from talkbench.types import Sample

    clip = load_clip(Sample("folder", "test", "t", talking_clip), size=128, landmarks=False)
    frames = clip.frames[:6]
    same = METRICS.get("lmd")().score(ScoreInput("t", frames, clip.audio, reference=frames))
    assert same["lmd"] == 0.0 and same["lmd_frames_scored"] == 6
    # Squash the lower face vertically: the mouth shape changes, so LMD grows.
    import cv2

    squashed = frames.copy()
    for i, f in enumerate(frames):
        lower = cv2.resize(f[64:], (128, 48))
        squashed[i, 64:112] = lower
        squashed[i, 112:] = f[127]
    out = METRICS.get("lmd")().score(ScoreInput("t", squashed, clip.audio, reference=frames))
    assert out["lmd"] > 1.0
    lvd = METRICS.get("lvd")().score(ScoreInput("t", frames, clip.audio, reference=frames))
    assert lvd["lvd"] == 0.0


def test_cached_reference_landmarks_give_the_boxes(talking_clip) -> None:
    """The runner passes cached ground-truth landmarks: LMD takes both sides' box from them (no HOG
    on the ground truth), still scores the ground truth against itself as 0, and counts frames whose
    cached landmarks are NaN as missing."""
    import cv2

    from talkbench.faces.crop import load_clip
    from talkbench.metrics.landmarks import boxes_from_landmarks
    from talkbench.types import Sample

    clip = load_clip(Sample("folder", "test", "t", talking_clip), size=128, landmarks=True)
    frames, lms = clip.frames[:6], np.array(clip.landmarks[:6], np.float64)
    assert not np.isnan(lms).any()
    boxes = boxes_from_landmarks(lms)
    assert np.array_equal(boxes[:, :2], lms.min(axis=1)) and np.array_equal(boxes[:, 2:], lms.max(axis=1))
    lms[2] = np.nan  # the cache had no face in frame 2
    scorer = METRICS.get("lmd")()
    same = scorer.score(ScoreInput("t", frames, clip.audio, reference=frames, reference_landmarks=lms))
    assert same["lmd_box_from_landmarks"] == 1.0 and same["lmd"] == 0.0
    assert (same["lmd_frames_scored"], same["lmd_frames_missing"]) == (5, 1)
    squashed = frames.copy()
    for i, f in enumerate(frames):
        squashed[i, 64:112] = cv2.resize(f[64:], (128, 48))
        squashed[i, 112:] = f[127]
    worse = scorer.score(ScoreInput("t", squashed, clip.audio, reference=frames, reference_landmarks=lms))
    assert worse["lmd"] > 1.0
    lvd = METRICS.get("lvd")().score(ScoreInput("t", squashed, clip.audio, reference=frames, reference_landmarks=lms))
    assert lvd["lvd_pairs_scored"] == 3  # pairs (0,1), (3,4), (4,5): both pairs touching frame 2 skipped
    with pytest.raises(MetricError, match="reference_landmarks"):
        METRICS.get("lmd")(box_source="landmarks").score(ScoreInput("t", frames, clip.audio, reference=frames))
    with pytest.raises(MetricError, match="box_source"):
        METRICS.get("lmd")(box_source="nope")
