"""Thin stateful accumulators over the pure functions: ``update`` / ``compute`` / ``reset``, keeping
only sufficient statistics (sums and counts), so chunked accumulation equals one-shot computation."""

from __future__ import annotations

import math

import numpy as np

from talkbench.metrics.functional.image import peak_signal_noise_ratio, structural_similarity
from talkbench.metrics.functional.landmarks import per_frame_distance


class _FrameMean:
    """Mean of a per-frame quantity over every frame seen, with non-finite frames counted apart."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0
        self.skipped = 0

    def _add(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float64)
        finite = np.isfinite(values)
        self.total += float(values[finite].sum())
        self.count += int(finite.sum())
        self.skipped += int((~finite).sum())

    def compute(self) -> float:
        if self.count == 0:
            return math.inf if self.skipped else math.nan
        return self.total / self.count


class PSNRAccumulator(_FrameMean):
    """Mean per-frame PSNR over frames that differ; identical frames (infinite PSNR) are counted in
    ``skipped``; a clip whose frames are all identical gives ``inf``."""

    def __init__(self, data_range: float = 255.0, device: str | None = None) -> None:
        self.data_range, self.device = data_range, device
        super().__init__()

    def update(self, preds: np.ndarray, target: np.ndarray) -> None:
        self._add(peak_signal_noise_ratio(preds, target, self.data_range, self.device).cpu().numpy())


class SSIMAccumulator(_FrameMean):
    def __init__(self, data_range: float = 255.0, device: str | None = None) -> None:
        self.data_range, self.device = data_range, device
        super().__init__()

    def update(self, preds: np.ndarray, target: np.ndarray) -> None:
        self._add(structural_similarity(preds, target, self.data_range, device=self.device).cpu().numpy())


class LMDAccumulator(_FrameMean):
    """Frame-pooled LMD; frames without landmarks on either side are counted in ``skipped``."""

    def __init__(self, variant: str = "mean-centred", scale: float = 1.0) -> None:
        self.variant, self.scale = variant, scale
        super().__init__()

    def update(self, gen_landmarks: np.ndarray, ref_landmarks: np.ndarray) -> None:
        self._add(per_frame_distance(gen_landmarks, ref_landmarks, self.variant, self.scale))
