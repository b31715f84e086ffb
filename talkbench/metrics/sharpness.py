"""CPBD sharpness scorer (no reference): mean CPBD over the generated crop's frames."""

from __future__ import annotations

from typing import Any

import numpy as np

from talkbench.errors import MetricError
from talkbench.metrics._nets_runtime import frame_indices
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.metrics.functional.sharpness import cpbd


class CPBDScorer:
    name = "cpbd"

    def __init__(self, device: str = "cpu", frame_step: int = 1, max_frames: int | None = None, **_: Any) -> None:
        self.frame_step, self.max_frames = int(frame_step), max_frames
        self.outputs = (MetricInfo(
            "cpbd", True, "no-reference", f"cpbd-narvekar2011-step{self.frame_step}-1",
            "cumulative probability of blur detection (Narvekar & Karam 2011), mean over frames; gray BT.601",
            label="CPBD"),)

    def provenance(self) -> dict[str, Any]:
        return {"protocol": {"frames": (f"frames 0, {self.frame_step}, {2 * self.frame_step}, ..." if self.frame_step > 1 else "all frames") + (f", at most {self.max_frames}" if
                             self.max_frames else ""), "input": "protocol crop, gray (BT.601), no resize",
                             "pooling": "mean over frames with an edge block", "blocks": "64x64"}}

    def score(self, item: ScoreInput) -> dict[str, float]:
        frames = item.generated[frame_indices(len(item.generated), self.frame_step, self.max_frames)]
        values = np.array([cpbd(f) for f in frames])
        ok = np.isfinite(values)
        if not ok.any():
            raise MetricError(f"CPBD: no 64x64 edge block in any of {len(frames)} frames "
                              f"({item.generated.shape[1]}x{item.generated.shape[2]} px)")
        return {"cpbd": float(values[ok].mean()), "cpbd_frames_scored": float(ok.sum())}
