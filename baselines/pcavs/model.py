"""PC-AVS (Zhou et al., Pose-Controllable Talking Face Generation by Implicitly Modularized
Audio-Visual Representation, CVPR 2021): the four inference networks with the module trees of
Hangz-nju-cuhk/Talking-Face_PC-AVS ``models/networks/`` so the official
``latest_net_{G,V,E,A_sync}.pth`` state dicts load strictly.

- ``IdentityEncoder`` (V, ``ResNeXtEncoder``): ResNeXt50-32x4d under ``model.`` (torchvision's
  ResNet module names, with the unused ``model.fc``), ``conv1x1`` 2048->512 on the layer-4 map then
  adaptive average pooling to 512x7x7 (the generator's starting map), ``fc`` identity classifier.
- ``NonIdentityEncoder`` (E, ``FanEncoder``): a single-hourglass FAN (``model.``) ending in 68 heatmaps,
  BN+ReLU, a 68->1 stride-2 conv and ``fc`` (28*28 -> 512); heads ``to_mouth``, ``mouth_embed``,
  ``to_headpose``, ``headpose_embed`` and the training-only classifiers.
- ``AudioSyncEncoder`` (A_sync, ``ResSESyncEncoder``): ResNetSE (SEBasicBlock [3,4,6,3], filters
  [32,64,128,256], ReLU *before* BN as in the original) with self-attentive pooling over time and
  ``model.fc`` -> 512; ``fc`` classifier.
- ``Generator`` (G, ``ModulateGenerator``): rosinality's StyleGAN2 generator at init size 7
  (224 = 7*2^5), ``input_is_latent`` (the 8-layer ``style`` mapping MLP is in the state dict but not
  run), the identity map replacing the constant input, modulated convs with noise injection and
  fused leaky ReLU, ToRGB skips, tanh.

``width`` scales every channel count (1.0 = official) and ``size`` the crop (224 official; any
``7*2^k``) for the CPU-trained synthetic checkpoint. Noise is drawn from an explicit
``torch.Generator`` in the order and shapes in which the official generator draws it from the
global RNG, so a seeded run reproduces the official one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class PCAVSConfig:
    """Sizes of the four networks. ``width=1, size=224`` is the official model."""

    width: float = 1.0
    size: int = 224
    num_classes: int = 5830
    pose_dim: int = 12

    def ch(self, c: int, multiple: int = 1) -> int:
        return max(multiple, int(round(c * self.width / multiple)) * multiple)

    @property
    def id_dim(self) -> int:  # ResNeXt avgpool feature (2048)
        return self.ch(512) * 4

    @property
    def feat_dim(self) -> int:  # E / A_sync feature, mouth + pose (512)
        return self.ch(512, 4)

    @property
    def style_dim(self) -> int:
        return self.id_dim + self.feat_dim


# ---------------------------------------------------------------- V: ResNeXt50-32x4d


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, mid: int, groups: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        idt = x if self.downsample is None else self.downsample(x)
        return self.relu(out + idt)


class _ResNeXt(nn.Module):
    """torchvision ``ResNet(Bottleneck, [3, 4, 6, 3], groups=32, width_per_group=4)``'s module tree."""

    def __init__(self, cfg: PCAVSConfig):
        super().__init__()
        groups = max(1, int(round(32 * cfg.width)))
        self.inplanes = cfg.ch(64)
        self.conv1 = nn.Conv2d(3, self.inplanes, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
            # torchvision: mid = planes * width_per_group / 64 * groups = 2 * planes for 32x4d
            mid = max(groups, int(round(2 * planes * cfg.width / groups)) * groups)
            setattr(self, f"layer{i + 1}", self._layer(cfg.ch(planes), mid, groups, blocks, 1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.inplanes, 1000)  # unused torchvision head, present in the official file

    def _layer(self, planes: int, mid: int, groups: int, blocks: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
        layers = [_Bottleneck(self.inplanes, planes, mid, groups, stride, down)]
        self.inplanes = planes * 4
        layers += [_Bottleneck(self.inplanes, planes, mid, groups) for _ in range(1, blocks)]
        return nn.Sequential(*layers)


class IdentityEncoder(nn.Module):
    """V: (B, 3, S, S) in [-1, 1] -> (id vector (B, 2048), id map (B, 512, 7, 7)), class scores."""

    def __init__(self, cfg: PCAVSConfig = PCAVSConfig()):
        super().__init__()
        self.model = _ResNeXt(cfg)
        self.conv1x1 = nn.Conv2d(cfg.id_dim, cfg.ch(512), 1)
        self.fc = nn.Linear(cfg.id_dim, cfg.num_classes)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
        vec = torch.flatten(m.avgpool(x), 1)
        return vec, F.adaptive_avg_pool2d(self.conv1x1(x), (7, 7))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        vec, idmap = self.features(x)
        return vec, idmap, self.fc(vec)


# ---------------------------------------------------------------- E: FAN non-identity encoder


class _ConvBlock(nn.Module):
    """FAN's pre-activation block: three 3x3 convs (out/2, out/4, out/4) concatenated, plus a
    BN-ReLU-1x1 shortcut when the width changes."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout // 2, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout // 2)
        self.conv2 = nn.Conv2d(cout // 2, cout // 4, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout // 4)
        self.conv3 = nn.Conv2d(cout // 4, cout // 4, 3, 1, 1, bias=False)
        self.downsample = (nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(True), nn.Conv2d(cin, cout, 1, bias=False))
                           if cin != cout else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1 = self.conv1(F.relu(self.bn1(x)))
        o2 = self.conv2(F.relu(self.bn2(o1)))
        o3 = self.conv3(F.relu(self.bn3(o2)))
        res = x if self.downsample is None else self.downsample(x)
        return torch.cat((o1, o2, o3), 1) + res


class _HourGlass(nn.Module):
    def __init__(self, depth: int, c: int):
        super().__init__()
        self.depth = depth
        self.dropout = nn.Dropout(0.5)
        self._build(depth, c)

    def _build(self, level: int, c: int) -> None:
        # registration order = the official recursive order (b1_4, b2_4, b1_3, ..., b2_plus_1, b3_1, ...)
        self.add_module(f"b1_{level}", _ConvBlock(c, c))
        self.add_module(f"b2_{level}", _ConvBlock(c, c))
        if level > 1:
            self._build(level - 1, c)
        else:
            self.add_module(f"b2_plus_{level}", _ConvBlock(c, c))
        self.add_module(f"b3_{level}", _ConvBlock(c, c))

    def _run(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up1 = self.dropout(self._modules[f"b1_{level}"](x))
        low = self._modules[f"b2_{level}"](F.max_pool2d(x, 2, stride=2))
        low = self._run(level - 1, low) if level > 1 else self._modules[f"b2_plus_{level}"](low)
        low = self._modules[f"b3_{level}"](low)
        return up1 + F.interpolate(low, size=up1.shape[2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.depth, x)


class _FAN(nn.Module):
    def __init__(self, cfg: PCAVSConfig):
        super().__init__()
        c64, c128, c256 = cfg.ch(64, 4), cfg.ch(128, 4), cfg.ch(256, 4)
        self.conv1 = nn.Conv2d(3, c64, 7, 2, 3)
        self.bn1 = nn.BatchNorm2d(c64)
        self.conv2 = _ConvBlock(c64, c128)
        self.conv3 = _ConvBlock(c128, c128)
        self.conv4 = _ConvBlock(c128, c256)
        self.m0 = _HourGlass(4, c256)
        self.top_m_0 = _ConvBlock(c256, c256)
        self.conv_last0 = nn.Conv2d(c256, c256, 1)
        self.l0 = nn.Conv2d(c256, 68, 1)
        self.bn_end0 = nn.BatchNorm2d(c256)
        self.avgpool = nn.MaxPool2d((2, 2), 2)  # named avgpool, unused, as in the original
        self.conv6 = nn.Conv2d(68, 1, 3, 2, 1)
        self.fc = nn.Linear((cfg.size // 8) ** 2, cfg.feat_dim)
        self.bn5 = nn.BatchNorm2d(68)
        self.relu = nn.ReLU(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.max_pool2d(self.conv2(x), 2)))
        ll = self.bn_end0(self.conv_last0(self.top_m_0(self.m0(x))))
        heat = self.l0(F.relu(ll))
        net = self.conv6(self.relu(self.bn5(heat)))
        return self.fc(self.relu(net.flatten(1)))


class NonIdentityEncoder(nn.Module):
    """E: (B, 3, S, S) -> non-identity feature (B, 512); heads map it to mouth and head-pose spaces."""

    def __init__(self, cfg: PCAVSConfig = PCAVSConfig()):
        super().__init__()
        d, p, k = cfg.feat_dim, cfg.pose_dim, cfg.num_classes
        self.model = _FAN(cfg)
        self.classifier = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, k))
        self.to_mouth = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.mouth_embed = nn.Sequential(nn.ReLU(), nn.Linear(d, d - p))
        self.mouth_fc = nn.Sequential(nn.ReLU(), nn.Linear(d, k))
        self.to_headpose = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.headpose_embed = nn.Sequential(nn.ReLU(), nn.Linear(d, p))
        self.headpose_fc = nn.Sequential(nn.ReLU(), nn.Linear(p, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def merge(self, mouth: torch.Tensor, headpose: torch.Tensor) -> torch.Tensor:
        """``merge_mouthpose``: [mouth_embed(mouth) | headpose_embed(headpose)] (512)."""
        return torch.cat((self.mouth_embed(mouth), self.headpose_embed(headpose)), -1)


# ---------------------------------------------------------------- A_sync: ResNetSE


class _SELayer(nn.Module):
    def __init__(self, c: int, reduction: int = 8):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, c // reduction), nn.ReLU(inplace=True), nn.Linear(c // reduction, c), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


class _SEBasicBlock(nn.Module):
    def __init__(self, cin: int, c: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.se = _SELayer(c)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.relu(self.conv1(x)))  # ReLU before BN, as voxceleb_trainer's ResNetSE
        out = self.se(self.bn2(self.conv2(out)))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class _ResNetSE(nn.Module):
    def __init__(self, cfg: PCAVSConfig, n_mels: int = 80):
        super().__init__()
        filters = [cfg.ch(f, 8) for f in (32, 64, 128, 256)]
        self.inplanes = filters[0]
        self.conv1 = nn.Conv2d(1, filters[0], 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        self.bn1 = nn.BatchNorm2d(filters[0])
        for i, (c, n) in enumerate(zip(filters, (3, 4, 6, 3))):
            setattr(self, f"layer{i + 1}", self._layer(c, n, 1 if i == 0 else 2))
        self.instancenorm = nn.InstanceNorm1d(n_mels)  # unused at inference, as in the original
        d = filters[3] * (n_mels // 8)
        self.attention = nn.Sequential(nn.Conv1d(d, 128, 1), nn.ReLU(), nn.BatchNorm1d(128), nn.Conv1d(128, d, 1),
                                       nn.Softmax(dim=2))
        self.fc = nn.Linear(d, cfg.feat_dim)

    def _layer(self, c: int, blocks: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != c:
            down = nn.Sequential(nn.Conv2d(self.inplanes, c, 1, stride, bias=False), nn.BatchNorm2d(c))
        layers = [_SEBasicBlock(self.inplanes, c, stride, down)]
        self.inplanes = c
        layers += [_SEBasicBlock(c, c) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.relu(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = x.reshape(x.shape[0], -1, x.shape[-1])  # (B, C * mel/8, T/8)
        return self.fc((x * self.attention(x)).sum(2))  # self-attentive pooling (SAP)


class AudioSyncEncoder(nn.Module):
    """A_sync: (B, 1, 80, 20) mel window -> audio mouth feature (B, 512)."""

    def __init__(self, cfg: PCAVSConfig = PCAVSConfig()):
        super().__init__()
        self.model = _ResNetSE(cfg)
        self.fc = nn.Linear(cfg.feat_dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# ---------------------------------------------------------------- G: StyleGAN2 modulated generator


def _kernel(k=(1, 3, 3, 1)) -> torch.Tensor:
    k = torch.tensor(k, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), FIR filter with the flipped kernel, subsample."""
    b, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(b, c, h, up, w, up)
        z[:, :, :, 0, :, 0] = x
        x = z.reshape(b, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
    kh, kw = kernel.shape
    wgt = torch.flip(kernel, [0, 1]).to(x.dtype).expand(c, 1, kh, kw)
    x = F.conv2d(x, wgt, groups=c)
    return x[:, :, ::down, ::down]


class _Blur(nn.Module):
    def __init__(self, pad: tuple[int, int], factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", _kernel() * factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class _Upsample(nn.Module):
    def __init__(self, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", _kernel() * factor**2)
        p = 4 - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class EqualLinear(nn.Module):
    """Linear with the equalised-learning-rate scale 1/sqrt(in) * lr_mul (optionally fused leaky ReLU)."""

    def __init__(self, cin: int, cout: int, bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(cin)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return F.leaky_relu(F.linear(x, self.weight * self.scale) + self.bias * self.lr_mul, 0.2) * math.sqrt(2)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class _PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt((x**2).mean(1, keepdim=True) + 1e-8)


class ModulatedConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, style_dim: int, demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.cin, self.cout, self.k = cin, cout, k
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            p = (4 - 2) - (k - 1)
            self.blur = _Blur(((p + 1) // 2 + 1, p // 2 + 1), factor=2)
        self.scale = 1 / math.sqrt(cin * k * k)
        self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
        self.modulation = EqualLinear(style_dim, cin, bias_init=1)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s = self.modulation(style).view(b, 1, c, 1, 1)
        wgt = self.scale * self.weight * s
        if self.demodulate:
            wgt = wgt * torch.rsqrt(wgt.pow(2).sum([2, 3, 4]) + 1e-8).view(b, self.cout, 1, 1, 1)
        x = x.reshape(1, b * c, h, w)
        if self.upsample:
            wgt = wgt.transpose(1, 2).reshape(b * c, self.cout, self.k, self.k)
            out = F.conv_transpose2d(x, wgt, stride=2, groups=b)
            return self.blur(out.view(b, self.cout, *out.shape[2:]))
        out = F.conv2d(x, wgt.reshape(b * self.cout, c, self.k, self.k), padding=self.k // 2, groups=b)
        return out.view(b, self.cout, *out.shape[2:])


class _NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return x + self.weight * noise


class _FusedLeakyReLU(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias, 0.2) * math.sqrt(2)


class _StyledConv(nn.Module):
    def __init__(self, cin: int, cout: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, style_dim, upsample=upsample)
        self.noise = _NoiseInjection()
        self.activate = _FusedLeakyReLU(cout)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class _ToRGB(nn.Module):
    def __init__(self, cin: int, style_dim: int, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = _Upsample()
        self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        return out if skip is None else out + self.upsample(skip)


class _ConstantInput(nn.Module):
    def __init__(self, c: int, size: int = 7):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, c, size, size))


class Generator(nn.Module):
    """G: style (B, 2560) and identity map (B, 512, 7, 7) -> image (B, 3, S, S) in [-1, 1]."""

    def __init__(self, cfg: PCAVSConfig = PCAVSConfig()):
        super().__init__()
        sd = cfg.style_dim
        self.style = nn.Sequential(_PixelNorm(), *[EqualLinear(sd, sd, lr_mul=0.01, activation=True) for _ in range(8)])
        self.log_size = int(math.log2(cfg.size // 7))
        if 7 * 2**self.log_size != cfg.size:
            raise ValueError(f"PC-AVS crop size must be 7 * 2^k, got {cfg.size}")
        official = {0: 512, 1: 512, 2: 512, 3: 512, 4: 256, 5: 128, 6: 64}
        chans = [cfg.ch(official[i]) for i in range(self.log_size + 1)]
        self.input = _ConstantInput(chans[0])
        self.conv1 = _StyledConv(chans[0], chans[0], sd)
        self.to_rgb1 = _ToRGB(chans[0], sd, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        self.num_layers = self.log_size * 2 + 1
        self.noise_sizes = [7 * 2 ** ((i + 1) // 2) for i in range(self.num_layers)]
        for i, s in enumerate(self.noise_sizes):
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, s, s))
        for i in range(1, self.log_size + 1):
            self.convs.append(_StyledConv(chans[i - 1], chans[i], sd, upsample=True))
            self.convs.append(_StyledConv(chans[i], chans[i], sd))
            self.to_rgbs.append(_ToRGB(chans[i], sd))

    def draw_noise(self, batch: int, generator: torch.Generator | None, device="cpu") -> list[torch.Tensor]:
        """Per-layer noise in the official order: conv1, then (up conv, conv) per stage."""
        return [torch.randn(batch, 1, s, s, generator=generator, device=device) for s in self.noise_sizes]

    def forward(self, style: torch.Tensor, identity: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        out = self.conv1(identity, style, noise[0])
        skip = self.to_rgb1(out, style)
        for j, to_rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * j](out, style, noise[2 * j + 1])
            out = self.convs[2 * j + 1](out, style, noise[2 * j + 2])
            skip = to_rgb(out, style, skip)
        return torch.tanh(skip)


NETWORKS = {"G": Generator, "V": IdentityEncoder, "E": NonIdentityEncoder, "A_sync": AudioSyncEncoder}


class PCAVS(nn.Module):
    """The four networks and the inference path of ``AvModel.inference`` (driving pose on,
    ``generate_from_audio_only``, ``input_id_feature``, one reference image, ``clip_len`` 1)."""

    def __init__(self, cfg: PCAVSConfig = PCAVSConfig()):
        super().__init__()
        self.cfg = cfg
        self.G, self.V, self.E, self.A_sync = (NETWORKS[k](cfg) for k in ("G", "V", "E", "A_sync"))

    def generate(self, reference: torch.Tensor, spectrogram: torch.Tensor, pose: torch.Tensor,
                 generator: torch.Generator | None = None, mouth_weight: float = 1.2,
                 ref_pose: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """reference (B or 1, 3, S, S), spectrogram (B, 1, 80, 20), pose frames (B, 3, S, S), all
        loader-normalised; returns pose-driven frames (B, 3, S, S) in [-1, 1], and first the
        reference-pose frames when ``ref_pose`` (official draw order: ref-pose noise first)."""
        b = spectrogram.shape[0]
        idvec, idmap, _ = self.V(reference)
        if idvec.shape[0] != b:
            idvec, idmap = idvec.expand(b, -1), idmap.expand(b, -1, -1, -1)
        mouth = self.A_sync(spectrogram) * mouth_weight
        outs = []
        if ref_pose:
            hp_ref = self.E.to_headpose(self.E(reference))
            style = torch.cat([idvec, self.E.merge(mouth, hp_ref.expand(b, -1))], 1)
            outs.append(self.G(style, idmap, self.G.draw_noise(b, generator, spectrogram.device)))
        style = torch.cat([idvec, self.E.merge(mouth, self.E.to_headpose(self.E(pose)))], 1)
        outs.append(self.G(style, idmap, self.G.draw_noise(b, generator, spectrogram.device)))
        return tuple(outs) if ref_pose else outs[0]
