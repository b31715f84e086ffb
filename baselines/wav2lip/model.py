"""Wav2Lip (Prajwal et al., ACM MM 2020): generator, expert lip-sync discriminator and visual
quality discriminator with the module structure of Rudrabha/Wav2Lip ``models/`` so the official
``wav2lip.pth`` / ``wav2lip_gan.pth`` / ``lipsync_expert.pth`` / ``visual_quality_disc.pth`` state
dicts load strictly. Matched facts: the block classes keep their layers in ``conv_block``
(Conv2d/ConvTranspose2d at index 0, BatchNorm at 1), residual blocks add before the ReLU, the
generator has 7 ``face_encoder_blocks``, a 13-module ``audio_encoder``, 7 ``face_decoder_blocks``
with U-Net concatenation and an ``output_block`` (block, 1x1 conv, sigmoid); key names such as
``face_encoder_blocks.0.0.conv_block.0.weight`` and ``audio_encoder.12.conv_block.0.weight``.

``width`` scales the channel counts (1.0 = official); small widths are for the CPU-trained
synthetic-corpus checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Conv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size, stride, padding, residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class NoNormConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size, stride, padding) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(0.01, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


class Conv2dTranspose(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size, stride, padding, output_padding: int = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def _res(c: int) -> Conv2d:
    return Conv2d(c, c, 3, 1, 1, residual=True)


def _audio_encoder(c, res_after_32: int) -> nn.Sequential:
    layers = [Conv2d(1, c(32), 3, 1, 1), _res(c(32)), _res(c(32)),
              Conv2d(c(32), c(64), 3, (3, 1), 1), _res(c(64)), _res(c(64)),
              Conv2d(c(64), c(128), 3, 3, 1), _res(c(128)), _res(c(128)),
              Conv2d(c(128), c(256), 3, (3, 2), 1)]
    layers += [_res(c(256)) for _ in range(res_after_32)]
    layers += [Conv2d(c(256), c(512), 3, 1, 0), Conv2d(c(512), c(512), 1, 1, 0)]
    return nn.Sequential(*layers)


def _scaler(width: float):
    return lambda n: max(4, round(n * width))


class Wav2Lip(nn.Module):
    """Generator: faces (B, 6, 96, 96) [masked target | reference], mels (B, 1, 80, 16) -> (B, 3, 96, 96)
    in [0, 1], BGR as in training. 5-D inputs (B, T, ...) are folded into the batch."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = _scaler(width)
        self.width = width
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(6, c(16), 7, 1, 3)),
            nn.Sequential(Conv2d(c(16), c(32), 3, 2, 1), _res(c(32)), _res(c(32))),
            nn.Sequential(Conv2d(c(32), c(64), 3, 2, 1), _res(c(64)), _res(c(64)), _res(c(64))),
            nn.Sequential(Conv2d(c(64), c(128), 3, 2, 1), _res(c(128)), _res(c(128))),
            nn.Sequential(Conv2d(c(128), c(256), 3, 2, 1), _res(c(256)), _res(c(256))),
            nn.Sequential(Conv2d(c(256), c(512), 3, 2, 1), _res(c(512))),
            nn.Sequential(Conv2d(c(512), c(512), 3, 1, 0), Conv2d(c(512), c(512), 1, 1, 0)),
        ])
        self.audio_encoder = _audio_encoder(c, 1)
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(c(512), c(512), 1, 1, 0)),
            nn.Sequential(Conv2dTranspose(2 * c(512), c(512), 3, 1, 0), _res(c(512))),
            nn.Sequential(Conv2dTranspose(2 * c(512), c(512), 3, 2, 1, 1), _res(c(512)), _res(c(512))),
            nn.Sequential(Conv2dTranspose(c(512) + c(256), c(384), 3, 2, 1, 1), _res(c(384)), _res(c(384))),
            nn.Sequential(Conv2dTranspose(c(384) + c(128), c(256), 3, 2, 1, 1), _res(c(256)), _res(c(256))),
            nn.Sequential(Conv2dTranspose(c(256) + c(64), c(128), 3, 2, 1, 1), _res(c(128)), _res(c(128))),
            nn.Sequential(Conv2dTranspose(c(128) + c(32), c(64), 3, 2, 1, 1), _res(c(64)), _res(c(64))),
        ])
        self.output_block = nn.Sequential(Conv2d(c(64) + c(16), c(32), 3, 1, 1), nn.Conv2d(c(32), 3, 1, 1, 0),
                                          nn.Sigmoid())

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        b = audio.size(0)
        five_d = face.dim() > 4
        if five_d:  # (B, T, 1, 80, 16) and (B, 6, T, 96, 96)
            audio = audio.flatten(0, 1)
            face = face.permute(0, 2, 1, 3, 4).flatten(0, 1)
        x = self.audio_encoder(audio)
        feats = []
        y = face
        for block in self.face_encoder_blocks:
            y = block(y)
            feats.append(y)
        for block in self.face_decoder_blocks:
            x = block(x)
            x = torch.cat((x, feats.pop()), dim=1)
        out = self.output_block(x)
        if five_d:
            out = out.view(b, -1, *out.shape[1:]).permute(0, 2, 1, 3, 4)
        return out


