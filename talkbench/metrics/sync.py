"""LSE scorer (``lse``): LSE-D, LSE-C and AV offset with a named SyncNet critic.

Weights: ``weights=`` if given; else the official ``syncnet_v2.model`` when found in
``$TALKBENCH_WEIGHTS`` / the cache ``weights/`` folder; else the shipped synthetic critic
``checkpoints/syncnet-synth.safetensors`` when present. Results always carry the critic's file and
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

import cv2
import numpy as np

from talkbench.errors import MetricError
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.metrics.functional.sync import lse


def default_syncnet_weights() -> Path | None:
    from talkbench._cli.doctor import find_weights
    from talkbench.weights import shipped_weights

    return find_weights("syncnet_v2.model") or shipped_weights("syncnet-synth")


FULL_VIEW = (0.0, 0.0, 1.0, 1.0)


def to_syncnet_frames(frames_rgb: np.ndarray, view: tuple[float, float, float, float] = FULL_VIEW) -> np.ndarray:
    """(T, S, S, 3) RGB crops -> (T, 224, 224, 3) BGR of the ``view`` box (x0, y0, x1, y1 in fractions)."""
    if tuple(view) != FULL_VIEW:
        h, w = frames_rgb.shape[1:3]
        x0, y0, x1, y1 = view
        frames_rgb = frames_rgb[:, round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)]
    if frames_rgb.shape[1:3] == (224, 224):
        return np.ascontiguousarray(frames_rgb[..., ::-1])
    interp = cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (224, 224), interpolation=interp)[..., ::-1] for f in frames_rgb])


class LSEScorer:
    name = "lse"

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
            MetricInfo(f"lse_d{suffix}", False, "no-reference", tag, "SyncNet min mean distance (LSE-D)"),
            MetricInfo(f"lse_c{suffix}", True, "no-reference", tag, "SyncNet confidence: median - min (LSE-C)"),
            MetricInfo(f"av_offset{suffix}", False, "no-reference", tag, "offset (frames) at the minimum"),
        )

    def provenance(self) -> dict[str, Any]:
        return {"syncnet": self.record, "vshift": self.vshift, "quirks": self.quirks, "view": list(self.view)}

    def score(self, item: ScoreInput) -> dict[str, float]:
        frames = to_syncnet_frames(item.generated, self.view)
        if item.sample_rate != 16000:
            raise MetricError(f"LSE needs 16 kHz audio, got {item.sample_rate}")
        r = lse(self.model, frames, item.audio, self.vshift, self.quirks, self.device)
        suffix = "" if self.quirks else "_valid"
        return {f"lse_d{suffix}": r.lse_d, f"lse_c{suffix}": r.lse_c, f"av_offset{suffix}": float(r.av_offset),
                f"lse_frames_scored{suffix}": float(r.windows)}


def LSEValidScorer(device: str = "cpu", **options: Any) -> LSEScorer:
    """LSE without syncnet_python's edge quirks (metric names ``*_valid``)."""
    return LSEScorer(device=device, quirks=False, **options)
