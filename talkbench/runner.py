"""``talkbench run`` as a library call: plan -> crops (cached) -> generate -> score -> store.

Every (method, sample) is committed to the store with its rows in one transaction, so a run killed at
any moment resumes with the same command: finished pairs are skipped, none is duplicated. Peak memory
is one sample's frames: rows stream to SQLite.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from talkbench.cache import save_json_atomic
from talkbench.conditions import mask_span_frames, parse_method_spec
from talkbench.errors import ConfigError, TalkbenchError
from talkbench.gencache import GenCache
from talkbench.results import media_path
from talkbench.store import ResultStore, Row
from talkbench.types import PROTOCOL_FPS, PROTOCOL_SIZE, PROTOCOL_SR, GenRequest, GenResult, lower_half_masked

log = logging.getLogger(__name__)
DEFAULT_METRICS = ("psnr", "ssim", "lmd", "lse", "lipread")
PACKAGES = ("talkbench", "torch", "numpy", "scipy", "av", "dlib-bin", "opencv-python-headless", "safetensors")


@dataclass(frozen=True)
class RunConfig:
    """What a run evaluates. ``identity()`` (everything but limit and device) must match to resume."""

    methods: tuple[str, ...]
    dataset: str = "synth-lrs2"
    root: str | None = None
    split: str = "test"
    metrics: tuple[str, ...] = DEFAULT_METRICS
    weights: tuple[tuple[str, str], ...] = ()
    limit: int | None = None
    device: str = "auto"
    size: int = PROTOCOL_SIZE
    crop: str = "auto"
    include_gt: bool = True
    seed: int = 0
    metric_options: tuple[tuple[str, str, Any], ...] = field(default_factory=tuple)

    @property
    def all_methods(self) -> tuple[str, ...]:
        ms = tuple(dict.fromkeys(self.methods))
        return ("gt", *(m for m in ms if m != "gt")) if self.include_gt else ms

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("limit")
        d.pop("device")
        d["root"] = str(Path(d["root"]).resolve()) if d["root"] else None
        d["methods"] = list(self.all_methods)
        d["metrics"] = list(self.metrics)
        d["weights"] = {m: str(Path(p).resolve()) for m, p in self.weights}
        d["metric_options"] = [list(x) for x in self.metric_options]
        return json.loads(json.dumps(d, default=str))


@dataclass
class RunSummary:
    run_dir: Path
    samples: int = 0
    pairs_done: int = 0
    pairs_skipped: int = 0
    failures: int = 0
    seconds: float = 0.0


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} requested but CUDA is not available")
    return device


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str | None]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def _check_run_dir(run_dir: Path, config: RunConfig) -> dict[str, Any] | None:
    path = run_dir / "run.json"
    if not path.exists():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"unreadable run.json ({exc})", path) from exc
    mine = config.identity()
    theirs = old.get("config", {})
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if diff:
        detail = "; ".join(f"{k}: {theirs.get(k)!r} there vs {mine.get(k)!r} now" for k in diff)
        raise ConfigError(f"run directory holds a run with a different config (refusing to mix): {detail}", run_dir)
    return old


def build_methods(config: RunConfig, device: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Instantiate and load every method; a method that fails to load is recorded, not fatal."""
    from talkbench.methods import METHODS

    weights = dict(config.weights)
    bases = list(dict.fromkeys(parse_method_spec(m).base for m in config.all_methods))
    for name in weights:
        if name not in bases:
            raise ConfigError(f"--weights names method {name!r}, which is not in --methods")
    methods, broken = {}, {}
    for name in bases:
        try:
            entry = METHODS.get(name)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from exc
        except (ImportError, AttributeError) as exc:  # registered, but its package is not installed/built yet
            broken[name] = f"{type(exc).__name__}: {exc}"
            log.warning("method %s unavailable: %s", name, broken[name])
            continue
        try:
            m = entry()
            m.load(device=device, weights=weights.get(name))
            methods[name] = m
        except Exception as exc:  # a missing module or bad weights: recorded per sample, run goes on
            broken[name] = f"{type(exc).__name__}: {exc}"
            log.warning("method %s unavailable: %s", name, broken[name])
    return methods, broken


