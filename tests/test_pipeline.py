"""The pipelined local executor gives the serial path's rows, value for value, for every method and
metric; a preparation worker killed mid-run loses and doubles nothing; Ctrl-C stops cleanly and the
same command resumes to the same rows; the CLI flags."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from talkbench.cli import cli
from talkbench.errors import ConfigError
from talkbench.io.video import write_video
from talkbench.pipeline import _drop_pool, make_pool, open_pools
from talkbench.runner import RunConfig, run
from tests.conftest import talking_frames, tone


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pipe")
    for i, dx in enumerate((0.5, -0.5, 1.0, 0.0, -1.0)):
        write_video(root / f"clip{i}.mp4", talking_frames(12, dx=dx), tone(0.48, freq=200 + 40 * i))
    (root / "zz_broken.mp4").write_bytes(b"\x00" * 100)  # a per-item failure, in both executors
    return root


def _config(root: Path, **kw) -> RunConfig:
    base = dict(methods=("static", "static@mask=2"), dataset="folder", root=str(root), split="all",
                metrics=("psnr", "ssim", "lmd"))
    base.update(kw)
    return RunConfig(**base)


def _rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "results.sqlite") as c:
        return c.execute("SELECT method, sample_id, metric, value, error FROM results ORDER BY 1,2,3").fetchall()


def _done(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "results.sqlite") as c:
        return c.execute("SELECT method, sample_id FROM done ORDER BY 1,2").fetchall()


@pytest.fixture(scope="module")
def serial(dataset: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serial") / "r"
    s = run(_config(dataset), out, progress=False, workers=0, gen_cache=False)
    assert s.samples == 6 and s.pairs_done == 15 and s.failures == 3
    return out


def _children() -> set[int]:
    return {c.pid for c in multiprocessing.active_children()}


def test_pipelined_rows_equal_serial(dataset: Path, serial: Path, tmp_path: Path) -> None:
    before = _children()
    s = run(_config(dataset), tmp_path / "p", progress=False, workers=2, batch_sizes={"static": 2},
            gen_cache=False)
    assert (s.samples, s.pairs_done, s.failures) == (6, 15, 3)
    rows = _rows(tmp_path / "p")
    assert rows == _rows(serial)  # same rows, same values, same errors
    assert {r[2] for r in rows} >= {"psnr", "ssim", "lmd"} and any(r[4] for r in rows)
    assert _done(tmp_path / "p") == _done(serial)
    # No worker process outlives the run (a leftover one makes the interpreter wait for it at exit).
    assert _children() <= before
    assert open_pools() == []
    for m in ("gt", "static", "static@mask=2"):
        assert (tmp_path / "p" / "media" / m / "clip3.mp4").exists() or m == "static@mask=2"


def test_a_pool_left_open_is_named_by_its_test() -> None:
    # The conftest prints open_pools() at session end: a leak then names the test that made it.
    pool = make_pool(1)
    try:
        assert any("test_a_pool_left_open_is_named_by_its_test" in o for o in open_pools())
    finally:
        _drop_pool(pool)
    assert not any("test_a_pool_left_open_is_named_by_its_test" in o for o in open_pools())


def test_dropping_a_pool_ends_a_manager_thread_stuck_on_half_a_result() -> None:
    """A worker killed while writing its result leaves half a message in the result pipe; the pool's
    manager thread then waits in recv() forever, and the interpreter waited for it at exit."""
    import struct

    pool = make_pool(1)
    manager = writer = None
    try:
        assert pool.submit(abs, -3).result(timeout=60) == 3
        manager = pool._executor_manager_thread
        writer = pool._result_queue._writer
        os.write(writer.fileno(), struct.pack("!i", 100) + b"x" * 10)  # a 100-byte message, 10 bytes of it
        time.sleep(0.5)
        assert manager.is_alive()
        _drop_pool(pool, grace=2.0)
        manager.join(timeout=10)
        assert not manager.is_alive()
    finally:
        if manager is not None and manager.is_alive():  # the old behaviour: unblock it so the session can end
            writer.close()
            manager.join(timeout=10)


def test_killed_worker_loses_and_doubles_nothing(dataset: Path, serial: Path, tmp_path: Path) -> None:
    killed = []
    before = _children()

    def kill_a_worker(sample_id: str) -> None:
        if killed:
            return
        for child in multiprocessing.active_children():
            if "talkbench-writer" not in child.name:
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)
                break

    s = run(_config(dataset), tmp_path / "k", progress=False, workers=1, batch_sizes={"*": 1},
            gen_cache=False, on_sample=kill_a_worker)
    assert killed, "no worker process was running"
    assert _children() <= before  # the dead worker's pool and its replacement are both gone
    assert open_pools() == []
    assert (s.samples, s.pairs_done, s.failures) == (6, 15, 3)
    assert _rows(tmp_path / "k") == _rows(serial)
    assert _done(tmp_path / "k") == _done(serial)


def test_ctrl_c_stops_cleanly_and_resumes(dataset: Path, serial: Path, tmp_path: Path) -> None:
    def interrupt(sample_id: str) -> None:
        raise KeyboardInterrupt

    before = _children()
    with pytest.raises(KeyboardInterrupt):
        run(_config(dataset), tmp_path / "c", progress=False, workers=1, batch_sizes={"*": 1},
            gen_cache=False, on_sample=interrupt)
    assert _children() <= before
    first = _rows(tmp_path / "c")
    # only what was scored before the stop is committed (pairs whose scoring had not started are not)
    assert {r[1] for r in first} <= {"clip0"}
    done_before = len(_done(tmp_path / "c"))
    s = run(_config(dataset), tmp_path / "c", progress=False, workers=1, gen_cache=False)
    assert s.pairs_skipped == done_before and s.pairs_done == 15 - done_before
    assert _rows(tmp_path / "c") == _rows(serial)


def test_cli_flags(dataset: Path, serial: Path, tmp_path: Path) -> None:
    args = ["run", "--methods", "static,static@mask=2", "--dataset", "folder", "--root", str(dataset), "--split",
            "all", "--metrics", "psnr,ssim,lmd", "--no-report", "--no-gen-cache"]
    res = CliRunner().invoke(cli, [*args, "--run-dir", str(tmp_path / "a"), "--batch-size", "static=0"])
    assert res.exit_code == 2 and "static=0" in res.output and not (tmp_path / "a").exists()
    res = CliRunner().invoke(cli, [*args, "--run-dir", str(tmp_path / "a"), "--batch-size", "static3"])
    assert res.exit_code == 2 and "METHOD=B" in res.output
    res = CliRunner().invoke(cli, [*args, "--run-dir", str(tmp_path / "a"), "--workers", "2", "--batch-size",
                                   "static=3"])
    assert res.exit_code == 1, res.output  # the broken file: one failed item, recorded
    assert _rows(tmp_path / "a") == _rows(serial)
    with pytest.raises(ConfigError, match="wav2lip"):
        run(_config(dataset), tmp_path / "b", progress=False, workers=1, batch_sizes={"wav2lip": 2})


def test_generation_batches_span_samples(dataset: Path, tmp_path: Path) -> None:
    from talkbench.methods import METHODS
    from talkbench.methods.base import Method
    from talkbench.types import GenResult, MethodCard

    sizes: list[int] = []

    class Batched(Method):
        card = MethodCard(name="batched-test", version="1", native_size=0)

        def load(self, device: str = "cpu", weights=None) -> None:
            pass

        def generate(self, requests):
            sizes.append(len(requests))
            return [GenResult(r.sample_id, np.repeat(r.reference[None], r.num_frames, 0)) for r in requests]

    METHODS.register("batched-test", Batched, override=True)
    run(_config(dataset, methods=("batched-test",), metrics=("psnr",)), tmp_path / "b", progress=False, workers=1,
        batch_sizes={"*": 3}, gen_cache=False)
    assert sorted(sizes, reverse=True) == [3, 2]  # 5 decodable clips in batches of 3


@pytest.mark.slow
def test_pipelined_lse_equals_serial(dataset: Path, tmp_path: Path) -> None:
    """The critics run in the workers (their own copies, one thread each): the same LSE values."""
    cfg = _config(dataset, methods=("static",), metrics=("psnr", "lse"), limit=2, allow_synthetic_critics=True)
    run(cfg, tmp_path / "s", progress=False, workers=0, gen_cache=False)
    run(cfg, tmp_path / "p", progress=False, workers=2, gen_cache=False)
    rows = _rows(tmp_path / "p")
    assert {r[2] for r in rows} >= {"lse_c", "lse_d", "av_offset"} and not any(r[4] for r in rows)
    assert rows == _rows(tmp_path / "s")
