"""Lip-to-Face f_phi: a U-Net generator. The identity encoder E_I takes a reference frame
concatenated with the pose prior (the target with its lower half masked) and returns multi-scale
features; the lip-motion unit of each frame enters at the bottleneck; the decoder upsamples with
skip connections to the identity features. All frames of a context are generated in parallel."""

from __future__ import annotations

import math

import torch
from torch import nn


def _block(cin: int, cout: int, down: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4 if down else 3, 2 if down else 1, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True),
    )


class LipToFace(nn.Module):
    def __init__(self, img_size: int = 128, unit_dim: int = 1024, base: int = 32) -> None:
        super().__init__()
        levels = int(math.log2(img_size // 4))  # down to a 4x4 bottleneck
        chans = [min(base * 2**i, base * 8) for i in range(levels + 1)]
        self.stem = _block(6, chans[0], down=False)
        self.down = nn.ModuleList([_block(chans[i], chans[i + 1], down=True) for i in range(levels)])
        self.lip = nn.Sequential(nn.Linear(unit_dim, chans[-1] * 16), nn.LeakyReLU(0.2, inplace=True))
        self.up = nn.ModuleList()
        for i in range(levels, 0, -1):
            self.up.append(nn.ModuleDict({
                "up": nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                    nn.Conv2d(chans[i] * 2 if i == levels else chans[i], chans[i - 1], 3, 1, 1)),
                "fuse": _block(chans[i - 1] * 2, chans[i - 1], down=False),
            }))
        self.head = nn.Sequential(nn.Conv2d(chans[0], 3, 1), nn.Sigmoid())
        self.bottleneck_ch = chans[-1]

    def forward(self, identity: torch.Tensor, lip: torch.Tensor) -> torch.Tensor:
        """identity (N, 6, S, S) in [0, 1], lip units (N, unit_dim) -> (N, 3, S, S) in [0, 1]."""
        feats = [self.stem(identity)]
        for d in self.down:
            feats.append(d(feats[-1]))
        x = torch.cat([feats[-1], self.lip(lip).view(-1, self.bottleneck_ch, 4, 4)], dim=1)
        for i, stage in enumerate(self.up):
            x = stage["up"](x)
            x = stage["fuse"](torch.cat([x, feats[-2 - i]], dim=1))
        return self.head(x)


class PatchDiscriminator(nn.Module):
    """Real/fake on face crops (logits per patch)."""

    def __init__(self, base: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, base, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base, base * 2, 4, 2, 1), nn.BatchNorm2d(base * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base * 2, base * 4, 4, 2, 1), nn.BatchNorm2d(base * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base * 4, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
