"""The results store on its own: a process killed mid-commit leaves a sample either complete or
absent, re-committing never duplicates rows, NaN becomes NULL, and an unwritable store is a typed
error naming the file."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from talkbench.errors import TalkbenchError
from talkbench.store import ResultStore, Row

_KILLER = """
import os, sys
from talkbench.store import ResultStore, Row
store = ResultStore(sys.argv[1], run="r")
store.commit_sample("m", "d", "s0", [Row("m", "d", "s0", "psnr", 30.0)])

def rows():
    yield Row("m", "d", "s1", "psnr", 31.0)
    yield Row("m", "d", "s1", "ssim", 0.9)
    os._exit(9)  # killed half way through the second sample's rows

store.commit_sample("m", "d", "s1", rows())
"""


def test_kill_mid_commit_keeps_whole_samples_only(tmp_path: Path) -> None:
    db = tmp_path / "results.sqlite"
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(db)], cwd=Path(__file__).parents[1])
    assert proc.returncode == 9
    store = ResultStore(db, run="r")
    assert store.is_done("m", "d", "s0") and not store.is_done("m", "d", "s1")
    assert [(r.sample_id, r.metric) for r in store.rows()] == [("s0", "psnr")]
    # the resumed run redoes s1 and s0 again by mistake: still one row per key
    for _ in range(2):
        store.commit_sample("m", "d", "s1", [Row("m", "d", "s1", "psnr", 31.0), Row("m", "d", "s1", "ssim", 0.9)])
    store.commit_sample("m", "d", "s0", [Row("m", "d", "s0", "psnr", 30.0)])
    with sqlite3.connect(db) as c:
        n, distinct = c.execute(
            "SELECT COUNT(*), COUNT(DISTINCT method||dataset||sample_id||metric) FROM results").fetchone()
    assert n == distinct == 3
    assert store.count_done() == 2
    store.close()


def test_nan_is_null_and_errors_are_kept(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results.sqlite", run="r")
    store.commit_sample("m", "d", "s", [Row("m", "d", "s", "lmd", float("nan")),
                                        Row("m", "d", "s", "__generate__", None, "ValueError: boom")])
    with sqlite3.connect(tmp_path / "results.sqlite") as c:
        got = dict(c.execute("SELECT metric, value FROM results").fetchall())
    assert got == {"lmd": None, "__generate__": None}
    df = store.frame()
    assert math.isnan(df.loc[df.metric == "lmd", "value"].item())
    assert df.loc[df.metric == "__generate__", "error"].item() == "ValueError: boom"
    store.close()


def test_unwritable_run_dir_is_a_typed_error(tmp_path: Path) -> None:
    # a regular file where the run directory should be: fails even as root (unlike chmod)
    blocker = tmp_path / "runs"
    blocker.write_text("not a directory")
    with pytest.raises(TalkbenchError) as err:
        ResultStore(blocker / "x" / "results.sqlite")
    assert "results.sqlite" in str(err.value)