def build_scorers(config: RunConfig, device: str) -> tuple[dict[str, Any], dict[str, str]]:
    from talkbench.metrics import build_scorers as build

    options: dict[str, dict[str, Any]] = {}
    for metric, key, value in config.metric_options:
        options.setdefault(metric, {})[key] = value
    return build(config.metrics, device, options)


def score_rows(scorers: dict[str, Any], item: Any, method: str, dataset: str, sample_id: str) -> list[Row]:
    """One sample's rows from every scorer. A scorer whose declared inputs (``requires``) the item lacks
    writes no row (e.g. lip reading on a sentence dataset: the run record says so); a failure is a row
    with the error, never an exception."""
    from talkbench.metrics.base import missing_inputs

    rows = []
    for scorer in scorers.values():
        if missing_inputs(scorer, item):
            continue
        try:
            values = scorer.score(item)
            rows.extend(Row(method, dataset, sample_id, k, float(v)) for k, v in values.items())
        except TalkbenchError as exc:
            rows.extend(Row(method, dataset, sample_id, info.name, math.nan, exc.reason) for info in scorer.outputs)
        except Exception as exc:  # a scorer bug must not end the run; it is recorded with its type
            rows.extend(Row(method, dataset, sample_id, info.name, math.nan, f"{type(exc).__name__}: {exc}")
                        for info in scorer.outputs)
    return rows


@dataclass
class _Run:
    """What the steps of one run share: the loaded methods and scorers, the store, the record."""

    config: RunConfig
    run_dir: Path
    device: str
    methods: dict[str, Any]
    broken: dict[str, str]
    scorers: dict[str, Any]
    record: dict[str, Any]
    gen_cache: GenCache
    store: ResultStore
    summary: RunSummary

    @property
    def protocol(self) -> dict[str, Any]:
        return {"size": self.config.size, "crop": self.config.crop, "device": self.device.split(":")[0]}

    def fail(self, method: str, sample_id: str, marker: str, why: str) -> None:
        """Record one (method, sample) as failed at ``marker`` (``__sample__`` / ``__generate__``)."""
        self.store.commit_sample(method, self.config.dataset, sample_id,
                                 [Row(method, self.config.dataset, sample_id, marker, None, why)])
        self.summary.failures += 1


def _open(config: RunConfig, run_dir: Path, gen_cache: bool | GenCache | None) -> tuple[_Run, Any]:
    """Check the run directory, load the dataset reader, methods and scorers, write the first run.json."""
    from talkbench.datasets import DATASETS

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the run directory ({exc})", run_dir) from exc
    previous = _check_run_dir(run_dir, config)
    device = resolve_device(config.device)
    try:
        reader_cls = DATASETS.get(config.dataset)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from exc
    reader = reader_cls(config.root)
    methods, broken = build_methods(config, device)
    scorers, unavailable = build_scorers(config, device)
    record = {
        "config": config.identity(),
        "created": (previous or {}).get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_sha": _git_sha(),
        "packages": _versions(),
        "device": device,
        "methods": {n: {"card": asdict(m.card), "weights": m.weights_info()} for n, m in methods.items()},
        "conditions": {m: {"context_frames": s.context, "mask_span": s.mask_span}
                       for m in config.all_methods if (s := parse_method_spec(m)).needs},
        "methods_unavailable": broken,
        "metrics": {n: [asdict(i) for i in s.outputs] for n, s in scorers.items()},
        "metrics_unavailable": unavailable,
        "critics": {n: s.provenance() for n, s in scorers.items() if s.provenance()},
        "protocol": {"crop": config.crop, "size": config.size, "fps": int(PROTOCOL_FPS), "sample_rate": PROTOCOL_SR,
                     "reference_frame": "first frame", "pose_prior": "target frames, lower half zeroed"},
    }
    if not isinstance(gen_cache, GenCache):
        on = gen_cache if gen_cache is not None else os.environ.get("TALKBENCH_GEN_CACHE", "1") not in ("0", "off", "no")
        gen_cache = GenCache(enabled=bool(on))
    record["gen_cache"] = gen_cache.record()
    save_json_atomic(run_dir / "run.json", record)
    store = ResultStore(run_dir / "results.sqlite", run=run_dir.name)
    return _Run(config, run_dir, device, methods, broken, scorers, record, gen_cache, store, RunSummary(run_dir)), reader


