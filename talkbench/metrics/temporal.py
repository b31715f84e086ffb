"""Temporal stability: landmark-velocity error (LVD) between generated and ground-truth mouths."""

from __future__ import annotations

from typing import Any

from talkbench.errors import MetricError
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.metrics.functional.landmarks import landmark_velocity_error
from talkbench.metrics.landmarks import BOX_SOURCES, _landmarks_pair, resolve_box_source
from talkbench.metrics.pairing import pair_frames


class LandmarkVelocityScorer:
    name = "lvd"
    requires = ("reference",)

    def __init__(self, device: str = "cpu", canonical: int = 128, box_source: str = "auto", **_: Any) -> None:
        if box_source not in BOX_SOURCES:
            raise MetricError(f"box_source must be one of {', '.join(BOX_SOURCES)}, got {box_source!r}")
        self.canonical, self.box_source = canonical, box_source
        self.outputs = (MetricInfo("lvd", False, "paired", f"lvd-dlib68-{box_source}-1",
                                   "mouth landmark velocity error (jitter), px/frame", "px", "LVD"),)

    def provenance(self) -> dict[str, Any]:
        return {"landmarks": "dlib shape_predictor_68_face_landmarks", "canonical": self.canonical,
                "box_source": self.box_source}

    def score(self, item: ScoreInput) -> dict[str, float]:
        gen, ref, _ = pair_frames(item.generated, item.reference)
        gen_lm, ref_lm = _landmarks_pair(gen, ref, resolve_box_source(self.box_source, item, len(gen)),
                                         item.reference_landmarks)
        value, pairs = landmark_velocity_error(gen_lm, ref_lm, self.canonical / gen.shape[1])
        return {"lvd": value, "lvd_pairs_scored": float(pairs)}
