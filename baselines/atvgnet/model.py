"""ATVGnet (Chen et al., CVPR 2019; lelechen63/ATVGnet ``code/models.py``), reimplemented natively with the
parameter names and shapes of the official ``atnet_lstm_18.pth`` and ``generator_23.pth`` (after their
DataParallel ``module.`` prefix), including the official spelling ``audio_eocder``.

- :class:`ATNet`: example landmark (6 PCA coefficients) -> 256 -> 512; per frame a 28x12 MFCC window ->
  conv encoder -> 12288 -> 2048 -> 256; [512 | 256] per step -> 3-layer LSTM(256) -> Linear -> 6 coefficients.
- :class:`VGNet`: image encoders (128 -> 32 -> 8 px), landmark encoder (136 -> 8x8 map -> convs), landmark
  attention (32x32), bottleneck, convolutional GRU, residual generator, colour and attention heads.
- :class:`GLDiscriminator`: the training discriminator (real/fake + landmark regression).

The official ``Conv2dGRU`` is built with ``batch_first=False`` but fed ``(B, T, C, H, W)``: its recurrence
runs over the *batch* axis and the frames are its batch. At inference (batch 1) every frame is therefore
one GRU step from a zero state, independent of the others; in training with batch > 1 the hidden state
flows from one clip of the batch to the next. :class:`ConvGRU` reproduces this exactly (``recur_axis=0``).

``width`` scales every channel count (1.0 = the official models); the 136 -> 64 landmark map is fixed
because it is reshaped to the 8x8 feature grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _c(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, pad: int = 1, norm: bool = True,
            act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """The official ``ops.conv2d`` block: Conv (bias only without norm) -> BatchNorm -> activation."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, pad, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class ATNet(nn.Module):
    """Audio -> 6 PCA landmark coefficients per video frame."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        w = lambda n: _c(n, width)  # noqa: E731
        self.hidden = w(256)
        self.lmark_encoder = nn.Sequential(nn.Linear(6, w(256)), nn.ReLU(True), nn.Linear(w(256), w(512)), nn.ReLU(True))
        self.audio_eocder = nn.Sequential(
            conv_bn(1, w(64)), conv_bn(w(64), w(128)), nn.MaxPool2d(3, stride=(1, 2)),
            conv_bn(w(128), w(256)), conv_bn(w(256), w(256)), conv_bn(w(256), w(512)), nn.MaxPool2d(3, stride=(2, 2)))
        # 28x12 -> pool(3, (1, 2)) -> 26x5 -> pool(3, 2) -> 12x2
        self.audio_eocder_fc = nn.Sequential(nn.Linear(w(512) * 12 * 2, w(2048)), nn.ReLU(True),
                                             nn.Linear(w(2048), w(256)), nn.ReLU(True))
        self.lstm = nn.LSTM(w(512) + w(256), self.hidden, 3, batch_first=True)
        self.lstm_fc = nn.Sequential(nn.Linear(self.hidden, 6))

    def forward(self, example_coefs: torch.Tensor, mfcc: torch.Tensor) -> torch.Tensor:
        """example_coefs (B, 6), mfcc (B, T, 28, 12) -> (B, T, 6)."""
        b, t = mfcc.shape[:2]
        lm = self.lmark_encoder(example_coefs)
        a = self.audio_eocder(mfcc.reshape(b * t, 1, *mfcc.shape[2:]))
        a = self.audio_eocder_fc(a.reshape(b * t, -1)).reshape(b, t, -1)
        x = torch.cat([lm[:, None].expand(b, t, lm.shape[1]), a], dim=2)
        out, _ = self.lstm(x)  # zero initial state, as the official forward
        return self.lstm_fc(out)


class ConvGRU(nn.Module):
    """One-layer convolutional GRU with the official ``Conv2dGRU`` parameters (``weight_ih_l0``
    (3C, Cin, k, k), ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``), gates in the order r, z, n, "same"
    zero padding. The recurrence runs over axis 0 of its input, whatever that axis means (see the module
    docstring)."""

    def __init__(self, cin: int, cout: int, k: int = 3, dilation: int = 2) -> None:
        super().__init__()
        self.cout, self.dilation, self.pad = cout, dilation, dilation * (k - 1) // 2
        self.weight_ih_l0 = nn.Parameter(torch.empty(3 * cout, cin, k, k))
        self.weight_hh_l0 = nn.Parameter(torch.empty(3 * cout, cout, k, k))
        self.bias_ih_l0 = nn.Parameter(torch.empty(3 * cout))
        self.bias_hh_l0 = nn.Parameter(torch.empty(3 * cout))
        bound = cout ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _conv(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, b, padding=self.pad, dilation=self.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (S, N, C, H, W), recurrence over S -> (S, N, cout, H, W)."""
        h = x.new_zeros(x.shape[1], self.cout, *x.shape[3:])
        outs = []
        for step in x.unbind(0):
            gi = self._conv(step, self.weight_ih_l0, self.bias_ih_l0)
            gh = self._conv(h, self.weight_hh_l0, self.bias_hh_l0)
            i_r, i_z, i_n = gi.chunk(3, 1)
            h_r, h_z, h_n = gh.chunk(3, 1)
            r = torch.sigmoid(i_r + h_r)
            z = torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            h = n + z * (h - n)
            outs.append(h)
        return torch.stack(outs, 0)


