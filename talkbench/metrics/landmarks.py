"""LMD scorer: mouth landmarks from the same backend on generated and ground-truth crops.

Box policy (``box_source``): ``"reference"`` (default) finds the face once on each ground-truth crop
and predicts landmarks inside that same box on both the ground-truth and the generated crop, so the
distance measures mouth shape, not detector jitter (the protocol crops share head pose by
construction: the pose prior is the target's upper half); ``"landmarks"`` takes that shared box from
the cached ground-truth landmarks the runner passes in ``ScoreInput.reference_landmarks`` (their
bounding box per frame), which skips HOG detection on the ground truth, the slowest step; ``"auto"``
(default) is ``"landmarks"`` when those are given and ``"reference"`` otherwise, and reports which one
it used in ``lmd_box_from_landmarks`` (1/0); ``"detect"`` detects independently on each side.
Landmarks of both sides are always re-predicted inside the same box (never the cached ones directly),
so the ground truth scored against itself is exactly 0 whatever box policy made the cache. Distances are reported in pixels of a ``canonical`` crop (default 128): landmarks found on an
S-pixel crop are scaled by canonical / S.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from talkbench.errors import MetricError
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.metrics.functional.landmarks import LMD_VARIANTS, landmark_distance
from talkbench.metrics.pairing import pair_frames

_LAST: dict = {}


BOX_SOURCES = ("auto", "reference", "landmarks", "detect")


def boxes_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Per-frame face boxes ``(T, 4)`` (x1, y1, x2, y2): the bounding box of the 68 points (NaN rows
    stay NaN, i.e. no face)."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise MetricError(f"reference landmarks must be (T, 68, 2), got {lm.shape}")
    with np.errstate(invalid="ignore"):
        return np.concatenate([lm.min(axis=1), lm.max(axis=1)], axis=1)


def resolve_box_source(box_source: str, item: ScoreInput, n: int) -> str:
    """The box policy used for ``item`` (``auto`` resolved); cached landmarks must cover ``n`` frames."""
    has = item.reference_landmarks is not None and len(item.reference_landmarks) >= n
    if box_source == "auto":
        return "landmarks" if has else "reference"
    if box_source == "landmarks" and not has:
        raise MetricError("box_source='landmarks' needs ScoreInput.reference_landmarks covering every frame")
    return box_source


def _landmarks_pair(gen: np.ndarray, ref: np.ndarray, box_source: str,
                    ref_landmarks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks of both sides; the last result is memoised so LMD and LVD on the same sample share
    one detection pass."""
    lm_key = None if ref_landmarks is None else hash(np.asarray(ref_landmarks).tobytes())
    key = (gen.shape, ref.shape, box_source, hash(gen.tobytes()), hash(ref.tobytes()), lm_key)
    if _LAST.get("key") == key:
        return _LAST["value"]
    value = _compute_landmarks_pair(gen, ref, box_source, ref_landmarks)
    _LAST.update(key=key, value=value)
    return value


