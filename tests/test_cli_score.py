from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from talkbench.cli import cli
from talkbench.io.video import write_video
from tests.conftest import talking_frames, tone


def test_score_json_against_itself(talking_clip: Path) -> None:
    res = CliRunner().invoke(cli, ["score", str(talking_clip), "--reference", str(talking_clip),
                                   "--metrics", "psnr,ssim,lmd", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["frames"] == 25
    assert out["metrics"]["psnr"] == "inf" and out["metrics"]["ssim"] == 1.0 and out["metrics"]["lmd"] == 0.0
    assert out["versions"]["psnr"] == "psnr-1"


def test_score_crop_none_and_mismatched_lengths(tmp_path: Path) -> None:
    frames = talking_frames(20, size=128)
    write_video(tmp_path / "gen.mp4", frames[:15], tone(0.6))
    write_video(tmp_path / "ref.mp4", frames, tone(0.8))
    res = CliRunner().invoke(cli, ["score", str(tmp_path / "gen.mp4"), "--reference", str(tmp_path / "ref.mp4"),
                                   "--metrics", "psnr,ssim", "--crop", "none", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["frames"] == 15 and "trimmed" in out["warnings"][0]
    assert float(out["metrics"]["psnr"]) > 30 or out["metrics"]["psnr"] == "inf"


def test_score_unknown_metric_and_failures(tmp_path: Path) -> None:
    write_video(tmp_path / "v.mp4", talking_frames(10, size=128), tone(0.4))
    res = CliRunner().invoke(cli, ["score", str(tmp_path / "v.mp4"), "--metrics", "psnr", "--crop", "none", "--json"])
    assert res.exit_code == 1  # paired metric without a reference: recorded failure
    assert "reference" in json.loads(res.output)["errors"]["psnr"]
    res = CliRunner().invoke(cli, ["score", str(tmp_path / "v.mp4"), "--metrics", "psnrr", "--crop", "none"])
    assert res.exit_code == 2 and "Did you mean: psnr" in res.output
    _ = np


def test_score_lipreading_of_one_video(talking_clip: Path) -> None:
    from talkbench.weights import read_card, shipped_weights

    critic = shipped_weights("lipreader-synth")
    if critic is None:
        pytest.skip("no shipped lip reader")
    vocab = read_card(critic)["vocabulary"]
    res = CliRunner().invoke(cli, ["score", str(talking_clip), "--metrics", "lipread", "--word", vocab[0].lower(),
                                   "--lipreader", str(critic), "--json"])
    out = json.loads(res.output)
    assert res.exit_code == 0, res.output
    assert out["metrics"]["lipread_top1"] in (0.0, 1.0) and out["metrics"]["lipread_top5"] in (0.0, 1.0)
    assert out["metrics"]["lipread_top1"] <= out["metrics"]["lipread_top5"]
    assert out["critics"]["lipread"]["lipreader"]["sha256"] == read_card(critic)["sha256"]
    res = CliRunner().invoke(cli, ["score", str(talking_clip), "--metrics", "lipread", "--word", "NOTAWORD", "--json"])
    assert res.exit_code == 1 and "outside" in json.loads(res.output)["errors"]["lipread"]
