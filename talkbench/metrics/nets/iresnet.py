"""IResNet (ArcFace backbones of insightface ``recognition/arcface_torch/backbones/iresnet.py``), in the
layout of its PyTorch checkpoints (``backbone.pth`` of ms1mv3_arcface_r100_fp16 / glint360k_cosface_r50
...): ``conv1, bn1, prelu, layer1..4`` of pre-activation basic blocks (``bn1, conv1, bn2, prelu, conv2,
bn3, downsample.{0,1}``), ``bn2``, ``fc`` (512*7*7 -> 512), ``features`` (BatchNorm1d).

Input: (N, 3, 112, 112) RGB, ``(x / 255 - 0.5) / 0.5``, of faces aligned to the ArcFace 5-point
template (:func:`talkbench.metrics.nets.iresnet.align_arcface`). Output: 512-d embedding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3)}

# insightface's arcface_dst: left eye, right eye, nose tip, left and right mouth corners in a 112 x 112 crop.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class IBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = _conv3(cin, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = _conv3(cout, cout, stride)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    def __init__(self, depth: int = 100, num_features: int = 512) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"IResNet depth must be one of {sorted(DEPTHS)}, got {depth}")
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        cin = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), DEPTHS[depth]), start=1):
            layer = [IBlock(cin, planes, 2)] + [IBlock(planes, planes, 1) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layer))
            cin = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.features(self.fc(self.bn2(x).flatten(1)))


def depth_from_keys(keys) -> int:
    """The depth whose block counts match the ``layerK.N.`` keys (ValueError if none)."""
    counts = []
    for k in range(1, 5):
        idx = {int(key.split(".")[1]) for key in keys if key.startswith(f"layer{k}.") and key.split(".")[1].isdigit()}
        counts.append(max(idx) + 1 if idx else 0)
    for depth, blocks in DEPTHS.items():
        if tuple(counts) == blocks:
            return depth
    raise ValueError(f"block counts {tuple(counts)} match no IResNet depth ({DEPTHS})")


def align_arcface(image: np.ndarray, five_points: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp ``image`` (H, W, 3) so that ``five_points`` (eyes, nose, mouth corners; (5, 2) in pixels)
    land on the ArcFace template: a similarity transform fitted by least squares (Umeyama, as
    insightface's ``norm_crop`` via skimage ``SimilarityTransform``), linear interpolation."""
    import cv2

    src = np.asarray(five_points, np.float64)
    dst = ARCFACE_TEMPLATE.astype(np.float64) * (size / 112.0)
    m = umeyama(src, dst)
    return cv2.warpAffine(image, m[:2], (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 similarity (rotation, uniform scale, translation) minimising ``|T(src) - dst|^2``."""
    n, d = src.shape
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, t = src - mu_s, dst - mu_d
    cov = t.T @ s / n
    u, sv, vt = np.linalg.svd(cov)
    sign = np.ones(d)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    r = u @ np.diag(sign) @ vt
    scale = (sv * sign).sum() / (s.var(0).sum())
    m = np.eye(d + 1)
    m[:d, :d] = scale * r
    m[:d, d] = mu_d - scale * r @ mu_s
    return m


def load_arcface(path) -> IResNet:
    """An insightface arcface_torch backbone file (depth read from its keys: r18/34/50/100), strict."""
    from talkbench.errors import CheckpointError
    from talkbench.metrics.nets.weights import load_net

    def build(sd):
        try:
            depth = depth_from_keys(sd)
        except ValueError as exc:
            raise CheckpointError(str(exc), path) from exc
        return IResNet(depth, int(sd["fc.weight"].shape[0]))

    return load_net("arcface", path, build)
