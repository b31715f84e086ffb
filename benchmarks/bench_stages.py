"""Where one run's time goes: a per-stage breakdown of ``talkbench.runner.run`` as it runs.

The real run path is timed, not a re-implementation of it: the functions each stage calls (decode,
face detection/tracking, crop, landmarks, audio, every method's ``generate``, every scorer's
``score``, video writing, the generation cache, SQLite commits) are wrapped with timers for the
duration of one run. Times are *exclusive* (a stage's own time, minus the stages it calls), so the
rows add up to the wall time; a stage called from inside another is shown as ``outer > inner``
(``metric:lmd > landmarks`` is the landmark pass over generated frames, ``prepare > landmarks`` the
one over the ground truth).

Caches are off (a fresh crop cache directory, no generation cache): every stage does its work.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any


class StageTimer:
    """Exclusive time per stage path; nested calls are charged to the innermost stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[Any]] = []  # [label, started, child seconds]

    def _key(self, label: str) -> str:
        outer = self._stack[0][0] if self._stack else None
        return label if outer is None or outer == label else f"{outer} > {label}"

    @contextmanager
    def stage(self, label: str) -> Iterator[None]:
        key = self._key(label)
        frame = [label, time.perf_counter(), 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            took = time.perf_counter() - frame[1]
            self.seconds[key] += took - frame[2]
            self.calls[key] += 1
            if self._stack:
                self._stack[-1][2] += took

    def wrap(self, fn: Callable, label: str) -> Callable:
        @functools.wraps(fn)
        def timed(*a: Any, **kw: Any) -> Any:
            with self.stage(label):
                return fn(*a, **kw)

        return timed

    def wrap_iter(self, fn: Callable, label: str) -> Callable:
        """For generator functions (decoding): every ``next`` is charged to ``label``."""

        @functools.wraps(fn)
        def timed(*a: Any, **kw: Any) -> Iterator[Any]:
            it = fn(*a, **kw)
            while True:
                with self.stage(label):
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                yield item

        return timed


@contextmanager
def instrument(timer: StageTimer) -> Iterator[None]:
    """Wrap the run path's stage functions with ``timer`` (restored on exit)."""
    import talkbench.faces.crop as crop
    import talkbench.io.video as video
    import talkbench.runner as runner
    from talkbench.faces.detect import FaceDetector
    from talkbench.faces.landmarks import LandmarkPredictor
    from talkbench.gencache import GenCache
    from talkbench.store import ResultStore

    patches = [
        (crop, "load_clip", timer.wrap, "prepare"),
        (crop, "_stream", timer.wrap_iter, "decode"),
        (crop, "load_audio", timer.wrap, "audio decode"),
        (crop, "track_faces_info", timer.wrap, "detection/tracking"),
        (FaceDetector, "detect", timer.wrap, "face detection"),
        (LandmarkPredictor, "predict", timer.wrap, "landmarks"),
        (crop, "crop_frames", timer.wrap, "crop+resize"),
        (crop, "save_npz_atomic", timer.wrap, "crop cache write"),
        (video, "write_video", timer.wrap, "video writing"),
        (ResultStore, "commit_sample", timer.wrap, "sqlite"),
        (GenCache, "get", timer.wrap, "gen cache"),
        (GenCache, "put", timer.wrap, "gen cache"),
    ]
    build_methods, build_scorers = runner.build_methods, runner.build_scorers

    def methods(*a: Any, **kw: Any) -> Any:
        ms, broken = build_methods(*a, **kw)
        for name, m in ms.items():
            m.generate = timer.wrap(m.generate, f"generate:{name}")
        return ms, broken

    def scorers(*a: Any, **kw: Any) -> Any:
        ss, unavailable = build_scorers(*a, **kw)
        for name, s in ss.items():
            s.score = timer.wrap(s.score, f"metric:{name}")
        return ss, unavailable

    with ExitStack() as stack:
        for owner, name, how, label in patches:
            orig = getattr(owner, name)
            setattr(owner, name, how(orig, label))
            stack.callback(setattr, owner, name, orig)
        runner.build_methods, runner.build_scorers = methods, scorers
        stack.callback(setattr, runner, "build_methods", build_methods)
        stack.callback(setattr, runner, "build_scorers", build_scorers)
        yield


def profile_run(config: Any, workdir: Path) -> tuple[Any, StageTimer]:
    """One serial run of ``config`` with cold caches; returns its summary and the stage times."""
    from talkbench.runner import run

    old = os.environ.get("TALKBENCH_CACHE")
    synth = Path(old or Path.home() / ".cache" / "talkbench") / "synth"
    cache = workdir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    if synth.exists() and not (cache / "synth").exists():
        (cache / "synth").symlink_to(synth)  # the corpus is data, not a cache this profile measures
    os.environ["TALKBENCH_CACHE"] = str(cache)
    timer = StageTimer()
    try:
        with instrument(timer):
            summary = run(config, workdir / "run", progress=False, gen_cache=False)
    finally:
        if old is None:
            os.environ.pop("TALKBENCH_CACHE", None)
        else:
            os.environ["TALKBENCH_CACHE"] = old
    return summary, timer


def table(summary: Any, timer: StageTimer, title: str) -> str:
    """A markdown table: stage, seconds, share of the wall time, ms per sample."""
    wall = summary.seconds
    n = max(summary.samples, 1)
    lines = [f"### {title}", "",
             f"{summary.samples} samples, {summary.pairs_done} (method, sample) pairs, wall {wall:.1f} s "
             f"({n / wall:.3f} samples/s), failures {summary.failures}", "",
             "| stage | calls | seconds | share | ms/sample |", "|---|---:|---:|---:|---:|"]
    accounted = 0.0
    for key, sec in sorted(timer.seconds.items(), key=lambda kv: -kv[1]):
        accounted += sec
        lines.append(f"| {key} | {timer.calls[key]} | {sec:.2f} | {100 * sec / wall:.1f}% | {1000 * sec / n:.0f} |")
    rest = wall - accounted
    lines.append(f"| (rest: planning, loading models, run.json, scheduling) | | {rest:.2f} | {100 * rest / wall:.1f}% | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import argparse

    import torch

    from talkbench.runner import RunConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=6, help="demo samples")
    ap.add_argument("--real", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
                                          / "videos"), help="a folder of real videos ('' to skip)")
    ap.add_argument("--real-limit", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv if argv is not None else [])
    torch.set_num_threads(args.threads)
    demo = RunConfig(methods=("cals", "wav2lip"), dataset="synth-lrs2", split="test", limit=args.limit,
                     metrics=("psnr", "ssim", "lmd", "lse"), device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        s, t = profile_run(demo, Path(tmp) / "demo")
        print(table(s, t, f"demo workload (synth-lrs2 test, cals+wav2lip+gt, psnr/ssim/lmd/lse, {args.limit} samples)"))
    if args.real and Path(args.real).is_dir():
        real = RunConfig(methods=("cals", "wav2lip"), dataset="folder", root=args.real, split="all",
                         limit=args.real_limit, metrics=("psnr", "ssim", "lmd", "lse"), device="cpu")
        with tempfile.TemporaryDirectory() as tmp:
            s, t = profile_run(real, Path(tmp) / "real")
            print()
            print(table(s, t, f"real-video folder ({args.real}, first {args.real_limit} files, same methods/metrics)"))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
