"""Deterministic stand-in weights built from a state dict's key/shape list, for golden-vector tests
and benchmarks (the official file is not redistributable). The rule, per key of network ``net``:

- each tensor draws from its own ``torch.Generator().manual_seed(seed * 1_000_003 + crc32(f"{net}/{key}"))``
  so the result does not depend on key order;
- ``num_batches_tracked`` -> 0; the anti-aliasing kernels (``down.weight``, ``down_id.weight``,
  ``down_pose.weight``, ``dense_motion_network.down.weight``) are fixed buffers: kept as built;
- ``running_mean`` -> 0.1 N(0, 1); ``running_var`` -> 0.75 + 0.5 U[0, 1);
- 1-D ``weight`` (normalisation scales) -> 1 + 0.1 N; every ``bias`` (LSTM biases included) -> 0.05 N,
  except ``jacobian.bias`` -> [1, 0, 0, 1] per keypoint + 0.05 N (near-identity, invertible jacobians);
- other weights (conv, transposed conv, linear, LSTM) -> N / sqrt(prod(shape[1:])), times 0.05 for
  ``jacobian.weight``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

FIXED_BUFFERS = ("down.weight", "down_id.weight", "down_pose.weight")


def seeded_tensor(net: str, key: str, like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(f"{net}/{key}".encode()))
    shape = tuple(like.shape)
    last = key.rsplit(".", 1)[-1]
    if last == "num_batches_tracked":
        return torch.zeros(shape, dtype=like.dtype)
    if key in FIXED_BUFFERS or key.endswith(".down.weight"):
        return like.detach().clone()
    if last == "running_mean":
        return 0.1 * torch.randn(shape, generator=g)
    if last == "running_var":
        return 0.75 + 0.5 * torch.rand(shape, generator=g)
    if key == "jacobian.bias":
        return torch.tensor([1.0, 0.0, 0.0, 1.0] * (shape[0] // 4)) + 0.05 * torch.randn(shape, generator=g)
    if last.startswith("bias"):
        return 0.05 * torch.randn(shape, generator=g)
    if len(shape) == 1:
        return 1 + 0.1 * torch.randn(shape, generator=g)
    fan_in = 1
    for s in shape[1:]:
        fan_in *= s
    w = torch.randn(shape, generator=g) / fan_in**0.5
    return w * 0.05 if key == "jacobian.weight" else w


def seeded_state_dict(net: str, model: nn.Module | Mapping[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded weights for every key of ``model`` (a module or its state dict)."""
    sd = model.state_dict() if isinstance(model, nn.Module) else model
    return {k: seeded_tensor(net, k, v, seed) for k, v in sd.items()}


def seeded_networks(width: float = 1.0, seed: int = 0) -> dict[str, nn.Module]:
    """The four native networks at ``width`` with seeded weights, in eval mode."""
    from baselines.audio2head.model import build_networks

    nets = build_networks(width)
    for name, m in nets.items():
        m.load_state_dict(seeded_state_dict(name, m, seed))
    return nets


# ----------------------------------------------------------------------------- fixed test inputs


def synthetic_image(seed: int = 1, size: int = 256) -> np.ndarray:
    """(size, size, 3) uint8 RGB: seeded 16 x 16 uniform noise, bilinearly upsampled."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=(size, size), mode="bilinear", align_corners=False)
    return np.round(x[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def synthetic_speech(seconds: float = 2.4, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """int16 mono "speech": 6 harmonics of an F0 gliding 120 -> 220 Hz, 4 Hz syllable envelope, two
    silent gaps (0.5-0.7 s, 1.5-1.65 s) and faint seeded noise, peak 12000."""
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    phase = 2 * np.pi * np.cumsum(120 + 100 * t / seconds) / sample_rate
    x = sum(np.sin(h * phase) / h for h in range(1, 7)) * 0.5 * (1.2 - np.cos(2 * np.pi * 4 * t))
    for a, b in ((0.5, 0.7), (1.5, 1.65)):
        x[(t >= a) & (t < b)] = 0.0
    x = x + 0.002 * np.random.default_rng(seed).standard_normal(n)
    return np.round(x / np.abs(x).max() * 12000).astype(np.int16)


def seeded_keypoints(seed: int, batch: int = 1, num_kp: int = 10, spread: float = 0.8) -> dict[str, torch.Tensor]:
    """{"value": U(-spread, spread), "jacobian": I + 0.1 N} keypoints."""
    g = torch.Generator().manual_seed(seed)
    value = (torch.rand(batch, num_kp, 2, generator=g) * 2 - 1) * spread
    jac = torch.eye(2).expand(batch, num_kp, 2, 2) + 0.1 * torch.randn(batch, num_kp, 2, 2, generator=g)
    return {"value": value, "jacobian": jac}


def seeded_blocks(seed: int, frames: int, scale: float = 3.0) -> torch.Tensor:
    """(1, frames, 4, 41) N(0, scale^2) audio feature blocks."""
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(1, frames, 4, 41, generator=g)


def seeded_poses(seed: int, frames: int) -> np.ndarray:
    """(frames, 6) normalised poses U(-0.8, 0.8)."""
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(frames, 6, generator=g) * 2 - 1) * 0.8).numpy()
