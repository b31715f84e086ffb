"""Loading ATVGnet weights.

- The official release: a folder holding ``atnet_lstm_18.pth`` and ``generator_23.pth`` (plain state dicts
  saved from ``nn.DataParallel``; ``demo.py`` strips ``module.``), read with ``weights_only=True`` and
  loaded strictly, plus the ``basics/*.npy`` landmark files (in the folder or its ``basics/``).
- Ours: one safetensors file with the two networks under ``atnet.`` and ``vgnet.``, its card (widths, basis
  file name) and the basis ``.npz`` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from baselines.atvgnet.landmarks import LandmarkSpace, load_space
from baselines.atvgnet.model import ATNet, VGNet
from talkbench.errors import CheckpointError
from talkbench.weights import (
    load_safetensors,
    load_state_dict_strict,
    load_weights_file,
    read_card,
    strip_prefix,
)

AT_FILE = "atnet_lstm_18.pth"
VG_FILE = "generator_23.pth"


@dataclass
class ATVGnet:
    atnet: ATNet
    vgnet: VGNet
    space: LandmarkSpace
    exaggerate: bool
    files: list[Path]


def load_official_net(path: str | Path, model: nn.Module) -> nn.Module:
    """One official file into ``model``, strictly (DataParallel ``module.`` prefix removed)."""
    load_state_dict_strict(model, strip_prefix(load_weights_file(path), "module."), path)
    return model.eval()


def load_atvgnet(path: str | Path, exaggerate: bool | None = None) -> ATVGnet:
    """The official folder or our safetensors (see the module docstring)."""
    p = Path(path)
    if p.is_dir():
        missing = [f for f in (AT_FILE, VG_FILE) if not (p / f).exists()]
        if missing:
            raise CheckpointError(f"ATVGnet weights missing: {', '.join(missing)}", p)
        space = load_space(p)
        at = load_official_net(p / AT_FILE, ATNet())
        vg = load_official_net(p / VG_FILE, VGNet())
        return ATVGnet(at, vg, space, True if exaggerate is None else exaggerate, [p / AT_FILE, p / VG_FILE])
    if p.suffix != ".safetensors":
        raise CheckpointError("pass the folder holding atnet_lstm_18.pth, generator_23.pth and basics/, "
                              "or a talkbench atvgnet .safetensors", p)
    if not p.exists():
        raise CheckpointError("checkpoint file not found", p)
    cfg = read_card(p).get("config", {})
    basis = p.parent / cfg.get("basis", p.stem + "-basis.npz")
    space = load_space(basis)
    sd = load_safetensors(p)
    at = ATNet(width=float(cfg.get("at_width", 1.0)))
    vg = VGNet(width=float(cfg.get("vg_width", 1.0)), n_blocks=int(cfg.get("n_blocks", 9)))
    for prefix, model in (("atnet.", at), ("vgnet.", vg)):
        part = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if not part:
            raise CheckpointError(f"no '{prefix}*' tensors: not an atvgnet checkpoint", p)
        load_state_dict_strict(model, part, p)
        model.eval()
    ex = bool(cfg.get("exaggerate", True)) if exaggerate is None else exaggerate
    return ATVGnet(at, vg, space, ex, [p, basis])
