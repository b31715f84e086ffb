"""Sanity lines a report shows next to its numbers.

The AV-offset check: a SyncNet critic that works finds offset 0 (within one frame) on in-sync ground
truth. The synthetic critic on real clips found it on 0 of 15 (12 at |offset| >= 12) while its LSE
columns still looked like numbers, so every report with LSE shows the ground truth's offset
distribution and flags a critic that cannot find offset 0.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

OFFSET_METRICS = ("av_offset", "av_offset_valid")
TOLERANCE = 1  # frames
FLAG_BELOW = 0.5  # fraction of ground-truth clips within TOLERANCE


@dataclass(frozen=True)
class OffsetSanity:
    metric: str
    n: int
    within: int
    counts: dict[int, int]

    @property
    def flagged(self) -> bool:
        return self.n > 0 and self.within / self.n < FLAG_BELOW

    @property
    def text(self) -> str:
        if self.n == 0:
            return (f"{self.metric}: no ground-truth clip was scored (run without --no-gt to check the critic "
                    "on the ground truth)")
        dist = ", ".join(f"{k:+d}: {v}" if k else f"0: {v}" for k, v in sorted(self.counts.items()))
        line = (f"Ground-truth AV offset ({self.metric}): within ±{TOLERANCE} frame of 0 on {self.within} of "
                f"{self.n} clips; distribution (frames: clips) {dist}.")
        if self.flagged:
            line += (" FLAGGED: the critic cannot find offset 0 on the ground truth, so its LSE numbers on this "
                     "data do not measure lip sync.")
        return line


def offset_sanity(frame: pd.DataFrame) -> list[OffsetSanity]:
    """One :class:`OffsetSanity` per offset metric present in the run's rows (tidy store frame)."""
    out = []
    for metric in OFFSET_METRICS:
        rows = frame[frame["metric"] == metric]
        if not len(rows):
            continue
        gt = rows[(rows["method"] == "gt") & rows["error"].isna()]["value"].to_numpy(np.float64)
        gt = gt[np.isfinite(gt)].astype(int)
        counts = Counter(int(v) for v in gt)
        out.append(OffsetSanity(metric, int(len(gt)), int(np.sum(np.abs(gt) <= TOLERANCE)), dict(counts)))
    return out