class ResnetBlock(nn.Module):
    """pix2pix residual block: zero pad, no conv bias, BatchNorm, dropout 0.5 between the convs."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim), nn.ReLU(True), nn.Dropout(0.5),
            nn.Conv2d(dim, dim, 3, padding=1, bias=False), nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _up(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(True)]


class VGNet(nn.Module):
    """Example image + landmark sequence + example landmark -> frames (plus attention, colour, landmark
    attention), all 128x128 in [-1, 1]."""

    def __init__(self, width: float = 1.0, n_blocks: int = 9) -> None:
        super().__init__()
        w = lambda n: _c(n, width)  # noqa: E731
        self.image_encoder1 = nn.Sequential(nn.ReflectionPad2d(3), conv_bn(3, w(64), 7, 1, 0),
                                            conv_bn(w(64), w(64), 3, 2, 1), conv_bn(w(64), w(128), 3, 2, 1))
        self.image_encoder2 = nn.Sequential(conv_bn(w(128), w(256), 3, 2, 1), conv_bn(w(256), w(512), 3, 2, 1))
        self.landmark_encoder = nn.Sequential(nn.Linear(136, 64), nn.ReLU(True))
        self.landmark_encoder_stage2 = nn.Sequential(conv_bn(1, w(256)))
        self.lmark_att = nn.Sequential(
            nn.ConvTranspose2d(2 * w(256), w(256), 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(w(256)), nn.ReLU(True),
            nn.ConvTranspose2d(w(256), w(128), 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(w(128)), nn.ReLU(True),
            conv_bn(w(128), 1, norm=False, act=nn.Sigmoid))
        self.lmark_feature = nn.Sequential(conv_bn(w(256), w(512)))
        self.generator1 = nn.Sequential(*[ResnetBlock(w(512)) for _ in range(n_blocks)],
                                        *_up(w(512), w(256)), *_up(w(256), w(128)))
        self.base = nn.Sequential(*_up(w(128), w(64)), *_up(w(64), w(32)))
        self.generator_color = nn.Sequential(nn.Conv2d(w(32), 3, 7, padding=3), nn.Tanh())
        self.generator_attention = nn.Sequential(nn.Conv2d(w(32), 1, 7, padding=3), nn.Sigmoid())
        self.bottle_neck = nn.Sequential(conv_bn(2 * w(512), w(128)))
        self.convGRU = ConvGRU(w(128), w(512), 3, dilation=2)

    def _lmark_map(self, lmark: torch.Tensor) -> torch.Tensor:
        x = self.landmark_encoder(lmark.reshape(lmark.shape[0], -1)).reshape(lmark.shape[0], 1, 8, 8)
        return self.landmark_encoder_stage2(x)

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor, example_landmark: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """image (B, 3, 128, 128), landmarks (B, T, 136), example_landmark (B, 136) ->
        frames (B, T, 3, 128, 128), attention (B, T, 1, 128, 128), colour (B, T, 3, 128, 128),
        landmark attention (B, T, 1, 32, 32)."""
        b, t = landmarks.shape[:2]
        feat1 = self.image_encoder1(image)
        feat = self.image_encoder2(feat1)
        ex1 = self._lmark_map(example_landmark)
        ex = self.lmark_feature(ex1)
        lm1 = self._lmark_map(landmarks.reshape(b * t, -1))  # frames folded into the batch (b-major)
        rep = lambda x: x.repeat_interleave(t, dim=0)  # noqa: E731
        att32 = self.lmark_att(torch.cat([lm1, rep(ex1)], dim=1))
        lm = self.lmark_feature(lm1)
        gru_in = self.bottle_neck(torch.cat([rep(feat), lm - rep(ex)], dim=1))
        gru_in = gru_in.reshape(b, t, *gru_in.shape[1:])
        # Official quirk: (B, T, ...) into a batch_first=False GRU, recurrence over B.
        gru_out = self.convGRU(gru_in).reshape(b * t, -1, *gru_in.shape[3:])
        v1 = self.generator1(gru_out)
        v1 = rep(feat1) * (1 - att32) + v1 * att32
        base = self.base(v1)
        color = self.generator_color(base)
        att = self.generator_attention(base)
        img = rep(image)
        out = att * color + (1 - att) * img
        shape = lambda x: x.reshape(b, t, *x.shape[1:])  # noqa: E731
        return shape(out), shape(att), shape(color), shape(att32)


class GLDiscriminator(nn.Module):
    """Training discriminator (official ``GL_Discriminator``): per-frame image features + example landmark
    -> 3-layer LSTM -> per-frame landmarks (tanh + example landmark) and a real/fake probability averaged
    over the frames (the official AvgPool1d(16) over 16-frame clips)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        w = lambda n: _c(n, width)  # noqa: E731
        self.image_encoder_dis = nn.Sequential(conv_bn(3, w(64), 3, 2, 1, norm=False), conv_bn(w(64), w(128), 3, 2, 1),
                                               conv_bn(w(128), w(256), 3, 2, 1), conv_bn(w(256), w(512), 3, 2, 1))
        self.encoder = nn.Sequential(nn.Linear(136, w(256)), nn.ReLU(True), nn.Linear(w(256), w(512)), nn.ReLU(True))
        self.img_fc = nn.Sequential(nn.Linear(w(512) * 8 * 8, w(512)), nn.ReLU(True))
        self.lstm = nn.LSTM(2 * w(512), w(256), 3, batch_first=True)
        self.lstm_fc = nn.Sequential(nn.Linear(w(256), 136), nn.Tanh())
        self.decision = nn.Sequential(nn.Linear(w(256), 1))

    def forward(self, frames: torch.Tensor, example_landmark: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, 3, 128, 128), example_landmark (B, 136) -> (prob (B,), landmarks (B, T, 136))."""
        b, t = frames.shape[:2]
        lm = self.encoder(example_landmark)
        x = self.image_encoder_dis(frames.reshape(b * t, *frames.shape[2:]))
        x = self.img_fc(x.reshape(b * t, -1)).reshape(b, t, -1)
        out, _ = self.lstm(torch.cat([lm[:, None].expand(b, t, lm.shape[1]), x], dim=2))
        decision = torch.sigmoid(self.decision(out)[..., 0].mean(1))
        return decision, self.lstm_fc(out) + example_landmark[:, None]
