"""AlexNet in torchvision's layout (``alexnet-owt-7be5be79.pth``: ``features.{0,3,6,8,10}``, plus
``classifier.{1,4,6}`` which LPIPS does not use) and the LPIPS linear heads in the ``lpips``
package's layout (``lin{0..4}.model.1.weight``, 1x1 convolutions without bias, from
``lpips/weights/v0.1/alex.pth``).

LPIPS (Zhang et al. 2018, v0.1): inputs in [-1, 1] are shifted and scaled per channel
(``ScalingLayer``), the five ReLU outputs (after features 1, 4, 7, 9, 11) are compared by
:func:`talkbench.metrics.functional.perceptual.lpips_from_features`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
ALEX_CHANNELS = (64, 192, 384, 256, 256)
_TAPS = (1, 4, 7, 9, 11)  # indices of the ReLUs whose outputs LPIPS compares


class AlexNetFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features[: _TAPS[-1] + 1]):
            x = layer(x)
            if i in _TAPS:
                out.append(x)
        return out


class LPIPSHeads(nn.Module):
    """``lin{0..4}.model.1.weight``: the lpips package's module names (``model.0`` is a Dropout)."""

    def __init__(self) -> None:
        super().__init__()
        for i, c in enumerate(ALEX_CHANNELS):
            setattr(self, f"lin{i}", nn.Module())
            getattr(self, f"lin{i}").model = nn.Sequential(nn.Dropout(), nn.Conv2d(c, 1, 1, bias=False))

    def weights(self) -> list[torch.Tensor]:
        return [getattr(self, f"lin{i}").model[1].weight for i in range(len(ALEX_CHANNELS))]


class LPIPSAlex(nn.Module):
    """AlexNet trunk + linear heads; ``forward(a, b)`` takes RGB in [-1, 1] and returns (N,) distances."""

    def __init__(self) -> None:
        super().__init__()
        self.net = AlexNetFeatures()
        self.heads = LPIPSHeads()
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from talkbench.metrics.functional.perceptual import lpips_from_features

        fa = self.net.taps((a - self.shift) / self.scale)
        fb = self.net.taps((b - self.shift) / self.scale)
        return lpips_from_features(fa, fb, self.heads.weights())


# torchvision's classifier, present in alexnet-owt-7be5be79.pth and unused by LPIPS: checked, then dropped.
_CLASSIFIER = {"classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,), "classifier.4.weight": (4096, 4096),
               "classifier.4.bias": (4096,), "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)}


def load_lpips_alex(trunk: str | Path, heads: str | Path) -> LPIPSAlex:
    """AlexNet trunk (torchvision file, features only or with its classifier) + lpips heads, strict."""
    from talkbench.errors import CheckpointError
    from talkbench.metrics.nets.weights import read_state_dict
    from talkbench.weights import load_state_dict_strict

    model = LPIPSAlex()
    sd = read_state_dict(trunk, "alexnet")
    extra = {k: v for k, v in sd.items() if k.startswith("classifier.")}
    bad = [f"{k}: {tuple(v.shape)}" for k, v in extra.items() if _CLASSIFIER.get(k) != tuple(v.shape)]
    if bad:
        raise CheckpointError(f"not torchvision's AlexNet classifier: {'; '.join(bad)}", trunk)
    load_state_dict_strict(model.net, {k: v for k, v in sd.items() if k not in extra}, trunk)
    load_state_dict_strict(model.heads, read_state_dict(heads, "lpips-alex"), heads)
    return model.eval()
