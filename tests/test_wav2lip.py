"""Wav2Lip native: official checkpoint layouts (saved from random init) load strictly, preprocessing
follows inference.py, and the method runs through `talkbench run --weights wav2lip=FILE`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from baselines.wav2lip.checkpoint import load_wav2lip
from baselines.wav2lip.model import QualityDiscriminator, SyncNetColor, Wav2Lip
from baselines.wav2lip.preprocess import mel_chunks, model_inputs
from talkbench.cli import cli
from talkbench.errors import CheckpointError
from talkbench.io.video import write_video
from tests.conftest import talking_frames, tone


def _official(path: Path, model: torch.nn.Module, prefix: str = "module.") -> Path:
    sd = {prefix + k: v for k, v in model.state_dict().items()}
    torch.save({"state_dict": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]},
                "global_step": 3000, "global_epoch": 2}, path)
    return path


@pytest.mark.parametrize(("cls", "kind", "params"), [(Wav2Lip, "generator", 36.3), (SyncNetColor, "expert", 16.44),
                                                      (QualityDiscriminator, "quality", 14.11)])
def test_official_layouts_load_strictly(tmp_path: Path, cls, kind: str, params: float) -> None:
    torch.manual_seed(0)
    model = cls()
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == params  # sizes of the official models
    loaded = load_wav2lip(_official(tmp_path / f"{kind}.pth", model), kind)
    key = next(iter(model.state_dict()))
    assert torch.equal(loaded.state_dict()[key], model.state_dict()[key])


def test_key_names_match_official() -> None:
    g = Wav2Lip().state_dict()
    for k in ("face_encoder_blocks.0.0.conv_block.0.weight", "face_encoder_blocks.0.0.conv_block.1.running_mean",
              "audio_encoder.0.conv_block.0.weight", "face_decoder_blocks.1.0.conv_block.0.weight",
              "output_block.0.conv_block.0.weight", "output_block.1.weight"):
        assert k in g
    assert "audio_encoder.12.conv_block.0.weight" in SyncNetColor().state_dict()
    assert "binary_pred.0.weight" in QualityDiscriminator().state_dict()


def test_wrong_checkpoints_are_refused_with_names(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="missing keys"):
        load_wav2lip(_official(tmp_path / "e.pth", SyncNetColor()), "generator")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"state_dict": {"x": Evil()}}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="code execution"):
        load_wav2lip(tmp_path / "evil.pth")


def test_mel_chunks_follow_inference_py() -> None:
    mel = np.tile(np.arange(100, dtype=np.float32), (80, 1))  # value = column index
    chunks = mel_chunks(mel, 31, fps=25)
    assert chunks.shape == (31, 80, 16)
    for i in (0, 1, 7, 26):
        assert chunks[i, 0, 0] == int(i * 80 / 25)
    assert chunks[30, 0, 0] == 100 - 16  # past the end: the last 16 steps


def test_model_inputs() -> None:
    frames = np.full((3, 128, 128, 3), (10, 20, 30), np.uint8)
    x = model_inputs(frames, frames[0])
    assert x.shape == (3, 6, 96, 96)
    assert x[0, 0, 0, 0] == pytest.approx(30 / 255) and x[0, 2, 0, 0] == pytest.approx(10 / 255)  # BGR
    assert (x[:, :3, 48:] == 0).all() and (x[:, 3:, 48:] > 0).all()


def test_run_with_official_weights_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = _official(tmp_path / "wav2lip_gan.pth", Wav2Lip())
    root = tmp_path / "ds"
    root.mkdir()
    write_video(root / "a.mp4", talking_frames(10), tone(0.4))
    res = CliRunner().invoke(cli, ["run", "--methods", "wav2lip", "--dataset", "folder", "--root", str(root), "--split",
                                   "all", "--metrics", "psnr,ssim", "--weights", f"wav2lip={weights}", "--run-dir",
                                   str(tmp_path / "r"), "--no-report"])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["methods"]["wav2lip"]["weights"]["sha256"] and record["config"]["weights"]["wav2lip"]
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as c:
        rows = c.execute("SELECT metric, value FROM results WHERE method='wav2lip'").fetchall()
    assert {m for m, _ in rows} >= {"psnr", "ssim"} and all(v is not None for _, v in rows)
