"""The runner end to end on a tiny folder dataset with the reference methods: rows, resume after a
kill, refusal to mix configs, per-item failures, exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from talkbench.cli import cli
from talkbench.errors import ConfigError
from talkbench.io.video import write_video
from talkbench.runner import RunConfig, count_failures, run
from tests.conftest import talking_frames, tone


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    for i, dx in enumerate((0.5, -0.5, 1.0)):
        write_video(root / f"clip{i}.mp4", talking_frames(15, dx=dx), tone(0.6, freq=200 + 50 * i))
    return root


def _config(root: Path, **kw) -> RunConfig:
    base = dict(methods=("static",), dataset="folder", root=str(root), split="all", metrics=("psnr", "ssim"))
    base.update(kw)
    return RunConfig(**base)


def _rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "results.sqlite") as c:
        return c.execute("SELECT method, sample_id, metric, value, error FROM results ORDER BY 1,2,3").fetchall()


def test_rows_and_values(dataset: Path, tmp_path: Path) -> None:
    s = run(_config(dataset), tmp_path / "r", progress=False)
    assert s.samples == 3 and s.pairs_done == 6 and s.failures == 0
    rows = _rows(tmp_path / "r")
    gt_ssim = [r[3] for r in rows if r[0] == "gt" and r[2] == "ssim"]
    assert gt_ssim == [1.0, 1.0, 1.0]
    static = [r for r in rows if r[0] == "static" and r[2] == "psnr"]
    assert all(10 < r[3] < 60 for r in static)
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["metrics"]["psnr"][0]["version"] == "psnr-1" and record["config"]["methods"] == ["gt", "static"]
    assert (tmp_path / "r" / "media" / "static" / "clip0.mp4").exists()


def test_kill_and_resume_loses_nothing_and_redoes_nothing(dataset: Path, tmp_path: Path) -> None:
    seen = []

    def kill_after_first(sample_id: str) -> None:
        seen.append(sample_id)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(_config(dataset), tmp_path / "r", progress=False, on_sample=kill_after_first)
    first = _rows(tmp_path / "r")
    assert {r[1] for r in first} == {"clip0"}
    s = run(_config(dataset), tmp_path / "r", progress=False)
    assert s.pairs_skipped == 2 and s.pairs_done == 4
    rows = _rows(tmp_path / "r")
    assert len(rows) == len({(r[0], r[1], r[2]) for r in rows}) == 3 * 2 * 3  # 3 samples, 2 methods, 3 outputs
    assert [r for r in rows if r[1] == "clip0"] == first  # finished work was not redone


def test_refuses_to_mix_configs(dataset: Path, tmp_path: Path) -> None:
    run(_config(dataset, methods=()), tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="metrics"):
        run(_config(dataset, methods=(), metrics=("psnr",)), tmp_path / "r", progress=False)
    run(_config(dataset, methods=(), limit=1, device="cpu"), tmp_path / "r", progress=False)  # limit may change


def test_failures_are_rows_and_exit_code_1(dataset: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(dataset, root)
    (root / "zz_broken.mp4").write_bytes(b"\x00" * 100)
    write_video(root / "zz_noface.mp4", np.full((10, 96, 96, 3), 60, np.uint8), tone(0.4))
    res = CliRunner().invoke(cli, ["run", "--methods", "static,nosuch", "--dataset", "folder", "--root", str(root),
                                   "--split", "all", "--metrics", "psnr", "--run-dir", str(tmp_path / "r")])
    assert res.exit_code == 2 and "unknown method 'nosuch'" in res.output
    assert not (tmp_path / "r").exists()  # checked before the run directory is created
    res = CliRunner().invoke(cli, ["run", "--methods", "static", "--dataset", "folder", "--root", str(root),
                                   "--split", "all", "--metrics", "psnr", "--run-dir", str(tmp_path / "r"), "--no-report"])
    assert res.exit_code == 1, res.output
    errors = {(r[0], r[1]): r[4] for r in _rows(tmp_path / "r") if r[4]}
    assert "zz_broken.mp4" in errors[("static", "zz_broken")]
    assert "no face" in errors[("gt", "zz_noface")]
    assert count_failures(tmp_path / "r") == 4
    assert sum(1 for r in _rows(tmp_path / "r") if r[2] == "psnr" and r[4] is None) == 6


def test_unavailable_method_is_recorded_not_fatal(dataset: Path, tmp_path: Path) -> None:
    from talkbench.methods import METHODS

    class Broken:
        def __init__(self):
            raise ImportError("weights missing")

    METHODS.register("broken-test", Broken, override=True)
    s = run(_config(dataset, methods=("broken-test",), limit=1), tmp_path / "r", progress=False)
    assert s.failures == 1
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert "weights missing" in record["methods_unavailable"]["broken-test"]


def test_console_exit_code_2_for_configuration_errors(dataset: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "talkbench.cli", "run", "--methods", "statik", "--dataset", "folder",
                          "--root", str(dataset), "--run-dir", str(tmp_path / "r")], capture_output=True, text=True)
    assert out.returncode == 2 and "Did you mean: static" in out.stderr
