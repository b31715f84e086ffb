"""Shipped-weights files: fp16 safetensors with a card, values outside fp16's range kept exact."""

from __future__ import annotations

from pathlib import Path

import torch

from talkbench.weights import load_safetensors, read_card, save_weights, sha256_file


def test_fp16_cast_keeps_out_of_range_tensors(tmp_path: Path) -> None:
    bn = torch.nn.BatchNorm2d(3)
    bn.running_var.copy_(torch.tensor([1.0, 819159.3, 2.0]))  # a first-layer variance on 0-255 pixels
    bn.weight.data.copy_(torch.tensor([0.5, 1.0 / 3.0, 2.0]))
    p = tmp_path / "w.safetensors"
    card = save_weights(p, bn.state_dict(), {"command": "test", "data": {}, "seed": 0, "metrics": {}})
    back = load_safetensors(p)
    assert torch.equal(back["running_var"], bn.running_var)  # kept float32, not inf
    assert back["weight"][1] == torch.tensor(1.0 / 3.0).half().float()  # cast to fp16
    assert card["kept_dtype"] == ["running_var"] and read_card(p)["sha256"] == sha256_file(p)


def test_update_card_keeps_the_weights_and_their_sha(tmp_path: Path) -> None:
    from talkbench.weights import update_card

    p = tmp_path / "w.safetensors"
    card = save_weights(p, {"x": torch.ones(3)}, {"command": "test", "data": {}, "seed": 0, "metrics": {}})
    before = p.read_bytes()
    new = update_card(p, metrics={"acc": 0.5})
    assert p.read_bytes() == before and new["sha256"] == card["sha256"] == sha256_file(p)
    assert read_card(p)["metrics"] == {"acc": 0.5} and read_card(p)["command"] == "test"