def _compute_landmarks_pair(gen: np.ndarray, ref: np.ndarray, box_source: str,
                            ref_landmarks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    from talkbench.faces.detect import FaceDetector
    from talkbench.faces.landmarks import LandmarkPredictor, detect_landmarks

    if box_source not in ("reference", "landmarks", "detect"):
        raise MetricError(f"box_source must be one of {', '.join(BOX_SOURCES)}, got {box_source!r}")
    predictor = LandmarkPredictor()
    # Crops are small (96-224 px): upsample once so HOG sees faces above its ~80 px minimum.
    detector = FaceDetector(upsample=1, max_side=0)
    if box_source == "landmarks":
        boxes = boxes_from_landmarks(np.asarray(ref_landmarks)[: len(ref)])
    else:
        boxes = np.full((len(ref), 4), np.nan)
        for t, frame in enumerate(ref):
            found = detector.detect(frame)
            if len(found):
                boxes[t] = found[0, :4]
    ref_lm = detect_landmarks(ref, boxes, predictor)
    if box_source in ("reference", "landmarks"):
        gen_lm = detect_landmarks(gen, boxes, predictor)
    elif box_source == "detect":
        gen_lm = detect_landmarks(gen, None, predictor, detector)
    return gen_lm, ref_lm


class LMDScorer:
    name = "lmd"
    requires = ("reference",)

    def __init__(self, device: str = "cpu", variant: str = "mean-centred", canonical: int = 128,
                 box_source: str = "auto", **_: Any) -> None:
        if variant not in LMD_VARIANTS:
            raise MetricError(f"unknown LMD variant {variant!r}; known: {', '.join(LMD_VARIANTS)}")
        if box_source not in BOX_SOURCES:
            raise MetricError(f"box_source must be one of {', '.join(BOX_SOURCES)}, got {box_source!r}")
        self.variant, self.canonical, self.box_source = variant, canonical, box_source
        self.outputs = (
            MetricInfo("lmd", False, "paired", f"lmd-{variant}-dlib68-{box_source}-1",
                       f"mouth landmark distance ({LMD_VARIANTS[variant].source}), px at {canonical}", "px", "LMD"),
        )

    def provenance(self) -> dict[str, Any]:
        return {"landmarks": "dlib shape_predictor_68_face_landmarks", "variant": self.variant,
                "canonical": self.canonical, "box_source": self.box_source}

    def score(self, item: ScoreInput) -> dict[str, float]:
        gen, ref, _ = pair_frames(item.generated, item.reference)
        boxes = resolve_box_source(self.box_source, item, len(gen))
        gen_lm, ref_lm = _landmarks_pair(gen, ref, boxes, item.reference_landmarks)
        value, scored, missing = landmark_distance(gen_lm, ref_lm, self.variant, self.canonical / gen.shape[1])
        return {"lmd": value, "lmd_frames_scored": float(scored), "lmd_frames_missing": float(missing),
                "lmd_box_from_landmarks": float(boxes == "landmarks")}


class LMDSpanScorer(LMDScorer):
    """LMD inside the masked-audio span (``ScoreInput.meta["mask_frames"]``, set by the runner for
    ``method@mask=N``) and outside it: how well lips are inferred from context alone (paper Fig. 5).
    Same landmarks (one pass, shared with ``lmd``) and variant as ``lmd``."""

    name = "lmd-span"

    def __init__(self, device: str = "cpu", variant: str = "mean-centred", canonical: int = 128,
                 box_source: str = "auto", **options: Any) -> None:
        super().__init__(device, variant, canonical, box_source, **options)
        version = f"lmd-span-{variant}-dlib68-{box_source}-1"
        self.outputs = (
            MetricInfo("lmd_span", False, "paired", version, "LMD on the frames whose audio was masked", "px",
                       "LMD in span"),
            MetricInfo("lmd_outside", False, "paired", version, "LMD on the other frames", "px", "LMD outside"),
        )

    def score(self, item: ScoreInput) -> dict[str, float]:
        span = np.asarray(item.meta.get("mask_frames") or (), dtype=int)
        if span.size == 0:
            raise MetricError("lmd-span needs a masked span: run the method as NAME@mask=N")
        gen, ref, _ = pair_frames(item.generated, item.reference)
        boxes = resolve_box_source(self.box_source, item, len(gen))
        gen_lm, ref_lm = _landmarks_pair(gen, ref, boxes, item.reference_landmarks)
        inside = np.zeros(len(gen), bool)
        inside[span[span < len(gen)]] = True
        scale = self.canonical / gen.shape[1]
        out = {}
        for name, sel in (("lmd_span", inside), ("lmd_outside", ~inside)):
            try:
                out[name] = landmark_distance(gen_lm[sel], ref_lm[sel], self.variant, scale)[0]
            except MetricError:
                out[name] = float("nan")
        return out
