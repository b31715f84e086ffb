"""Writing a trained SyncTalkFace as our weights: generator + decoder (the inference model's state dict,
``generator.*`` / ``decoder.*``) and the 128-px expert beside it, fp16 safetensors with cards."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from talkbench.distributed import unwrap
from talkbench.training import export_weights


def expert_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}-expert.safetensors")


def export_models(trainer, path: Path, *, command: str, clips: int, metrics: dict[str, Any]) -> dict[Path, dict]:
    cfg = trainer.cfg
    gen_sd = {f"generator.{k}": v for k, v in unwrap(trainer.gen).state_dict().items()}
    gen_sd |= {f"decoder.{k}": v for k, v in unwrap(trainer.dec).state_dict().items()}
    common = {"command": command, "commands": trainer.commands,
              "data": {"dataset": cfg.dataset, "split": cfg.split, "clips": clips},
              "seed": cfg.seed, "metrics": metrics, "steps": trainer.step, "config": asdict(cfg),
              **({"init": trainer.init} if trainer.init else {})}
    cards = {path: export_weights(path, gen_sd, **common, expert=expert_path(path).name,
                                  note="SyncTalkFace generator + decoder (Audio-Lip Memory) trained with "
                                       "talkbench's re-implementation of the authors' recipe")}
    ep = expert_path(path)
    cards[ep] = export_weights(ep, unwrap(trainer.expert).state_dict(), **common,
                               note="SyncTalkFace's 128-px lip-sync expert (SyncNet_color at 128)")
    return cards
