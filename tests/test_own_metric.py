"""The worked example of docs/own-metric.md, executed: the code block defines a scorer, one registry
line adds it, and `talkbench run` / `talkbench score` (through the CLI) compute it as the independent
numpy formula does."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from talkbench.cli import cli
from talkbench.io.video import read_video, write_video
from talkbench.metrics import METRICS
from tests.conftest import talking_frames, tone

DOC = Path(__file__).resolve().parents[1] / "docs" / "own-metric.md"


def _register() -> None:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    METRICS.register("flicker", namespace["FlickerScorer"], override=True)


def _expected(frames: np.ndarray) -> float:
    total = sum(np.abs(frames[t + 1].astype(float) - frames[t].astype(float)).sum() for t in range(len(frames) - 1))
    return total / ((len(frames) - 1) * frames[0].size)


def test_worked_metric_runs_in_run_and_score(tmp_path: Path) -> None:
    _register()
    root = tmp_path / "ds"
    root.mkdir()
    write_video(root / "a.mp4", talking_frames(12, size=128, dx=3.0), tone(0.48))  # 128: no resize by score
    res = CliRunner().invoke(cli, ["run", "--methods", "static", "--dataset", "folder", "--root", str(root),
                                   "--split", "all", "--metrics", "flicker", "--run-dir", str(tmp_path / "r"),
                                   "--no-report"])
    assert res.exit_code == 0, res.output
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as c:
        vals = dict(c.execute("SELECT method, value FROM results WHERE metric='flicker'").fetchall())
    assert vals["static"] == 0.0  # the reference frame repeated does not flicker
    assert vals["gt"] > 1.0
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["metrics"]["flicker"][0]["version"] == "flicker-1"

    res = CliRunner().invoke(cli, ["score", str(root / "a.mp4"), "--metrics", "flicker", "--crop", "none", "--json"])
    assert res.exit_code == 0, res.output
    frames = read_video(root / "a.mp4")
    assert json.loads(res.output)["metrics"]["flicker"] == __import__("pytest").approx(_expected(frames), rel=1e-9)
