"""Loading Audio2Head weights.

- the official ``audio2head.pth.tar``: ``torch.save`` of a dict with four state dicts, ``audio2pose``,
  ``audio2kp``, ``generator``, ``kp_detector`` (read with ``weights_only=True``; a file that needs code
  is refused; a missing sub-dict, missing/unexpected keys and wrong shapes are named per network);
- our safetensors: one flat file whose keys are ``<network>.<key>``, the card's ``config.width``
  giving the channel width (1.0 when absent).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from baselines.audio2head.model import NETWORKS
from talkbench.errors import CheckpointError
from talkbench.weights import (
    load_safetensors,
    load_state_dict_strict,
    load_torch_checkpoint,
    read_card,
    strip_prefix,
)

OFFICIAL_FILE = "audio2head.pth.tar"
SHIPPED = "audio2head-synth"


def split_state_dicts(flat: Mapping[str, torch.Tensor], source: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """``<network>.<key>`` -> {network: {key: tensor}}; keys of unknown networks are an error."""
    out: dict[str, dict[str, torch.Tensor]] = {n: {} for n in NETWORKS}
    for k, v in flat.items():
        net, _, rest = k.partition(".")
        if net not in out:
            raise CheckpointError(f"key {k!r} belongs to no Audio2Head network ({', '.join(NETWORKS)})", source)
        out[net][rest] = v
    return {n: sd for n, sd in out.items() if sd}


def flatten_state_dicts(nets: Mapping[str, nn.Module | Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """{network: module or state dict} -> one flat ``<network>.<key>`` dict (for safetensors)."""
    flat = {}
    for name, m in nets.items():
        sd = m.state_dict() if isinstance(m, nn.Module) else m
        flat.update({f"{name}.{k}": v for k, v in sd.items()})
    return flat


def read_state_dicts(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """The four state dicts of an official file or one of ours, by network name; all four must be there."""
    p = Path(path)
    if p.suffix == ".safetensors":
        sds = split_state_dicts(load_safetensors(p), p)
    else:
        obj = load_torch_checkpoint(p)
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"expected a dict of the four Audio2Head state dicts, got {type(obj).__name__}", p)
        sds = {}
        for name in NETWORKS:
            if name in obj:
                if not isinstance(obj[name], Mapping):
                    raise CheckpointError(f"{name!r} is a {type(obj[name]).__name__}, not a state dict", p)
                sds[name] = strip_prefix(obj[name], "module.")
    missing = [n for n in NETWORKS if n not in sds]
    if missing:
        raise CheckpointError(f"missing Audio2Head network(s): {', '.join(missing)} "
                              f"(an Audio2Head file holds {', '.join(NETWORKS)})", p)
    return sds


def checkpoint_width(path: str | Path) -> float:
    if Path(path).suffix != ".safetensors":
        return 1.0
    return float(read_card(path).get("config", {}).get("width", 1.0))


def load_audio2head(path: str | Path, width: float | None = None) -> dict[str, nn.Module]:
    """The four networks at the file's width, loaded strictly, in eval mode."""
    sds = read_state_dicts(path)
    width = checkpoint_width(path) if width is None else width
    nets = {}
    for name, cls in NETWORKS.items():
        m = cls(width=width)
        load_state_dict_strict(m, sds[name], f"{path} [{name}]")
        nets[name] = m.eval()
    return nets


def default_weights() -> Path | None:
    """The official file on the weights search path, else the shipped synthetic-corpus checkpoint."""
    from talkbench.weights import find_weights, shipped_weights

    return find_weights(OFFICIAL_FILE) or shipped_weights(SHIPPED)
