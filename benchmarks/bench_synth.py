"""Synthetic corpus throughput: clips/s and disk per clip for synth-lrs2 (2 worker processes).
Run: ``python -m benchmarks.bench_synth``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def main(clips: int = 20) -> None:
    from talkbench.datasets.synth.corpus import build_corpus

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        root = build_corpus("synth-lrs2", Path(d) / "c", clips=clips, splits=("test",), progress=False)
        dt = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"synth-lrs2: {clips} clips in {dt:.1f} s = {clips / dt:.2f} clips/s "
              f"(200-clip test split ~{200 / (clips / dt):.0f} s); {size / clips / 1024:.0f} KiB per clip")


if __name__ == "__main__":
    main()
