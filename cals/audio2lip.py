"""Audio-to-Lip f_theta: a transformer over the whole stream of audio units, trained by masked
prediction of lip-motion units (paper Eq. 1-3), and the phone-level baseline of Table 4."""

from __future__ import annotations

import math

import torch
from torch import nn

from cals.config import ModelConfig


def phone_mask(num_steps: int, mask_len: int = 5, prob: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean (T,) mask of non-overlapping spans of ``mask_len`` units (paper 3.1.1, Eq. 1) whose
    expected share of the stream is ``prob`` at every length T: the number of spans is
    ``floor(prob * T / mask_len)`` plus one with probability equal to the fractional part, and the
    spans are placed uniformly at random among all non-overlapping placements (not on a grid of
    slots; adjacent spans merge into longer runs). Rounding the span count instead masked 40 % of a
    25-frame window at ``prob`` 0.5."""
    mask = torch.zeros(num_steps, dtype=torch.bool)
    slots = num_steps // mask_len
    if slots == 0 or prob <= 0:
        return mask
    want = prob * num_steps / mask_len
    n = int(want)
    if float(torch.rand((), generator=generator)) < want - n:
        n += 1
    n = min(n, slots)
    if n == 0:
        return mask
    # n spans in T units = n "span" tokens among T - n * mask_len free units: choose the tokens' ranks.
    free = num_steps - n * mask_len
    ranks = torch.randperm(free + n, generator=generator)[:n].sort().values
    for i, r in enumerate(ranks.tolist()):
        start = r - i + i * mask_len  # free units before this span + the spans before it
        mask[start : start + mask_len] = True
    return mask


def sinusoidal(t: int, d: int, device=None, offset: int | torch.Tensor = 0) -> torch.Tensor:
    """(T, d) position codes for positions ``offset .. offset + T - 1``; a (B,) tensor ``offset`` gives
    (B, T, d), one absolute start per sequence."""
    if isinstance(offset, torch.Tensor):
        pos = (offset.to(device=device, dtype=torch.float32)[:, None] + torch.arange(t, device=device))[..., None]
    else:
        pos = torch.arange(offset, offset + t, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(*pos.shape[:-1], d, device=device)
    pe[..., 0::2] = torch.sin(pos * div)
    pe[..., 1::2] = torch.cos(pos * div)
    return pe


class AudioToLip(nn.Module):
    """(B, T, 80, 4) audio units (masked units are zero) -> (B, T, unit_dim) contextual lip units."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Linear(80 * 4, cfg.d_model), nn.LayerNorm(cfg.d_model))
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff, cfg.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(cfg.d_model), nn.Linear(cfg.d_model, cfg.unit_dim))

    def forward(self, units: torch.Tensor, key_padding_mask: torch.Tensor | None = None,
                offset: int | torch.Tensor = 0) -> torch.Tensor:
        """``offset``: absolute frame index of the first unit, an int or one per sequence (B,)
        (windows of a long stream keep their positions); ``key_padding_mask`` (B, T): True on padding."""
        x = self.inp(units.flatten(2))
        x = x + sinusoidal(x.shape[1], x.shape[2], x.device, offset)
        return self.out(self.encoder(x, src_key_padding_mask=key_padding_mask))


class PhoneLevelAudioEncoder(nn.Module):
    """Table 4's baseline: each frame sees only a short window of audio units around it (like
    Wav2Lip's 0.2 s mel window), with no context across the stream."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.window = cfg.baseline_window
        self.net = nn.Sequential(
            nn.Conv1d(80 * 4, cfg.d_model, self.window, padding=self.window // 2), nn.GELU(),
            nn.Conv1d(cfg.d_model, cfg.d_model, 1), nn.GELU(), nn.Conv1d(cfg.d_model, cfg.unit_dim, 1),
        )

    def forward(self, units: torch.Tensor, key_padding_mask=None, offset: int | torch.Tensor = 0) -> torch.Tensor:
        return self.net(units.flatten(2).transpose(1, 2)).transpose(1, 2)


def context_keep(t: int, targets: torch.Tensor, k: int) -> torch.Tensor:
    """(N, T) boolean: True where audio unit j lies in [t - k, t + k] of target frame t (paper Fig. 6)."""
    idx = torch.arange(t, device=targets.device)
    return (idx[None, :] - targets[:, None]).abs() <= k