def _plan(config: RunConfig, reader: Any) -> list[Any]:
    """The samples of the split, up to ``limit`` (paths only; knowing the total gives every bar an ETA)."""
    samples = reader.samples(config.split)
    if config.limit is not None:
        return samples[: config.limit] if isinstance(samples, list) else list(itertools.islice(samples, config.limit))
    return list(samples)


def _unsupported(r: _Run, spec: Any) -> str | None:
    """Why ``spec`` cannot run (its method failed to load, or cannot honour a condition), else None."""
    if spec.base in r.broken:
        return f"method unavailable: {r.broken[spec.base]}"
    card = r.methods[spec.base].card
    missing = [c for c in spec.needs if c not in card.supports]
    if missing:
        return f"{spec.base} cannot honour the {'/'.join(missing)} condition (card.supports={card.supports})"
    return None


def _generate(r: _Run, spec: Any, request: GenRequest, clip: Any) -> tuple[GenResult | None, str | None]:
    """Frames for one (method spec, sample): from the generation cache, else from the method; a result
    of the wrong shape or dtype is an error, never scored."""
    key = r.gen_cache.key(r.methods[spec.base], spec.spec, request, r.protocol)
    cached = r.gen_cache.get(key)
    if cached is not None and cached.shape == clip.frames.shape and cached.dtype == np.uint8:
        return GenResult(request.sample_id, cached, meta={"gen_cache": "hit"}), None
    try:
        result = r.methods[spec.base].generate([request])[0]
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"
    err = result.error
    if err is None and (result.frames is None or result.frames.shape != clip.frames.shape
                        or result.frames.dtype != np.uint8):
        got = None if result.frames is None else (result.frames.shape, str(result.frames.dtype))
        err = f"method returned {got}, expected {clip.frames.shape} uint8"
    if err is None:
        r.gen_cache.put(key, result.frames, {"method": spec.spec, "sample_id": request.sample_id})
    return result, err


def _evaluate_sample(r: _Run, sample: Any, pending: list[str], bars: tuple[Any, Any]) -> None:
    """Crop one sample, then generate, write and score every pending method spec on it."""
    from talkbench.faces.crop import load_clip
    from talkbench.io.video import write_video
    from talkbench.metrics.base import ScoreInput

    gen_bar, score_bar = bars
    cfg = r.config
    t0 = time.perf_counter()
    try:
        clip = load_clip(sample, size=cfg.size, crop=cfg.crop)
    except TalkbenchError as exc:
        for m in pending:
            r.fail(m, sample.sample_id, "__sample__", str(exc))
        gen_bar.update(len(pending))
        score_bar.update(len(pending))
        return
    request = GenRequest(sample_id=sample.sample_id, reference=clip.frames[0],
                         pose_prior=lower_half_masked(clip.frames), audio=clip.audio, ground_truth=clip.frames)
    for m in pending:
        spec = parse_method_spec(m)
        why = _unsupported(r, spec)
        if why is not None:
            r.fail(m, sample.sample_id, "__generate__", why)
            gen_bar.update(1)
            score_bar.update(1)
            continue
        masked = mask_span_frames(clip.num_frames, spec.mask_span) if spec.mask_span else ()
        req = replace(request, mask_frames=masked, context_frames=spec.context_frames) if spec.needs else request
        result, err = _generate(r, spec, req, clip)
        gen_bar.update(1)
        if err is not None:
            r.fail(m, sample.sample_id, "__generate__", err)
            score_bar.update(1)
            continue
        write_video(media_path(r.run_dir, m, sample.sample_id), result.frames, clip.audio, fps=clip.fps,
                    sample_rate=clip.sample_rate)
        item = ScoreInput(
            sample_id=sample.sample_id, generated=result.frames, audio=clip.audio, reference=clip.frames,
            word=sample.word, reference_landmarks=clip.landmarks,
            meta={"alignment": sample.meta.get("alignment"), "transcript": sample.transcript, "mask_frames": masked},
        )
        rows = score_rows(r.scorers, item, m, cfg.dataset, sample.sample_id)
        r.summary.failures += sum(1 for row in rows if row.error)
        r.store.commit_sample(m, cfg.dataset, sample.sample_id, rows, time.perf_counter() - t0)
        score_bar.update(1)
        r.summary.pairs_done += 1


