"""PSNR and SSIM scorers on the protocol's face crops (or full frames with ``--crop none``)."""

from __future__ import annotations

from typing import Any

from talkbench.metrics.accumulators import PSNRAccumulator, SSIMAccumulator
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.metrics.pairing import pair_frames

PSNR_INFO = MetricInfo(
    "psnr", True, "paired", "psnr-1",
    "mean per-frame PSNR (dB, uint8 RGB, data range 255); identical frames counted apart", "dB", "PSNR",
)
SSIM_INFO = MetricInfo(
    "ssim", True, "paired", "ssim-1",
    "mean per-frame SSIM, Gaussian window sigma 1.5, per channel (= skimage gaussian_weights=True)", "", "SSIM",
)


class _PairedImageScorer:
    """Shared set-up of the pure image metrics (no critic, so no provenance)."""

    requires = ("reference",)

    def __init__(self, device: str = "cpu", **_: Any) -> None:
        self.device = device

    def provenance(self) -> dict[str, Any]:
        return {}


class PSNRScorer(_PairedImageScorer):
    name = "psnr"
    outputs = (PSNR_INFO,)

    def score(self, item: ScoreInput) -> dict[str, float]:
        gen, ref, _ = pair_frames(item.generated, item.reference)
        acc = PSNRAccumulator(device=self.device)
        acc.update(gen, ref)
        return {"psnr": acc.compute(), "psnr_identical_frames": float(acc.skipped)}


class SSIMScorer(_PairedImageScorer):
    name = "ssim"
    outputs = (SSIM_INFO,)

    def score(self, item: ScoreInput) -> dict[str, float]:
        gen, ref, _ = pair_frames(item.generated, item.reference)
        acc = SSIMAccumulator(device=self.device)
        acc.update(gen, ref)
        return {"ssim": acc.compute()}
