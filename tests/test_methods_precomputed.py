from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from talkbench.cli import cli
from talkbench.io.video import write_video
from talkbench.methods.precomputed import PrecomputedMethod
from talkbench.types import GenRequest, lower_half_masked
from tests.conftest import talking_frames, tone


def test_matching_missing_and_unmatched(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    (out / "vid1").mkdir(parents=True)
    frames = np.random.default_rng(0).integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
    write_video(out / "vid1" / "00001.mp4", frames)
    write_video(out / "vid2_00002.mp4", frames[:7])  # one frame short: padded
    write_video(out / "extra.mp4", frames)
    m = PrecomputedMethod(crop="none")
    m.load(weights=out)
    gt = np.zeros((8, 32, 32, 3), np.uint8)
    reqs = [GenRequest(s, gt[0], lower_half_masked(gt), np.zeros(8 * 640, np.float32)) for s in
            ("vid1/00001", "vid2/00002", "vid3/00003")]
    res = m.generate(reqs)
    assert res[0].ok and res[0].frames.shape == (8, 32, 32, 3)
    assert res[1].ok and np.array_equal(res[1].frames[7], res[1].frames[6])
    assert not res[2].ok and "vid3/00003" in res[2].error
    assert m.report() == {"missing": ["vid3/00003"], "unmatched": ["extra"]}


def test_precomputed_through_the_runner_scores_like_gt(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    ds.mkdir()
    write_video(ds / "a.mp4", talking_frames(12), tone(0.48), codec="pcm")
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "a.mp4").write_bytes((ds / "a.mp4").read_bytes())  # "generated" = the input video
    res = CliRunner().invoke(cli, ["run", "--methods", "precomputed", "--weights", f"precomputed={gen}",
                                   "--dataset", "folder", "--root", str(ds), "--split", "all", "--metrics", "ssim",
                                   "--run-dir", str(tmp_path / "r"), "--no-report"])
    assert res.exit_code == 0, res.output
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as c:
        (ssim,) = c.execute("SELECT value FROM results WHERE method='precomputed' AND metric='ssim'").fetchone()
    assert ssim > 0.99  # same video, same crop pipeline
