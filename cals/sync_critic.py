"""The discriminative sync module (F_a, F_v): VGG-M-style encoders, 3D convolutions for 5 mouth
frames, 2D for 0.2 s of mel (80 x 20 steps), pretrained with a multi-way matching loss (one audio
segment against several video segments of the same stream and vice versa). Its visual encoder gives
the 1024-d lip-motion units z^v that the Audio-to-Lip module learns to predict, and both encoders are
the critic of d_av and d_vv. Embeddings end in a ReLU, so cosine similarities lie in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _c(n: int, w: float) -> int:
    return max(8, round(n * w))


class VisualSyncEncoder(nn.Module):
    """(B, 3, 5, H/2, W) lower-face frames in [0, 1] -> (B, unit_dim)."""

    def __init__(self, unit_dim: int = 1024, width: float = 1.0) -> None:
        super().__init__()
        c = lambda n: _c(n, width)  # noqa: E731
        self.net = nn.Sequential(
            nn.Conv3d(3, c(96), (5, 7, 7), (1, 2, 2), (0, 3, 3)), nn.BatchNorm3d(c(96)), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            nn.Conv3d(c(96), c(256), (1, 5, 5), (1, 2, 2), (0, 2, 2)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.Conv3d(c(256), c(256), (1, 3, 3), 1, (0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.Conv3d(c(256), c(512), (1, 3, 3), (1, 2, 2), (0, 1, 1)), nn.BatchNorm3d(c(512)), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool3d(1),
        )
        self.fc = nn.Sequential(nn.Linear(c(512), c(512)), nn.ReLU(inplace=True), nn.Linear(c(512), unit_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(x).flatten(1))


class AudioSyncEncoder(nn.Module):
    """(B, 1, 80, 20) log-mel (5 frames of 80x4 units) -> (B, unit_dim)."""

    def __init__(self, unit_dim: int = 1024, width: float = 1.0) -> None:
        super().__init__()
        c = lambda n: _c(n, width)  # noqa: E731
        self.net = nn.Sequential(
            nn.Conv2d(1, c(64), 3, 1, 1), nn.BatchNorm2d(c(64)), nn.ReLU(inplace=True),
            nn.Conv2d(c(64), c(192), 3, (2, 1), 1), nn.BatchNorm2d(c(192)), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, (2, 1), 1),
            nn.Conv2d(c(192), c(384), 3, 1, 1), nn.BatchNorm2d(c(384)), nn.ReLU(inplace=True),
            nn.Conv2d(c(384), c(256), 3, (2, 2), 1), nn.BatchNorm2d(c(256)), nn.ReLU(inplace=True),
            nn.Conv2d(c(256), c(512), 3, (2, 2), 1), nn.BatchNorm2d(c(512)), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.fc = nn.Sequential(nn.Linear(c(512), c(512)), nn.ReLU(inplace=True), nn.Linear(c(512), unit_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(x).flatten(1))


class SyncModule(nn.Module):
    def __init__(self, unit_dim: int = 1024, width: float = 1.0) -> None:
        super().__init__()
        self.visual = VisualSyncEncoder(unit_dim, width)
        self.audio = AudioSyncEncoder(unit_dim, width)


def lower_half(frames: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 3, H/2, W): the mouth region of a face crop. The band is rows 3/8..7/8
    rather than the plain lower half: in talkbench's ``tb-square`` protocol crops the lips sit at ~0.5-0.6
    of the height (LRS2's tighter crops put them lower), so the plain lower half cuts the upper lip."""
    h = frames.shape[-2]
    top = (3 * h) // 8
    return frames[..., top : top + h // 2, :]


def video_windows(frames: torch.Tensor, t_s: int = 5) -> torch.Tensor:
    """(B, T, 3, H, W) -> (B, T, 3, t_s, H/2, W): a window centred on every frame (edges replicated)."""
    b, t = frames.shape[:2]
    half = t_s // 2
    idx = (torch.arange(t)[:, None] + torch.arange(-half, half + 1)[None, :]).clamp(0, t - 1).to(frames.device)
    win = lower_half(frames)[:, idx]  # (B, T, t_s, 3, h, w)
    return win.permute(0, 1, 3, 2, 4, 5)


def audio_windows(units: torch.Tensor, t_s: int = 5) -> torch.Tensor:
    """(B, T, 80, 4) -> (B, T, 1, 80, 4*t_s): the mel of t_s frames centred on every frame."""
    b, t = units.shape[:2]
    half = t_s // 2
    idx = (torch.arange(t)[:, None] + torch.arange(-half, half + 1)[None, :]).clamp(0, t - 1).to(units.device)
    win = units[:, idx]  # (B, T, t_s, 80, 4)
    return win.permute(0, 1, 3, 2, 4).reshape(b, t, 1, 80, 4 * t_s)


def multiway_matching_loss(za: torch.Tensor, zv: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """(B, N, D) audio and video embeddings of N segments per stream: each audio segment must pick its
    video segment among the N of its own stream, and vice versa (cross-entropy on cosine / tau)."""
    sim = torch.einsum("bnd,bmd->bnm", F.normalize(za, dim=-1), F.normalize(zv, dim=-1)) / tau
    target = torch.arange(sim.shape[1], device=sim.device).expand(sim.shape[0], -1)
    return 0.5 * (F.cross_entropy(sim.flatten(0, 1), target.flatten()) +
                  F.cross_entropy(sim.transpose(1, 2).flatten(0, 1), target.flatten()))
