"""LPIPS distance from network features (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric", v0.1 as in the ``lpips`` package).

For each tapped layer l: unit-normalise every feature vector along channels (``x / (||x|| + 1e-10)``),
take the squared difference, weight the channels with the non-negative linear head ``w_l`` (a 1x1
convolution without bias), average over space; the distance is the sum over layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def normalize_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (torch.sqrt((x * x).sum(dim=1, keepdim=True)) + eps)


def lpips_from_features(feats0: Sequence[torch.Tensor], feats1: Sequence[torch.Tensor],
                        lin_weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """(N,) LPIPS distances from per-layer (N, C_l, H_l, W_l) features of both images and the
    (1, C_l, 1, 1) head weights."""
    if not (len(feats0) == len(feats1) == len(lin_weights)):
        raise ValueError(f"{len(feats0)}, {len(feats1)} feature layers and {len(lin_weights)} heads")
    total = None
    for f0, f1, w in zip(feats0, feats1, lin_weights):
        d = (normalize_channels(f0) - normalize_channels(f1)) ** 2
        layer = F.conv2d(d, w).mean(dim=(2, 3))[:, 0]
        total = layer if total is None else total + layer
    return total
