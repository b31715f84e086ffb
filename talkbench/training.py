"""What every trainer shares around its training loop: the command line that goes on the weight card,
the history of invocations of a resumed run, CPU threads, the metrics file, and the exported file with
its card. Each ``talkbench train X`` command is a thin call into these and the trainer's own library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import torch

from talkbench.weights import save_weights, update_card


def command_line(ctx: click.Context | None = None) -> str:
    """``talkbench <group> <command>`` plus the options that differ from their defaults, as typed (argv is
    not ours under a test runner or another program that calls the CLI)."""
    ctx = ctx or click.get_current_context()
    # The root's own name is whatever started it (``talkbench``, ``python -m talkbench.cli``, a test runner).
    parts = ["talkbench", *ctx.command_path[len(ctx.find_root().command_path):].split()]
    for p in ctx.command.params:
        v = ctx.params.get(p.name)
        if v is None or v == p.default or v is False or v == ():
            continue
        if getattr(p, "is_flag", False):
            parts.append(p.opts[0])
        elif isinstance(v, (tuple, list)):
            parts.extend(f"{p.opts[0]} {x}" for x in v)
        else:
            parts.append(f"{p.opts[0]} {v}")
    return " ".join(parts)


def set_threads(threads: int | None) -> None:
    """torch CPU threads (None or 0: torch's own choice)."""
    if threads:
        torch.set_num_threads(threads)


def command_history(out: str | Path, command: str, resume: bool, write: bool = True) -> list[str]:
    """Every invocation that trained the run in ``out`` (``out/commands.json``), this one last; a fresh
    (non-resumed) run starts a new history. ``write=False`` on non-zero DDP ranks."""
    path = Path(out) / "commands.json"
    before = json.loads(path.read_text()) if resume and path.exists() else []
    commands = [*before, command]
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(commands, indent=1))
    return commands


def record_loss_term(terms: list[dict[str, Any]], stage: str, weight: float, start: int, end: int) -> None:
    """Note that ``stage`` steps ``start``..``end`` were trained with an extra loss term of ``weight`` (the
    mouth-box L1 of the baseline trainers). Kept in the run's state, so the card lists what trained the
    weights whatever flags the last, resuming command passed; consecutive steps at one weight merge."""
    if weight <= 0 or end <= start:
        return
    last = terms[-1] if terms else None
    if last and last["stage"] == stage and last["weight"] == weight and last["steps"][1] == start:
        last["steps"][1] = end
    else:
        terms.append({"stage": stage, "weight": weight, "steps": [start, end]})


def write_metrics(out: str | Path, metrics: Mapping[str, Any], resume: bool = False) -> dict[str, Any]:
    """Write ``out/metrics.json``; a resumed run keeps the earlier keys it did not measure again (e.g. the
    training losses when the resumed invocation only exports)."""
    path = Path(out) / "metrics.json"
    prev = json.loads(path.read_text()) if resume and path.exists() else {}
    merged = {**prev, **metrics}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2))
    return merged


def export_weights(path: str | Path, state_dict: Mapping[str, torch.Tensor], *, command: str,
                   commands: list[str] | None = None, data: Mapping[str, Any], seed: int,
                   metrics: Mapping[str, Any] | None = None, steps: int | None = None,
                   config: Mapping[str, Any] | None = None, note: str | None = None,
                   **extra: Any) -> dict[str, Any]:
    """fp16 safetensors + card (command, every command of the run, data, seed, metrics, steps, config,
    note, and any ``extra`` fields such as deviations from the paper). Returns the full card."""
    card: dict[str, Any] = {"command": command, "commands": list(commands or [command]), "data": dict(data),
                            "seed": seed, "metrics": dict(metrics or {})}
    if steps is not None:
        card["steps"] = steps
    if config is not None:
        card["config"] = dict(config)
    if note:
        card["note"] = note
    card.update(extra)
    return save_weights(Path(path), state_dict, card)


def record_exported_metrics(path: str | Path, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Put metrics measured on the exported (fp16) file into its card, keeping the file's sha256."""
    return update_card(path, metrics=dict(metrics))
