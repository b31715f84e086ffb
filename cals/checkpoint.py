"""Saving and loading CALS weights: fp16 safetensors with a card that carries the model config."""

from __future__ import annotations

import json
from pathlib import Path

from cals.config import CALSConfig, ModelConfig, from_dict
from cals.model import CALS
from talkbench.errors import CheckpointError
from talkbench.weights import load_safetensors, load_state_dict_strict, read_card, save_weights


def export(model: CALS, cfg: CALSConfig, path: str | Path, card: dict) -> dict:
    return save_weights(path, model.state_dict(), {**card, "config": cfg.to_dict()})


def load_cals(path: str | Path) -> tuple[CALS, CALSConfig]:
    p = Path(path)
    if p.suffix == ".pt":  # a training checkpoint (out/last.pt)
        import torch

        state = torch.load(p, map_location="cpu", weights_only=True)
        cfg = from_dict(json.loads(state["config"]))
        model = CALS(cfg.model)
        load_state_dict_strict(model, state["model"], p)
        return model.eval(), cfg
    card = read_card(p)
    if "config" not in card:
        raise CheckpointError("CALS safetensors needs its card (<name>.json beside it) with the model config", p)
    cfg = from_dict(card["config"])
    model = CALS(cfg.model if isinstance(cfg.model, ModelConfig) else ModelConfig())
    load_state_dict_strict(model, load_safetensors(p), p)
    return model.eval(), cfg
