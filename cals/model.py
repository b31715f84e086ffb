"""CALS: Audio-to-Lip (or the phone-level baseline) cascaded with Lip-to-Face (paper Eq. 4)."""

from __future__ import annotations

import torch
from torch import nn

from cals.audio2lip import AudioToLip, PhoneLevelAudioEncoder, window_attention_mask
from cals.config import ModelConfig
from cals.lip2face import LipToFace


class CALS(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio2lip = AudioToLip(cfg) if cfg.use_a2l else PhoneLevelAudioEncoder(cfg)
        self.lip2face = LipToFace(cfg.img_size, cfg.unit_dim, cfg.unet_base)

    def lip_units(self, units: torch.Tensor, unit_mask: torch.Tensor | None = None,
                  context_k: int | None = None, offset: int = 0) -> torch.Tensor:
        """(B, T, 80, 4) -> (B, T, unit_dim). ``unit_mask`` (B, T) zeroes those audio units (masked
        prediction, or the masked-audio experiment); ``context_k`` limits attention to +-k frames."""
        if unit_mask is not None:
            units = units.masked_fill(unit_mask[..., None, None], 0.0)
        attn = None
        if context_k is not None and self.cfg.use_a2l:
            attn = window_attention_mask(units.shape[1], context_k, units.device)
        return self.audio2lip(units, attn_mask=attn, offset=offset)

    def render(self, lips: torch.Tensor, reference: torch.Tensor, pose_prior: torch.Tensor) -> torch.Tensor:
        """lips (B, T, D), reference (B, 3, S, S), pose_prior (B, T, 3, S, S), in [0, 1] -> (B, T, 3, S, S)."""
        b, t = lips.shape[:2]
        ident = torch.cat([reference[:, None].expand(-1, t, -1, -1, -1), pose_prior], dim=2)
        out = self.lip2face(ident.flatten(0, 1), lips.flatten(0, 1))
        return out.view(b, t, *out.shape[1:])

    def forward(self, units: torch.Tensor, reference: torch.Tensor, pose_prior: torch.Tensor,
                unit_mask: torch.Tensor | None = None, context_k: int | None = None) -> torch.Tensor:
        return self.render(self.lip_units(units, unit_mask, context_k), reference, pose_prior)
