"""Loading and saving weights safely.

Our own weights are safetensors (no pickle), fp16 where it suffices, each beside a JSON card
``<name>.json`` beside ``<name>.safetensors`` (command, data, seed, metrics, sha256). Official third-party ``.pth`` files are
read with ``torch.load(weights_only=True)``: files that need code execution are refused, and key or
shape mismatches are reported by name.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from talkbench.cache import atomic_write, sha256_file
from talkbench.errors import CheckpointError


def card_path(weights: str | Path) -> Path:
    p = Path(weights)
    return p.with_suffix(".json")


def save_weights(
    path: str | Path,
    state_dict: Mapping[str, torch.Tensor],
    card: Mapping[str, Any],
    *,
    dtype: torch.dtype | None = torch.float16,
) -> dict[str, Any]:
    """Write ``state_dict`` as safetensors (floating tensors cast to ``dtype``) plus its card.

    A tensor that the cast would not represent (e.g. a BatchNorm running variance above fp16's 65504,
    common after a first layer fed 0-255 pixels) keeps its own dtype; the card lists those keys.

    ``card`` should hold at least ``command``, ``data``, ``seed`` and ``metrics``; ``sha256``,
    ``file``, ``dtype`` and ``created`` are filled in here. Returns the full card.
    """
    path = Path(path)
    tensors, kept = {}, []
    for k, v in state_dict.items():
        t = v.detach().cpu()
        if dtype is not None and t.is_floating_point():
            cast = t.to(dtype)
            if torch.isfinite(cast).all() or not torch.isfinite(t).all():
                t = cast
            else:
                kept.append(k)
        tensors[k] = t.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    full = dict(card)
    full.update(
        file=path.name,
        sha256=sha256_file(path),
        dtype=str(dtype).replace("torch.", "") if dtype is not None else "as-is",
        num_params=int(sum(t.numel() for t in tensors.values())),
        kept_dtype=kept,
        created=full.get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    _write_card(path, full)
    return full


def _write_card(path: str | Path, card: Mapping[str, Any]) -> None:
    with atomic_write(card_path(path), "w") as f:
        json.dump(dict(card), f, indent=2, sort_keys=True)


def update_card(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Add ``fields`` to an existing card (e.g. metrics measured on the exported file) without
    rewriting the weights; the sha256 stays that of the file."""
    card = read_card(path)
    if not card:
        raise CheckpointError("no card to update", card_path(path))
    card.update(fields)
    _write_card(path, card)
    return card


def read_card(path: str | Path) -> dict[str, Any]:
    """The card beside a weights file ({} if none)."""
    cp = card_path(path)
    return json.loads(cp.read_text()) if cp.exists() else {}


def load_safetensors(path: str | Path, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Read a safetensors file, casting floating tensors to ``dtype``."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError("weights file not found", p)
    try:
        sd = load_file(str(p))
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"not a readable safetensors file ({exc})", p) from exc
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items()}


def _unpickler_reason(exc: Exception) -> str:
    """The one line of PyTorch's weights-only error that says what failed (its advice to retry with
    ``weights_only=False`` is exactly what this loader must not suggest)."""
    m = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
    line = (m.group(1) if m else str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return line.split(" was not an allowed global")[0].strip()


def _code_references(path: Path) -> str | None:
    """The first global a pickle would import and call (read with pickletools, which executes nothing),
    or None. Looks inside torch's zip format too; random bytes give None."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                data = z.read(name) if name else b""
        else:
            data = path.read_bytes()
        strings: list[str] = []
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                strings = [*strings[-1:], str(arg)]
            elif op.name in ("GLOBAL", "INST"):
                return str(arg).replace(" ", ".")
            elif op.name == "STACK_GLOBAL" and len(strings) == 2:
                return ".".join(strings)
    except Exception:
        return None
    return None


def load_torch_checkpoint(path: str | Path) -> Any:
    """``torch.load(weights_only=True)``; a file that needs code execution is refused, a file that is
    not a checkpoint at all (random bytes, text, a plain pickle) is named as such."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError("checkpoint file not found", p)
    try:
        with warnings.catch_warnings():
            # Old checkpoints use pickle protocols > 2; PyTorch's warning about it asks users to file issues.
            warnings.filterwarnings("ignore", message=r".*pickle protocol", category=UserWarning)
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unpickler_reason(exc)
        if "Unsupported global" not in reason and (found := _code_references(p)):
            reason = f"Unsupported global: GLOBAL {found}"  # a plain pickle the weights-only reader cannot parse
        if "Unsupported global" in reason:
            what = reason.split("GLOBAL", 1)[-1].strip()
            raise CheckpointError(
                f"refusing to load: the file needs code execution to unpickle (it references {what}); "
                "talkbench only loads plain tensors", p) from None
        raise CheckpointError(f"not a readable PyTorch checkpoint (unpickling failed: {reason})", p) from None
    except Exception as exc:
        raise CheckpointError(f"not a readable PyTorch checkpoint ({_unpickler_reason(exc)})", p) from None


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a (weights_only) torch file."""
    p = Path(path)
    if p.suffix == ".safetensors":
        return load_safetensors(p)
    obj = load_torch_checkpoint(p)
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a state dict, got {type(obj).__name__}", p)
    return dict(obj)


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Remove a DataParallel/DDP prefix from every key that has it."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def load_state_dict_strict(
    model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], source: str | Path = "<memory>"
) -> None:
    """Load strictly, reporting missing keys, unexpected keys and shape mismatches by name."""
    own = model.state_dict()
    # BatchNorm's num_batches_tracked counters are absent from many official files; they carry no weights.
    state_dict = {**{k: v for k, v in own.items() if k.endswith("num_batches_tracked")}, **state_dict}
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:10])}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:10])}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {'; '.join(shapes[:10])}")
        raise CheckpointError(" | ".join(parts), source)
    cast = {k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
    model.load_state_dict(cast, strict=True)


def weights_record(path: str | Path, portable: bool = False) -> dict[str, Any]:
    """Provenance of a weights file for run.json: path, sha256 and its card. ``portable`` (for weight
    cards, which travel with the repository): the file name instead of this machine's path."""
    p = Path(path)
    where = {"file": p.name} if portable else {"path": str(p.resolve())}
    return {**where, "sha256": sha256_file(p), "card": read_card(p)}


# The shipped synthetic checkpoints are package data, so an editable checkout and an installed wheel
# find them in the same place.
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


def shipped_weights(name: str) -> Path | None:
    """Path of a shipped checkpoint ``talkbench/checkpoints/<name>.safetensors`` if present."""
    p = CHECKPOINT_DIR / f"{name}.safetensors"
    return p if p.exists() else None


def weight_dirs() -> list[Path]:
    """Where official (third-party) weights are looked for, in order: ``$TALKBENCH_WEIGHTS``, then
    ``$TALKBENCH_CACHE/weights``."""
    from talkbench.cache import cache_dir

    dirs = []
    if os.environ.get("TALKBENCH_WEIGHTS"):
        dirs.append(Path(os.environ["TALKBENCH_WEIGHTS"]).expanduser())
    dirs.append(cache_dir() / "weights")
    return dirs


def find_weights(name: str) -> Path | None:
    """The first ``<dir>/<name>`` over :func:`weight_dirs` (a file, or a folder such as ``pcavs/``)."""
    for d in weight_dirs():
        if (d / name).exists():
            return d / name
    return None
