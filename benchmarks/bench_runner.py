"""Runner throughput, store memory and report time.

Prints, from one process on whatever machine runs it:
- end to end ``run`` (static + gt, PSNR/SSIM, crop none) on a few tiny clips: samples/s, and its
  ratio to a decode-only pass over the same files (the floor any run pays);
- peak Python heap while streaming rows for 100 and for 1000 samples into a store (constant in the
  number of samples: the ratio should stay near 1, not near 10);
- ``build_report`` time on the 1000-sample store.

``python -m benchmarks.bench_runner`` (``--clips N`` for more clips). ``--stages``: instead, the
per-stage breakdown of a run (:mod:`benchmarks.bench_stages`); the executors side by side:
:mod:`benchmarks.bench_throughput`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def _clips(root: Path, n: int, frames: int = 25, size: int = 96) -> None:
    from talkbench.io.video import write_video

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    t = np.arange(16000 * frames // 25) / 16000
    for i in range(n):
        video = np.stack([np.roll(base, k + i, axis=1) for k in range(frames)])
        write_video(root / f"clip{i:03d}.mp4", video, (0.3 * np.sin(2 * np.pi * (150 + 10 * i) * t)).astype(np.float32))


def _stream_rows(db: Path, samples: int, metrics: int = 6) -> int:
    from talkbench.store import ResultStore, Row

    store = ResultStore(db, run="bench")
    tracemalloc.start()
    for s in range(samples):
        sid = f"s{s:05d}"
        for m in ("gt", "static", "cals"):
            store.commit_sample(m, "d", sid, [Row(m, "d", sid, f"metric{k}", float(s % 7 + k)) for k in range(metrics)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    store.close()
    return peak


def main(argv: list[str] | None = None) -> None:
    """Measure and print (see the module docstring)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--stages", action="store_true", help="per-stage breakdown (benchmarks.bench_stages)")
    args, rest = ap.parse_known_args(argv if argv is not None else [])
    if args.stages:
        from benchmarks.bench_stages import main as stages

        stages(rest)
        return
    from talkbench.io.video import read_video
    from talkbench.runner import RunConfig, run

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "ds").mkdir()
        _clips(tmp / "ds", args.clips)
        t0 = time.perf_counter()
        for p in sorted((tmp / "ds").glob("*.mp4")):
            read_video(p)
        decode = time.perf_counter() - t0
        cfg = RunConfig(methods=("static",), dataset="folder", root=str(tmp / "ds"), split="all",
                        metrics=("psnr", "ssim"), crop="none", device="cpu")
        summary = run(cfg, tmp / "run", progress=False)
        print(f"run: {summary.samples} samples x 2 methods in {summary.seconds:.2f} s = "
              f"{summary.samples / summary.seconds:.2f} samples/s; {summary.seconds / max(decode, 1e-9):.1f}x a "
              f"decode-only pass ({decode:.2f} s); failures {summary.failures}")

        small = _stream_rows(tmp / "small.sqlite", 100)
        big = _stream_rows(tmp / "big.sqlite", 1000)
        print(f"store peak heap: 100 samples {small / 1e3:.0f} kB, 1000 samples {big / 1e3:.0f} kB, "
              f"ratio {big / small:.2f} (constant memory -> ~1, per-sample growth -> ~10)")

        from talkbench.report.html import build_report

        big_dir = tmp / "bigrun"
        big_dir.mkdir()
        (tmp / "big.sqlite").rename(big_dir / "results.sqlite")
        (big_dir / "run.json").write_text("{}")
        t0 = time.perf_counter()
        try:
            build_report(big_dir)
            print(f"report for 3 methods x 1000 samples x 6 metrics: {time.perf_counter() - t0:.1f} s")
        except Exception as exc:  # the report wants a run record; say so rather than hide the number
            print(f"report on the synthetic store failed: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
