"""CALS: Audio-to-Lip (or the phone-level baseline) cascaded with Lip-to-Face (paper Eq. 4)."""

from __future__ import annotations

import torch
from torch import nn

from cals.audio2lip import AudioToLip, PhoneLevelAudioEncoder, context_keep
from cals.config import ModelConfig
from cals.lip2face import LipToFace


class CALS(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio2lip = AudioToLip(cfg) if cfg.use_a2l else PhoneLevelAudioEncoder(cfg)
        self.lip2face = LipToFace(cfg.img_size, cfg.unit_dim, cfg.unet_base)

    def lip_units(self, units: torch.Tensor, unit_mask: torch.Tensor | None = None,
                  context_k: int | None = None, offset: int | torch.Tensor = 0,
                  key_padding_mask: torch.Tensor | None = None, tokens_per_pass: int = 32768) -> torch.Tensor:
        """(B, T, 80, 4) -> (B, T, unit_dim). ``unit_mask`` (B, T) zeroes those audio units (masked
        prediction, or the masked-audio experiment); ``key_padding_mask`` (B, T) marks padding.

        ``context_k`` (paper Fig. 6): the lip unit of each target frame t is computed from the stream
        with every audio unit outside [t - k, t + k] zeroed (the token masked pretraining uses), with the
        stream's length and positions unchanged: one pass per target frame, ``tokens_per_pass`` units
        per batched pass. ``None``: the whole stream. Limiting attention to +-k in every layer instead
        would let information travel k frames per layer (+-6k with 6 layers)."""
        if unit_mask is not None:
            units = units.masked_fill(unit_mask[..., None, None], 0.0)
        b, t = units.shape[:2]
        if context_k is None or context_k >= t - 1:
            return self.audio2lip(units, key_padding_mask=key_padding_mask, offset=offset)
        out = units.new_empty(b, t, self.cfg.unit_dim)
        chunk = max(1, tokens_per_pass // t)
        for i in range(b):
            for s in range(0, t, chunk):
                targets = torch.arange(s, min(t, s + chunk), device=units.device)
                keep = context_keep(t, targets, context_k)  # (N, T)
                x = units[i][None] * keep[..., None, None]
                off = int(offset[i]) if isinstance(offset, torch.Tensor) else offset
                kpm = None if key_padding_mask is None else key_padding_mask[i][None].expand(len(targets), -1)
                y = self.audio2lip(x, key_padding_mask=kpm, offset=off)
                out[i, s : s + len(targets)] = y[torch.arange(len(targets)), targets]
        return out

    def render(self, lips: torch.Tensor, reference: torch.Tensor, pose_prior: torch.Tensor) -> torch.Tensor:
        """lips (B, T, D), reference (B, 3, S, S), pose_prior (B, T, 3, S, S), in [0, 1] -> (B, T, 3, S, S)."""
        b, t = lips.shape[:2]
        ident = torch.cat([reference[:, None].expand(-1, t, -1, -1, -1), pose_prior], dim=2)
        out = self.lip2face(ident.flatten(0, 1), lips.flatten(0, 1))
        return out.view(b, t, *out.shape[1:])

    def forward(self, units: torch.Tensor, reference: torch.Tensor, pose_prior: torch.Tensor,
                unit_mask: torch.Tensor | None = None, context_k: int | None = None) -> torch.Tensor:
        return self.render(self.lip_units(units, unit_mask, context_k), reference, pose_prior)