def _close(r: _Run, reader: Any, samples: list[Any]) -> None:
    """The final run.json: cache hits, dataset problems, what was not scored and why."""
    record = r.record
    for s in samples:
        if s.meta.get("alignment") and len(record.setdefault("alignments", {})) < 3:
            record["alignments"][s.sample_id] = s.meta["alignment"]
    record["gen_cache"] = r.gen_cache.record()
    record["dataset_problems"] = reader.problems
    record["samples"] = r.summary.samples
    for name, scorer in r.scorers.items():
        if getattr(scorer, "requires", ()):
            record.setdefault("notes", []).append(
                f"{name} is scored only for samples with: {', '.join(scorer.requires)}")
    save_json_atomic(r.run_dir / "run.json", record)


def run(config: RunConfig, run_dir: str | Path, progress: bool = True,
        on_sample: Callable[[str], None] | None = None, gen_cache: bool | GenCache | None = None) -> RunSummary:
    """Evaluate ``config`` into ``run_dir`` (resuming what is there). Returns counts; failures are
    rows with an error, never exceptions, except configuration errors (``ConfigError``).

    ``gen_cache``: the cross-run generation cache (:mod:`talkbench.gencache`); None means on unless
    the environment sets ``TALKBENCH_GEN_CACHE=0``; False disables it. Hits are recorded in run.json."""
    t_start = time.perf_counter()
    r, reader = _open(config, Path(run_dir), gen_cache)
    samples = _plan(config, reader)
    everyone = config.all_methods
    n_pairs = len(samples) * len(everyone)
    # One bar per stage (crops per sample; generation and metrics per method x sample), each with an ETA.
    bar = tqdm(total=len(samples), desc="crops", unit="sample", disable=not progress, position=0)
    gen_bar = tqdm(total=n_pairs, desc="generation", unit="item", disable=not progress, position=1)
    score_bar = tqdm(total=n_pairs, desc="metrics", unit="item", disable=not progress, position=2)
    try:
        for sample in samples:
            r.summary.samples += 1
            bar.update(1)
            pending = [m for m in everyone if not r.store.is_done(m, config.dataset, sample.sample_id)]
            skipped = len(everyone) - len(pending)
            r.summary.pairs_skipped += skipped
            gen_bar.update(skipped)
            score_bar.update(skipped)
            if pending:
                _evaluate_sample(r, sample, pending, (gen_bar, score_bar))
            if on_sample is not None:
                on_sample(sample.sample_id)
    finally:
        for b in (score_bar, gen_bar, bar):
            b.close()
        r.store.close()
    _close(r, reader, samples)
    r.summary.seconds = time.perf_counter() - t_start
    return r.summary


def count_failures(run_dir: str | Path) -> int:
    store = ResultStore(Path(run_dir) / "results.sqlite")
    try:
        return int(store.conn.execute("SELECT COUNT(*) FROM results WHERE error IS NOT NULL").fetchone()[0])
    finally:
        store.close()
