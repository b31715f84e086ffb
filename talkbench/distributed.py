"""DDP for the trainers: when launched by ``torchrun`` (``RANK`` set) the process group is initialised
and models are wrapped in DistributedDataParallel; a plain launch runs on one device unchanged."""

from __future__ import annotations

import os

import torch
from torch import nn


def init_distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group once under ``torchrun``."""
    if "RANK" in os.environ and torch.distributed.is_available() and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def wrap_ddp(model: nn.Module, device: str) -> nn.Module:
    """``model`` wrapped in DDP when several processes train together, else ``model`` itself."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()) or torch.distributed.get_world_size() == 1:
        return model
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def average_gradients(model: nn.Module) -> None:
    """All-reduce (mean) of every gradient across processes: DDP's synchronisation for models whose
    submodules are called directly rather than through ``forward`` (CALS's lip_units / render)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    if world == 1:
        return
    for p in model.parameters():
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad /= world
