"""The three commands chained as a user would: ``run`` (exit 0, report written), ``report`` again
into another folder, ``compare`` of a run with itself (exit 0, nothing flagged) and with a run whose
method is worse (exit 3 under --fail-on-regression)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from talkbench.cli import cli
from talkbench.io.video import write_video
from talkbench.methods.reference import StaticFrame
from tests.conftest import talking_frames, tone


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clids")
    for i, dx in enumerate((0.5, -0.5, 1.0, 0.8, -0.8, 0.3)):
        write_video(root / f"c{i}.mp4", talking_frames(10, dx=dx), tone(0.4, freq=200 + 40 * i))
    return root


class _Noisy(StaticFrame):
    """``static`` plus strong noise: clearly worse PSNR on every sample."""

    def generate(self, requests):
        out = super().generate(requests)
        rng = np.random.default_rng(0)
        return [dataclasses.replace(r, frames=np.clip(r.frames.astype(int) + rng.integers(-60, 61, r.frames.shape),
                                                      0, 255).astype(np.uint8)) for r in out]


def _run(dataset: Path, run_dir: Path, *extra: str):
    return CliRunner().invoke(cli, ["run", "--methods", "static", "--dataset", "folder", "--root", str(dataset),
                                    "--split", "all", "--metrics", "psnr", "--device", "cpu", "--crop", "none",
                                    "--run-dir", str(run_dir), *extra])


def test_run_report_compare(dataset: Path, tmp_path: Path) -> None:
    res = _run(dataset, tmp_path / "a")
    assert res.exit_code == 0, res.output
    html = (tmp_path / "a" / "report" / "index.html").read_text()
    assert "<table" in html and "static" in html
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "a"), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep" / "index.html").exists() and (tmp_path / "rep" / "table.csv").exists()

    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--fail-on-regression"])
    assert res.exit_code == 0, res.output
    assert "|" in res.output  # the Markdown table

    from talkbench.methods import METHODS

    original = METHODS.get("static")
    METHODS.register("static", _Noisy, override=True)
    try:
        res = _run(dataset, tmp_path / "b", "--no-report")
        assert res.exit_code == 0, res.output
    finally:
        METHODS.register("static", original, override=True)
    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--metrics", "psnr",
                                   "--fail-on-regression"])
    assert res.exit_code == 3, res.output
    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--metrics", "psnr"])
    assert res.exit_code == 0, res.output
