"""Audio-to-Lip f_theta: a transformer over the whole stream of audio units, trained by masked
prediction of lip-motion units (paper Eq. 1-3), and the phone-level baseline of Table 4."""

from __future__ import annotations

import math

import torch
from torch import nn

from cals.config import ModelConfig


def phone_mask(num_steps: int, mask_len: int = 5, prob: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean (T,) mask: non-overlapping spans of ``mask_len`` units covering ~``prob`` of the stream
    (spans are chosen among the T // mask_len aligned slots, so they never overlap)."""
    slots = num_steps // mask_len
    mask = torch.zeros(num_steps, dtype=torch.bool)
    if slots == 0:
        return mask
    n = max(1, round(prob * num_steps / mask_len))
    chosen = torch.randperm(slots, generator=generator)[: min(n, slots)]
    offset = int(torch.randint(0, num_steps - slots * mask_len + 1, (1,), generator=generator))
    for c in chosen.tolist():
        mask[offset + c * mask_len : offset + (c + 1) * mask_len] = True
    return mask


def sinusoidal(t: int, d: int, device=None, offset: int = 0) -> torch.Tensor:
    pos = torch.arange(offset, offset + t, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(t, d, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
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
                attn_mask: torch.Tensor | None = None, offset: int = 0) -> torch.Tensor:
        """``offset``: absolute frame index of the first unit (windows of a long stream keep their
        positions)."""
        x = self.inp(units.flatten(2))
        x = x + sinusoidal(x.shape[1], x.shape[2], x.device, offset)
        return self.out(self.encoder(x, mask=attn_mask, src_key_padding_mask=key_padding_mask))


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

    def forward(self, units: torch.Tensor, key_padding_mask=None, attn_mask=None, offset: int = 0) -> torch.Tensor:
        return self.net(units.flatten(2).transpose(1, 2)).transpose(1, 2)


def window_attention_mask(t: int, k: int, device=None) -> torch.Tensor:
    """(T, T) boolean mask (True = not attended) limiting each step to +-k steps (paper Fig. 6)."""
    idx = torch.arange(t, device=device)
    return (idx[None, :] - idx[:, None]).abs() > k
