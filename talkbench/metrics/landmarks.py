"""LMD scorer: mouth landmarks from the same backend on generated and ground-truth crops.

Box policy (``box_source``): ``"reference"`` (default) finds the face once on each ground-truth crop
and predicts landmarks inside that same box on both the ground-truth and the generated crop, so the
distance measures mouth shape, not detector jitter (the protocol crops share head pose by
construction: the pose prior is the target's upper half); ``"detect"`` detects independently on each
side. Distances are reported in pixels of a ``canonical`` crop (default 128): landmarks found on an
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


def _landmarks_pair(gen: np.ndarray, ref: np.ndarray, box_source: str) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks of both sides; the last result is memoised so LMD and LVD on the same sample share
    one detection pass."""
    key = (gen.shape, ref.shape, box_source, hash(gen.tobytes()), hash(ref.tobytes()))
    if _LAST.get("key") == key:
        return _LAST["value"]
    value = _compute_landmarks_pair(gen, ref, box_source)
    _LAST.update(key=key, value=value)
    return value


def _compute_landmarks_pair(gen: np.ndarray, ref: np.ndarray, box_source: str) -> tuple[np.ndarray, np.ndarray]:
    from talkbench.faces.detect import FaceDetector
    from talkbench.faces.landmarks import LandmarkPredictor, detect_landmarks

    predictor = LandmarkPredictor()
    # Crops are small (96-224 px): upsample once so HOG sees faces above its ~80 px minimum.
    detector = FaceDetector(upsample=1, max_side=0)
    boxes = np.full((len(ref), 4), np.nan)
    for t, frame in enumerate(ref):
        found = detector.detect(frame)
        if len(found):
            boxes[t] = found[0, :4]
    ref_lm = detect_landmarks(ref, boxes, predictor)
    if box_source == "reference":
        gen_lm = detect_landmarks(gen, boxes, predictor)
    elif box_source == "detect":
        gen_lm = detect_landmarks(gen, None, predictor, detector)
    else:
        raise MetricError(f"box_source must be 'reference' or 'detect', got {box_source!r}")
    return gen_lm, ref_lm


class LMDScorer:
    name = "lmd"

    def __init__(self, device: str = "cpu", variant: str = "mean-centred", canonical: int = 128,
                 box_source: str = "reference", **_: Any) -> None:
        if variant not in LMD_VARIANTS:
            raise MetricError(f"unknown LMD variant {variant!r}; known: {', '.join(LMD_VARIANTS)}")
        self.variant, self.canonical, self.box_source = variant, canonical, box_source
        self.outputs = (
            MetricInfo("lmd", False, "paired", f"lmd-{variant}-dlib68-{box_source}-1",
                       f"mouth landmark distance ({LMD_VARIANTS[variant].source}), px at {canonical}", "px"),
        )

    def provenance(self) -> dict[str, Any]:
        return {"landmarks": "dlib shape_predictor_68_face_landmarks", "variant": self.variant,
                "canonical": self.canonical, "box_source": self.box_source}

    def score(self, item: ScoreInput) -> dict[str, float]:
        gen, ref, _ = pair_frames(item.generated, item.reference)
        gen_lm, ref_lm = _landmarks_pair(gen, ref, self.box_source)
        value, scored, missing = landmark_distance(gen_lm, ref_lm, self.variant, self.canonical / gen.shape[1])
        return {"lmd": value, "lmd_frames_scored": float(scored), "lmd_frames_missing": float(missing)}
