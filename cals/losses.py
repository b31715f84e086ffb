"""CALS losses (paper Eq. 3, 5-10)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def a2l_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 3: squared error between predicted and target lip units on masked steps only (mean over
    masked steps and dimensions). pred/target (B, T, D), mask (B, T) bool."""
    if not mask.any():
        return pred.sum() * 0.0
    return ((pred - target) ** 2)[mask].mean()


def recon_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Eq. 5: L1 between generated and ground-truth frames."""
    return F.l1_loss(fake, real)


def gan_generator_loss(d_fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 6 in its non-saturating form: -log D(fake)."""
    return F.binary_cross_entropy_with_logits(d_fake_logits, torch.ones_like(d_fake_logits))


def gan_discriminator_loss(d_real_logits: torch.Tensor, d_fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 7: -log D(real) - log(1 - D(fake))."""
    return 0.5 * (F.binary_cross_entropy_with_logits(d_real_logits, torch.ones_like(d_real_logits)) +
                  F.binary_cross_entropy_with_logits(d_fake_logits, torch.zeros_like(d_fake_logits)))


def d_av(audio_emb: torch.Tensor, fake_video_emb: torch.Tensor) -> torch.Tensor:
    """Eq. 9: -mean log cos(F_a(a_i), F_v(I^_i)) (embeddings are non-negative: cos in [0, 1])."""
    cos = F.cosine_similarity(audio_emb, fake_video_emb, dim=-1).clamp(1e-6, 1.0)
    return -torch.log(cos).mean()


def d_vv(fake_video_emb: torch.Tensor, real_video_emb: torch.Tensor) -> torch.Tensor:
    """Eq. 10: each generated segment i must match the ground-truth segment i among the S segments of
    the same context: cross-entropy over j of exp(cos(F_v(I^_i), F_v(I_j))). Inputs (B, S, D)."""
    sim = torch.einsum("bsd,btd->bst", F.normalize(fake_video_emb, dim=-1), F.normalize(real_video_emb, dim=-1))
    target = torch.arange(sim.shape[1], device=sim.device).expand(sim.shape[0], -1)
    return F.cross_entropy(sim.flatten(0, 1), target.flatten())
