"""Shared plumbing of the scorers that run a feature network: frames to tensors in batches on one
intra-op thread (the CPU is shared), and the weights record that goes into run.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def to_tensor(frames: np.ndarray, lo: float, hi: float) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 mapped from [0, 255] to [lo, hi]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    return x * ((hi - lo) / 255.0) + lo


@torch.no_grad()
def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int, device: str) -> np.ndarray:
    outs = [fn(x[i:i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)]
    return torch.cat(outs).numpy() if outs else np.zeros((0,), np.float32)


def record(path: str | Path) -> dict[str, Any]:
    from talkbench.weights import weights_record

    return weights_record(path)


def frame_indices(n: int, step: int, limit: int | None) -> np.ndarray:
    """Every ``step``-th frame from 0, at most ``limit`` of them (None: all)."""
    idx = np.arange(0, n, max(1, int(step)))
    return idx[:limit] if limit else idx
