"""Deterministic PC-AVS weights built from a key/shape list alone (no training, no download): the
rule behind the golden vectors in ``tests/fixtures/pcavs/`` and the official-size benchmark.

Each tensor draws from its own ``torch.Generator`` seeded with ``crc32("<net>/<key>")``, so the
value of a key does not depend on any other key:

- ``*.num_batches_tracked``: 0 (int64);
- ``*.kernel`` (StyleGAN2 blur/upsample buffers): outer([1,3,3,1])/64 * 4, the value the code builds;
- ``*.running_var``: U[0.5, 1.5);
- ``*.modulation.bias``: 1 + 0.1 N(0,1) (StyleGAN2's bias_init 1);
- other ``*.bias``, ``*.running_mean``: 0.1 N(0,1);
- other 1-d ``*.weight`` (norm scales, noise strengths): 1 + 0.1 N(0,1);
- G's ToRGB conv weights: 0.1 N(0,1) (so that the output tanh is not saturated);
- G's other tensors (equalised-lr weights scaled at run time, ``input.input``, ``noises.*``): N(0,1);
- other tensors of V, E, A_sync (conv / linear weights): N(0,1) / sqrt(fan_in), fan_in = prod(shape[1:]).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import torch


def seeded_tensor(net: str, key: str, shape: Sequence[int]) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(f"{net}/{key}".encode()))
    shape = tuple(int(s) for s in shape)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith(".kernel"):
        k = torch.tensor([1.0, 3.0, 3.0, 1.0])
        return (k[None, :] * k[:, None]) / 64.0 * 4.0
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    n = torch.randn(shape, generator=g)
    if key.endswith("modulation.bias"):
        return 1.0 + 0.1 * n
    if key.endswith("bias") or key.endswith("running_mean"):
        return 0.1 * n
    if key.endswith("weight") and len(shape) == 1:
        return 1.0 + 0.1 * n
    if net == "G" and ".conv.weight" in key and key.startswith("to_rgb"):
        return 0.1 * n  # keeps tanh out of saturation, so the golden images test every layer
    if net == "G":
        return n
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
    return n / math.sqrt(fan_in)


def seeded_state_dict(net: str, layout: Mapping[str, Sequence[int]]) -> dict[str, torch.Tensor]:
    """``{key: tensor}`` for one network (``G``, ``V``, ``E`` or ``A_sync``) from its key -> shape list."""
    return {k: seeded_tensor(net, k, shape) for k, shape in layout.items()}


def model_layout(model: torch.nn.Module) -> dict[str, list[int]]:
    """A module's own key -> shape list (for width-scaled models, which have no official list)."""
    return {k: list(v.shape) for k, v in model.state_dict().items()}
