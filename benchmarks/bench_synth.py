"""Synthetic corpus throughput for synth-lrs2 and synth-lrw.

Prints clips/s of a full build (worker processes, encoding and sidecars included), the share of one
clip's time spent in speech, rendering and encoding (measured in the same run, single process), and
the ratio against the issue's target (a 200-clip synth-lrs2 test split in about 60 s).
Run: ``python -m benchmarks.bench_synth``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_S_PER_200 = 60.0


def _stages(corpus: str, n: int = 3) -> dict[str, float]:
    from talkbench.datasets.synth import corpus as c
    from talkbench.datasets.synth.speech import synthesize
    from talkbench.io.video import write_video

    spec, vocab = c.SPECS[corpus], c.load_vocabulary()
    out = {"speech": 0.0, "render": 0.0, "encode": 0.0}
    with tempfile.TemporaryDirectory() as d:
        for i in range(n):
            plan = c._clip_plan(spec, "test", i, 0, vocab)
            t0 = time.perf_counter()
            synthesize(plan["text"], plan["voice"], plan["rate"], plan["pitch"], c.SR)
            t1 = time.perf_counter()
            clip = c.render_clip(spec, plan, 0)  # includes a second synthesis: subtract it below
            t2 = time.perf_counter()
            write_video(Path(d) / f"{i}.mp4", clip["frames"], clip["audio"], c.FPS, c.SR, codec="pcm")
            t3 = time.perf_counter()
            out["speech"] += (t1 - t0) / n
            out["render"] += max(0.0, (t2 - t1) - (t1 - t0)) / n
            out["encode"] += (t3 - t2) / n
    return out


def main(clips: int = 20) -> None:
    from talkbench.datasets.synth.corpus import build_corpus

    for corpus in ("synth-lrs2", "synth-lrw"):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            root = build_corpus(corpus, Path(d) / "c", clips=clips, splits=("test",), progress=False)
            dt = time.perf_counter() - t0
            size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        stages = _stages(corpus)
        total = float(np.sum(list(stages.values())))
        shares = ", ".join(f"{k} {v:.2f} s ({v / total:.0%})" for k, v in stages.items())
        print(f"{corpus}: {clips} clips in {dt:.1f} s = {clips / dt:.2f} clips/s; {size / clips / 1024:.0f} KiB/clip; "
              f"one clip single-process: {shares}")
        if corpus == "synth-lrs2":
            est = 200 / (clips / dt)
            print(f"  200-clip test split ~{est:.0f} s = {est / TARGET_S_PER_200:.2f}x the {TARGET_S_PER_200:.0f} s target")


if __name__ == "__main__":
    main()
