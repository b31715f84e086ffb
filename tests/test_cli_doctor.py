from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from talkbench.cli import cli


def test_help_lists_commands() -> None:
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in ("doctor", "data", "run", "score", "train", "report", "compare"):
        assert name in out


def test_doctor_json_reports_models_and_weights(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "syncnet_v2.model").write_bytes(b"x")
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path))
    res = CliRunner().invoke(cli, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["dlib_models"]["landmarks68"] is True
    assert info["official_weights"]["syncnet_v2.model"] == str(tmp_path / "syncnet_v2.model")
    assert info["official_weights"]["wav2lip.pth"] is None
    assert isinstance(info["espeak"], dict)


def test_data_crop_batch_records_failures(tmp_path: Path, talking_clip: Path) -> None:
    import shutil

    import numpy as np

    from talkbench.io.video import write_video

    shutil.copy(talking_clip, tmp_path / "good.mp4")
    write_video(tmp_path / "noface.mp4", np.full((5, 64, 64, 3), 80, np.uint8), np.zeros(3200, np.float32))
    (tmp_path / "broken.mp4").write_bytes(b"garbage" * 50)
    res = CliRunner().invoke(cli, ["data", "crop", "--dataset", "folder", "--root", str(tmp_path), "--split", "all", "--size", "64"])
    assert res.exit_code == 1
    report = json.loads(res.output[res.output.index("{"):])
    assert report["cropped"] == 1
    failed = dict(map(tuple, report["failed"]))
    assert "no face" in failed["noface"] and "broken.mp4" in failed["broken"]