class SyncNetColor(nn.Module):
    """Expert lip-sync discriminator: lower halves of 5 BGR frames (B, 15, 48, 96) and a mel window
    (B, 1, 80, 16) -> L2-normalised 512-d (audio, face) embeddings."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = _scaler(width)
        self.width = width
        self.face_encoder = nn.Sequential(
            Conv2d(15, c(32), (7, 7), 1, 3),
            Conv2d(c(32), c(64), 5, (1, 2), 1), _res(c(64)), _res(c(64)),
            Conv2d(c(64), c(128), 3, 2, 1), _res(c(128)), _res(c(128)), _res(c(128)),
            Conv2d(c(128), c(256), 3, 2, 1), _res(c(256)), _res(c(256)),
            Conv2d(c(256), c(512), 3, 2, 1), _res(c(512)), _res(c(512)),
            Conv2d(c(512), c(512), 3, 2, 1), Conv2d(c(512), c(512), 3, 1, 0), Conv2d(c(512), c(512), 1, 1, 0),
        )
        self.audio_encoder = _audio_encoder(c, 2)

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.normalize(self.audio_encoder(audio).flatten(1), p=2, dim=1)
        f = F.normalize(self.face_encoder(face).flatten(1), p=2, dim=1)
        return a, f


class QualityDiscriminator(nn.Module):
    """Visual quality discriminator (``Wav2Lip_disc_qual``): lower half of each frame -> P(real)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = _scaler(width)
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(NoNormConv2d(3, c(32), 7, 1, 3)),
            nn.Sequential(NoNormConv2d(c(32), c(64), 5, (1, 2), 2), NoNormConv2d(c(64), c(64), 5, 1, 2)),
            nn.Sequential(NoNormConv2d(c(64), c(128), 5, 2, 2), NoNormConv2d(c(128), c(128), 5, 1, 2)),
            nn.Sequential(NoNormConv2d(c(128), c(256), 5, 2, 2), NoNormConv2d(c(256), c(256), 5, 1, 2)),
            nn.Sequential(NoNormConv2d(c(256), c(512), 3, 2, 1), NoNormConv2d(c(512), c(512), 3, 1, 1)),
            nn.Sequential(NoNormConv2d(c(512), c(512), 3, 2, 1), NoNormConv2d(c(512), c(512), 3, 1, 1)),
            nn.Sequential(NoNormConv2d(c(512), c(512), 3, 1, 0), NoNormConv2d(c(512), c(512), 1, 1, 0)),
        ])
        self.binary_pred = nn.Sequential(nn.Conv2d(c(512), 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        x = face[:, :, face.size(2) // 2 :]
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).view(len(x), -1)
