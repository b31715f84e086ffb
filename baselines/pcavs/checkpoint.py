"""Loading PC-AVS weights.

- The official release: a folder (``checkpoints/demo/``) holding ``latest_net_G.pth``,
  ``latest_net_V.pth``, ``latest_net_E.pth``, ``latest_net_A_sync.pth`` - plain state dicts saved by
  ``torch.save(net.cpu().state_dict())`` (``util.save_network``), read with ``weights_only=True`` and
  loaded strictly; a missing file is named, and a file holding another of the four networks (a G file
  given as V) is recognised by its keys and reported as such.
- Ours: one safetensors file with the four state dicts under ``G.``, ``V.``, ``E.``, ``A_sync.`` and a
  card whose ``config`` records ``width`` and ``size``.
"""

from __future__ import annotations

from pathlib import Path

from baselines.pcavs.model import NETWORKS, PCAVS, PCAVSConfig
from talkbench.cache import sha256_file
from talkbench.errors import CheckpointError
from talkbench.weights import load_state_dict_strict, load_weights_file, read_card, strip_prefix

OFFICIAL = PCAVSConfig()
FILES = {net: f"latest_net_{net}.pth" for net in ("G", "V", "E", "A_sync")}
# a key only that network has, to tell the four files apart
SIGNATURE = {"G": "input.input", "V": "conv1x1.weight", "E": "to_headpose.0.weight", "A_sync": "model.attention.0.weight"}


def which_network(state_dict) -> str | None:
    found = [net for net, key in SIGNATURE.items() if key in state_dict]
    return found[0] if len(found) == 1 else None


def official_files(folder: str | Path) -> dict[str, Path]:
    """The four files of an official folder; names every missing one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError("PC-AVS weights must be a folder holding latest_net_{G,V,E,A_sync}.pth", folder)
    paths = {net: folder / name for net, name in FILES.items()}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise CheckpointError(f"missing {', '.join(missing)} (a PC-AVS folder needs all four latest_net_*.pth)", folder)
    return paths


def load_pcavs(path: str | Path, folder_config: PCAVSConfig = OFFICIAL) -> PCAVS:
    """A :class:`PCAVS` in eval mode from an official folder (official sizes unless
    ``folder_config`` says otherwise) or one of our safetensors files (sizes from its card)."""
    path = Path(path)
    if path.is_dir():
        model = PCAVS(folder_config)
        for net, p in official_files(path).items():
            sd = strip_prefix(load_weights_file(p), "module.")
            other = which_network(sd)
            if other is not None and other != net:
                raise CheckpointError(f"this file holds PC-AVS's {other} network, expected {net} ({FILES[net]})", p)
            load_state_dict_strict(getattr(model, net), sd, p)
        return model.eval()
    if path.suffix != ".safetensors":
        raise CheckpointError("expected a folder with the official latest_net_*.pth files or a .safetensors file", path)
    cfg = read_card(path).get("config", {})
    model = PCAVS(PCAVSConfig(width=float(cfg.get("width", 1.0)), size=int(cfg.get("size", 224)),
                              num_classes=int(cfg.get("num_classes", 5830))))
    sd = load_weights_file(path)
    for net in NETWORKS:
        part = {k[len(net) + 1 :]: v for k, v in sd.items() if k.startswith(net + ".")}
        load_state_dict_strict(getattr(model, net), part, f"{path} [{net}.*]")
    leftover = [k for k in sd if k.split(".", 1)[0] not in NETWORKS]
    if leftover:
        raise CheckpointError(f"unexpected keys ({len(leftover)}): {', '.join(leftover[:10])}", path)
    return model.eval()


def weights_files(path: str | Path) -> dict[str, dict]:
    """Provenance for run.json: sha256 of every file that was loaded."""
    path = Path(path)
    if path.is_dir():
        return {p.name: {"path": str(p.resolve()), "sha256": sha256_file(p)} for p in official_files(path).values()}
    return {path.name: {"path": str(path.resolve()), "sha256": sha256_file(path), "card": read_card(path)}}


def find_official() -> Path | None:
    """``$TALKBENCH_WEIGHTS/pcavs/`` (or ``pcavs/`` in the other weight folders) when it holds the four files."""
    from talkbench.weights import weight_dirs

    for d in weight_dirs():
        cand = d / "pcavs"
        if cand.is_dir() and all((cand / f).is_file() for f in FILES.values()):
            return cand
    return None


def state_dict_for_export(model: PCAVS) -> dict:
    return {f"{net}.{k}": v for net in NETWORKS for k, v in getattr(model, net).state_dict().items()}

