"""LSE scorer (``lse``): LSE-D, LSE-C and AV offset with a named SyncNet critic.

Weights: ``weights=`` if given; else the official ``syncnet_v2.model`` when found in
``$TALKBENCH_WEIGHTS`` / the cache ``weights/`` folder; else the shipped synthetic critic
``talkbench/checkpoints/syncnet-synth.safetensors`` when present. Results always carry the critic's file and
sha256 (``provenance()``); the metric version includes the sha256 prefix so numbers from different
critics never share a column.

Frames: the protocol crops (face-centred) are resized to 224x224 and converted to BGR, as Wav2Lip's
``calculate_scores_LRS.py`` does for face-centred LRS2/LRW clips. A critic may declare a ``view`` on its
card (a box of the protocol crop in fractions, e.g. the mouth region for the synthetic critic, whose
faces are small in the crop): that box is cut out first and resized to 224x224.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talkbench.critics.sync_eval import FULL_VIEW, lse, to_syncnet_frames
from talkbench.errors import MetricError
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.types import PROTOCOL_SR


def default_syncnet_weights() -> Path | None:
    from talkbench.weights import find_weights, shipped_weights

    return find_weights("syncnet_v2.model") or shipped_weights("syncnet-synth")


class LSEScorer:
    name = "lse"
    requires: tuple[str, ...] = ()

    def __init__(self, device: str = "cpu", weights: str | Path | None = None, vshift: int = 15,
                 quirks: bool = True, **_: Any) -> None:
        from talkbench.critics.syncnet import load_syncnet
        from talkbench.weights import weights_record

        path = Path(weights) if weights else default_syncnet_weights()
        if path is None:
            raise MetricError("no SyncNet weights: put syncnet_v2.model in $TALKBENCH_WEIGHTS, pass --syncnet, "
                              "or train one with `talkbench train syncnet`")
        from talkbench.weights import read_card

        self.model = load_syncnet(path)
        self.record = weights_record(path)
        card = read_card(path) if str(path).endswith(".safetensors") else {}
        self.view = tuple(card.get("config", {}).get("view", FULL_VIEW))
        self.device, self.vshift, self.quirks = device, vshift, quirks
        suffix = "" if quirks else "_valid"
        tag = f"syncnet-{self.record['sha256'][:12]}-{'evaluate' if quirks else 'valid'}-1"
        self.outputs = (
            MetricInfo(f"lse_d{suffix}", False, "no-reference", tag, "SyncNet min mean distance (LSE-D)",
                       label=f"LSE-D{' (valid)' if suffix else ''}"),
            MetricInfo(f"lse_c{suffix}", True, "no-reference", tag, "SyncNet confidence: median - min (LSE-C)",
                       label=f"LSE-C{' (valid)' if suffix else ''}"),
            MetricInfo(f"av_offset{suffix}", False, "no-reference", tag, "offset (frames) at the minimum",
                       "frames", "AV offset", in_table=False),
        )

    def provenance(self) -> dict[str, Any]:
        return {"syncnet": self.record, "vshift": self.vshift, "quirks": self.quirks, "view": list(self.view)}

    def score(self, item: ScoreInput) -> dict[str, float]:
        frames = to_syncnet_frames(item.generated, self.view)
        if item.sample_rate != PROTOCOL_SR:
            raise MetricError(f"LSE needs 16 kHz audio, got {item.sample_rate}")
        r = lse(self.model, frames, item.audio, self.vshift, self.quirks, self.device)
        suffix = "" if self.quirks else "_valid"
        return {f"lse_d{suffix}": r.lse_d, f"lse_c{suffix}": r.lse_c, f"av_offset{suffix}": float(r.av_offset),
                f"lse_frames_scored{suffix}": float(r.windows)}


def LSEValidScorer(device: str = "cpu", **options: Any) -> LSEScorer:
    """LSE without syncnet_python's edge quirks (metric names ``*_valid``)."""
    return LSEScorer(device=device, quirks=False, **options)
