"""The worked example of docs/own-method.md, executed: extract the code block, register the method,
run it through the runner next to `static`."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from talkbench.io.video import write_video
from talkbench.methods import METHODS
from talkbench.runner import RunConfig, run
from tests.conftest import talking_frames, tone

DOC = Path(__file__).resolve().parents[1] / "docs" / "own-method.md"


def test_worked_example_runs(tmp_path: Path) -> None:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    METHODS.register("loudness", namespace["MouthFromLoudness"], override=True)
    root = tmp_path / "ds"
    root.mkdir()
    write_video(root / "a.mp4", talking_frames(10), tone(0.4))
    s = run(RunConfig(methods=("loudness", "static"), dataset="folder", root=str(root), split="all",
                      metrics=("ssim",)), tmp_path / "r", progress=False)
    assert s.failures == 0 and s.pairs_done == 3
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as c:
        vals = dict(c.execute("SELECT method, value FROM results WHERE metric='ssim'").fetchall())
    assert vals["loudness"] < vals["static"] <= 1.0  # the drawn mouth changes the frames


def test_entry_point_group_is_read(monkeypatch) -> None:
    from importlib.metadata import EntryPoint

    from talkbench.registry import Registry

    reg = Registry("method", entry_point_group="talkbench.methods")
    ep = EntryPoint(name="plugged", value="talkbench.methods.reference:StaticFrame", group="talkbench.methods")
    monkeypatch.setattr("talkbench.registry.entry_points", lambda group: [ep] if group == "talkbench.methods" else [])
    assert "plugged" in reg.names()
    assert reg.get("plugged").__name__ == "StaticFrame"
