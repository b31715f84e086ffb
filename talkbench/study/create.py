"""``talkbench study create``: pick the same samples for every method from finished runs (seeded),
copy their videos under opaque names, and write the study definition."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from talkbench.cache import save_json_atomic, sha256_file
from talkbench.errors import ConfigError, MediaError
from talkbench.results import load_run
from talkbench.study.definition import CRITERIA, FORMAT, SCALE, VERSION, load_study

STAGE_ERRORS = ("__sample__", "__generate__")  # rows that mean "no video was made"


@dataclass(frozen=True)
class StudyConfig:
    runs: tuple[str, ...]
    methods: tuple[str, ...]
    per_dataset: int = 7
    participants: int = 15
    attention_checks: int = 2
    max_attention_failures: int = 0
    require_watch: bool = True
    seed: int = 0
    title: str = "Talking-face video study"


def _candidates(run_dir: Path, methods: tuple[str, ...]) -> tuple[str, dict, list[tuple[str, dict[str, Path]]]]:
    """(dataset, run record, [(sample_id, {method: video})]) for samples with a video of every method."""
    run = load_run(run_dir)
    record, df = run.record, run.frame
    dataset = (record.get("config") or {}).get("dataset")
    if not dataset:
        datasets = sorted(set(df["dataset"]))
        if len(datasets) != 1:
            raise ConfigError(f"run.json names no dataset and the rows hold {datasets or 'none'}", run_dir / "run.json")
        dataset = datasets[0]
    present = set(df["method"])
    absent = [m for m in methods if m not in present]
    if absent:
        raise ConfigError(f"method(s) {', '.join(absent)} not in this run (it has: {', '.join(sorted(present))})",
                          run_dir)
    failed = set(map(tuple, df[df["metric"].isin(STAGE_ERRORS)][["method", "sample_id"]].to_numpy()))
    out = []
    for sid in dict.fromkeys(df["sample_id"]):
        files = {m: run.media(m, sid) for m in methods}
        if all((m, sid) not in failed and f.is_file() for m, f in files.items()):
            out.append((sid, files))
    return dataset, record, out


def _copy_clean(src: Path, dst: Path) -> float:
    """Remux ``src`` (no re-encoding) into ``dst`` without container or stream metadata (so no tag can
    name a method), with the index up front for quick start in browsers. Returns the duration (s)."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        with av.open(str(src)) as inp:
            streams = [s for s in inp.streams if s.type in ("video", "audio")]
            if not any(s.type == "video" for s in streams):
                raise MediaError("no video stream", src)
            with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
                mapping = {}
                for s in streams:
                    o = out.add_stream_from_template(s)
                    o.metadata.clear()
                    mapping[s.index] = o
                for packet in inp.demux(streams):
                    if packet.dts is None:
                        continue
                    packet.stream = mapping[packet.stream.index]
                    out.mux(packet)
            seconds = float(inp.duration / av.time_base) if inp.duration else 0.0
    except av.FFmpegError as exc:
        tmp.unlink(missing_ok=True)
        raise MediaError(f"cannot read the video ({exc})", src) from exc
    os.replace(tmp, dst)
    return seconds


def create_study(config: StudyConfig, out: str | Path, command: str = "") -> Path:
    """Write ``out/study.json``, ``out/videos/*.mp4`` and ``out/admin-token``. Refuses a non-empty ``out``."""
    out = Path(out)
    methods = tuple(dict.fromkeys(config.methods))
    if not methods:
        raise ConfigError("--methods is empty")
    if not config.runs:
        raise ConfigError("--runs is empty")
    if config.per_dataset < 1 or config.participants < 1 or config.attention_checks < 0:
        raise ConfigError("--per-dataset and --participants must be >= 1, --attention-checks >= 0")
    if out.exists() and any(out.iterdir()):
        raise ConfigError("the study folder exists and is not empty (refusing to mix two studies)", out)
    pools: dict[str, list[tuple[str, str, dict[str, Path]]]] = defaultdict(list)
    runs = []
    for r in config.runs:
        run_dir = Path(r)
        dataset, record, cands = _candidates(run_dir, methods)
        runs.append({"path": str(run_dir.resolve()), "dataset": dataset, "git_sha": record.get("git_sha"),
                     "created": record.get("created")})
        pools[dataset] += [(str(run_dir.resolve()), sid, files) for sid, files in cands]
    short = [f"{d}: only {len(pools[d])} sample(s) have a video from every method" for d in sorted(pools)
             if len(pools[d]) < config.per_dataset]
    if short:
        raise ConfigError("; ".join(short) + f" ({', '.join(methods)}); need --per-dataset {config.per_dataset}")
    rng = np.random.default_rng(config.seed)
    samples, chosen = [], []
    for dataset in sorted(pools):
        pool = sorted(pools[dataset], key=lambda x: (x[0], x[1]))
        for i in sorted(rng.choice(len(pool), config.per_dataset, replace=False).tolist()):
            run, sid, files = pool[i]
            samples.append({"dataset": dataset, "sample_id": sid, "run": run})
            chosen.append(files)
    videos_dir = out / "videos"
    videos_dir.mkdir(parents=True, exist_ok=True)
    videos = []
    for s, files in enumerate(chosen):
        for m in methods:
            name = f"videos/{secrets.token_hex(12)}.mp4"
            seconds = _copy_clean(files[m], out / name)
            videos.append({"token": secrets.token_hex(16), "file": name, "method": m, "sample": s,
                           "sha256": sha256_file(out / name), "seconds": seconds})
    checks = []
    for _ in range(config.attention_checks):
        # A check looks like any other video (a seeded pick); only the page's instruction differs.
        src = videos[int(rng.integers(len(videos)))]
        name = f"videos/{secrets.token_hex(12)}.mp4"
        shutil.copyfile(out / src["file"], out / name)
        checks.append({"token": secrets.token_hex(16), "file": name, "answer": int(rng.integers(SCALE[0], SCALE[1] + 1)),
                       "sha256": src["sha256"], "seconds": src["seconds"]})
    definition = {
        "format": FORMAT, "version": VERSION, "title": config.title, "seed": config.seed,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
        "methods": list(methods), "datasets": sorted(pools), "per_dataset": config.per_dataset,
        "participants": config.participants, "max_attention_failures": config.max_attention_failures,
        "require_watch": config.require_watch, "criteria": [c.__dict__ for c in CRITERIA], "scale": list(SCALE),
        "design": "every participant rates every (sample, method) video once; rounds of one video per method "
                  "ordered by a Williams balanced Latin square row (participant + round), seeded sample permutation",
        "runs": runs, "samples": samples, "videos": videos, "attention_checks": checks,
    }
    save_json_atomic(out / "study.json", definition)
    token = out / "admin-token"
    token.write_text(secrets.token_urlsafe(24) + "\n")
    token.chmod(0o600)
    load_study(out)  # the file we wrote must read back
    return out / "study.json"


def study_summary(study_json: Path) -> str:
    d = json.loads(Path(study_json).read_text())
    n = len(d["videos"]) + len(d["attention_checks"])
    return (f"{len(d['samples'])} samples x {len(d['methods'])} methods = {len(d['videos'])} videos "
            f"(+{len(d['attention_checks'])} attention checks): {n} ratings per participant")
