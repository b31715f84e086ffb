"""Executors side by side (issue 17's must-show), measured in one invocation:

- samples/s on the demo workload (synth-lrs2 test; cals, wav2lip, gt; psnr, ssim, lmd, lse) for the
  serial path (``--workers 0``), the pipelined local executor (default workers) and Ray on a local
  instance, each with a cold generation cache and a cold crop cache (a fresh cache folder; the
  corpus itself is shared), and whether the three stores hold the same rows;
- peak memory (max RSS of the main process; peak of the summed RSS of its whole process tree, polled
  every 0.5 s) of a pipelined run over 100
  and over 1,000 tiny samples (``static`` + ``gt``, PSNR, ``--crop none``: cheap, so the number of
  samples is what varies).

Every run is a fresh subprocess, so peak RSS is its own. ``python -m benchmarks.bench_throughput
[--samples 24] [--memory 100,1000] [--skip-ray]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _child(args: argparse.Namespace) -> None:
    """One run in this (fresh) process; prints a JSON line."""
    from talkbench.gencache import GenCache
    from talkbench.runner import RunConfig, run

    if args.kind == "demo":
        cfg = RunConfig(methods=("cals", "wav2lip"), dataset="synth-lrs2", split="test", limit=args.n,
                        metrics=("psnr", "ssim", "lmd", "lse"), device="cpu")
    else:
        cfg = RunConfig(methods=("static",), dataset="folder", root=args.root, split="all", limit=args.n,
                        metrics=("psnr",), crop="none", device="cpu")
    kw: dict = {"workers": None}
    if args.executor == "serial":
        kw = {"workers": 0}
    elif args.executor == "ray":
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        kw = {"executor": "ray"}
    t0 = time.perf_counter()
    s = run(cfg, args.run_dir, progress=False, gen_cache=GenCache(root=Path(args.run_dir).parent / "gencache"), **kw)
    wall = time.perf_counter() - t0
    if args.executor == "ray":
        import ray

        ray.shutdown()
    print(json.dumps({"samples": s.samples, "pairs": s.pairs_done, "failures": s.failures, "wall_s": wall,
                      "samples_per_s": s.samples / wall,
                      "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "rss_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))


def _spawn(kind: str, executor: str, n: int, run_dir: Path, cache: Path, root: str | None = None) -> dict:
    env = {**os.environ, "TALKBENCH_CACHE": str(cache), "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "benchmarks.bench_throughput", "--child", kind, "--executor", executor, "--n", str(n),
           "--run-dir", str(run_dir)] + (["--root", root] if root else [])
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=so, stderr=se, text=True)
        peak_tree = 0.0
        while proc.poll() is None:
            peak_tree = max(peak_tree, _tree_rss_mb(proc.pid))
            time.sleep(0.5)
        so.seek(0)
        se.seek(0)
        stdout, stderr = so.read(), se.read()
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{kind}/{executor} failed ({proc.returncode}): {stderr[-2000:]}")
    return {**json.loads(lines[-1]), "peak_tree_rss_mb": peak_tree}


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants now (Linux /proc), in MiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d.name))
            for line in (d / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[int(d.name)] = int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total


def _rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "results.sqlite") as c:
        return c.execute("SELECT method, sample_id, metric, value, error FROM results ORDER BY 1,2,3").fetchall()


def _fresh_cache(tmp: Path, name: str) -> Path:
    cache = tmp / name
    cache.mkdir()
    corpus = Path(os.environ.get("TALKBENCH_CACHE") or Path.home() / ".cache" / "talkbench") / "synth"
    corpus.mkdir(parents=True, exist_ok=True)  # a fresh machine: the link must not dangle
    (cache / "synth").symlink_to(corpus)  # the corpus is data; crops and generations start cold
    return cache


def _tiny_clips(root: Path, n: int) -> None:
    import numpy as np

    from talkbench.io.video import write_video

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    audio = (0.2 * np.sin(np.arange(6400) / 16000 * 2 * np.pi * 180)).astype(np.float32)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if not (root / f"c{i:05d}.mp4").exists():
            write_video(root / f"c{i:05d}.mp4", np.stack([np.roll(base, i + k, axis=1) for k in range(10)]), audio)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=24, help="demo samples (0: skip the executor comparison)")
    ap.add_argument("--memory", default="100,1000")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--child", default=None)
    ap.add_argument("--executor", default="pipelined")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--root", default=None)
    args = ap.parse_args(argv)
    if args.child:
        args.kind = args.child
        _child(args)
        return
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()}", flush=True)
    if args.samples:
        from talkbench.datasets.synth.corpus import ensure_first_clips

        ensure_first_clips("test", args.samples, progress=False)  # data, not part of any executor's time
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {}
        for ex in ("serial", "pipelined", *(() if args.skip_ray else ("ray",))) if args.samples else ():
            cache = _fresh_cache(tmp, f"cache-{ex}")
            results[ex] = _spawn("demo", ex, args.samples, tmp / ex / "run", cache)
            print(f"demo {ex}: {json.dumps(results[ex])}  load {os.getloadavg()[0]:.1f}", flush=True)
        base = _rows(tmp / "serial" / "run") if results else []
        for ex, res in results.items():
            same = _rows(tmp / ex / "run") == base
            print(f"| {ex} | {res['samples']} | {res['wall_s']:.1f} | {res['samples_per_s']:.3f} | "
                  f"{res['samples_per_s'] / results['serial']['samples_per_s']:.2f}x | "
                  f"{'same rows' if same else 'ROWS DIFFER'} |", flush=True)
        if args.memory:
            sizes = [int(x) for x in args.memory.split(",")]
            clips = tmp / "tiny"
            _tiny_clips(clips, max(sizes))
            for n in sizes:
                cache = _fresh_cache(tmp, f"cache-mem{n}")
                res = _spawn("tiny", "pipelined", n, tmp / f"mem{n}" / "run", cache, root=str(clips))
                print(f"| {n} | {res['wall_s']:.1f} | {res['rss_main_mb']:.0f} | {res['peak_tree_rss_mb']:.0f} | "
                      f"failures {res['failures']} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
