"""``talkbench run`` as a library call: plan -> crops (cached) -> generate -> score -> store.

Every (method, sample) is committed to the store with its rows in one transaction, so a run killed at
any moment resumes with the same command: finished pairs are skipped, none is duplicated. Peak memory
is one sample's frames: rows stream to SQLite.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tqdm import tqdm

from talkbench.cache import save_json_atomic
from talkbench.conditions import parse_method_spec
from talkbench.errors import ConfigError, DatasetError, MediaError
from talkbench.gencache import GenCache
from talkbench.results import media_path
from talkbench.steps import (
    _generate,
    _unsupported,
    base_request,
    faces_rows,
    note_sample,
    prepare,
    resolve_device,
    score_input,
    score_rows,
    spec_request,
)
from talkbench.store import ResultStore, Row
from talkbench.types import PROTOCOL_FPS, PROTOCOL_SIZE, PROTOCOL_SR

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
    # Score with a critic trained on the synthetic corpus even on a real dataset (labelled everywhere).
    allow_synthetic_critics: bool = False

    @property
    def all_methods(self) -> tuple[str, ...]:
        ms = tuple(dict.fromkeys(self.methods))
        return ("gt", *(m for m in ms if m != "gt")) if self.include_gt else ms

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("limit")
        d.pop("device")
        # Its effect is in the identity's metrics (a refused metric is "unavailable"), not here.
        d.pop("allow_synthetic_critics")
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
    retried: int = 0
    failures: int = 0
    seconds: float = 0.0
    # Requested metrics not computed ({name: why}; refused synthetic critics too), leaving out those no
    # sample of this run could have used (lip reading on a sentence dataset): the CLI exits 1 for them.
    metrics_unavailable: dict[str, str] = field(default_factory=dict)
    # {metric: plain-words label} for metrics scored by a synthetic critic on a real dataset.
    synthetic_critics: dict[str, str] = field(default_factory=dict)


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


def _previous_record(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "run.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"unreadable run.json ({exc})", path) from exc


def _fresh_dir(run_dir: Path) -> Path:
    """``run_dir`` itself when it is new or empty, else the first free ``<run_dir>-N``."""
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return run_dir
    n = 2
    while (cand := run_dir.with_name(f"{run_dir.name}-{n}")).exists():
        n += 1
    return cand


def _resume_check(run_dir: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The previous run.json when ``run_dir`` holds the same run; a ConfigError naming every change
    when it holds another (mixing rows of two checkpoints or critics in one run is refused)."""
    from talkbench.run_identity import identity_changes

    old = _previous_record(run_dir)
    if old is None:
        return None
    before = old.get("identity")
    if before is None:  # written before runs were identified by content: compare what it has
        before = {"config": {**old.get("config", {}), "weights": sorted(old.get("config", {}).get("weights") or {})}}
        now = {"config": identity["config"]}
    else:
        now = identity
    changes = identity_changes(before, now)
    if changes:
        shown = "; ".join(changes[:12]) + (f"; ... ({len(changes)} changes)" if len(changes) > 12 else "")
        raise ConfigError(f"the run directory holds a run with other content, refusing to mix results: {shown}. "
                          f"Use --fresh to start a new run directory ({_fresh_dir(run_dir).name}) or another --run-dir",
                          run_dir)
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


def generation_protocol(config: RunConfig, device: str) -> dict[str, Any]:
    """The protocol part of a generation-cache key (crop size and policy, device kind)."""
    return {"size": config.size, "crop": config.crop, "device": device.split(":")[0]}


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
    # Metrics unavailable in the previous invocation and available now (an official critic provided,
    # --allow-synthetic-critics given): pairs done without them are evaluated again.
    newly_available: tuple[str, ...] = ()

    @property
    def protocol(self) -> dict[str, Any]:
        return generation_protocol(self.config, self.device)

    def fail(self, method: str, sample_id: str, marker: str, why: str) -> None:
        """Record one (method, sample) as failed at ``marker`` (``__sample__`` / ``__generate__``)."""
        self.store.commit_sample(method, self.config.dataset, sample_id,
                                 [Row(method, self.config.dataset, sample_id, marker, None, why)])
        self.summary.failures += 1


def _open(config: RunConfig, run_dir: Path, gen_cache: bool | GenCache | None,
          fresh: bool = False) -> tuple[_Run, Any, list[Any]]:
    """Check the configuration, load the dataset reader, methods and scorers, compare the run's content
    with what ``run_dir`` holds, and only then create it and write the first run.json."""
    from talkbench.checks import check_run_config
    from talkbench.run_identity import UNAVAILABLE, content_identity, dataset_identity

    reader = check_run_config(config)
    samples = _plan(config, reader)
    device = resolve_device(config.device)
    methods, broken = build_methods(config, device)
    scorers, unavailable = build_scorers(config, device)
    synthetic = _critic_domain(config, reader, scorers, unavailable)
    if config.metrics and not scorers:
        raise ConfigError("none of the requested metrics can be scored: " +
                          "; ".join(f"{k}: {v}" for k, v in unavailable.items()))
    protocol = {"crop": config.crop, "size": config.size, "fps": int(PROTOCOL_FPS), "sample_rate": PROTOCOL_SR,
                "reference_frame": "first frame", "pose_prior": "target frames, lower half zeroed"}
    identity = content_identity(config, methods, broken, scorers, unavailable, protocol,
                                dataset_identity(config, _split_listing(config, reader, samples), reader))
    if fresh:
        run_dir = _fresh_dir(run_dir)
    previous = _resume_check(run_dir, identity)
    before = ((previous or {}).get("identity") or {}).get("metrics") or {}
    newly = tuple(n for n in scorers
                  if before.get(n) == UNAVAILABLE or n in (previous or {}).get("metrics_pending", []))
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the run directory ({exc})", run_dir) from exc
    record = {
        "config": config.identity(),
        "identity": identity,
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
        "synthetic_critics": synthetic,
        "protocol": protocol,
        "sample_notes": (previous or {}).get("sample_notes", {}),
        # Metrics that became available since the last invocation: every pair is evaluated again. Kept
        # until an invocation finishes, so a run killed during that pass redoes it on the next resume.
        "metrics_pending": list(newly),
    }
    if not isinstance(gen_cache, GenCache):
        on = gen_cache if gen_cache is not None else os.environ.get("TALKBENCH_GEN_CACHE", "1") not in ("0", "off", "no")
        gen_cache = GenCache(enabled=bool(on))
    record["gen_cache"] = gen_cache.record()
    save_json_atomic(run_dir / "run.json", record)
    store = ResultStore(run_dir / "results.sqlite", run=run_dir.name)
    summary = RunSummary(run_dir, metrics_unavailable=_would_apply(unavailable, samples), synthetic_critics=synthetic)
    run = _Run(config, run_dir, device, methods, broken, scorers, record, gen_cache, store, summary, newly)
    return run, reader, samples


def _critic_domain(config: RunConfig, reader: Any, scorers: dict[str, Any], unavailable: dict[str, str]) -> dict[str, str]:
    """On a dataset that is not synthetic, a metric whose critic was trained on the synthetic corpus is
    refused (moved from ``scorers`` into ``unavailable`` with the official file to provide), unless
    ``allow_synthetic_critics``: then ``{metric: plain-words label}`` for every output to show."""
    from talkbench.critics.domain import is_synthetic_dataset, refusal, synthetic_label

    if is_synthetic_dataset(config.dataset, getattr(reader, "root", None)):
        return {}
    labels = {}
    for name in list(scorers):
        prov = scorers[name].provenance() or {}
        why = refusal(name, prov, config.dataset)
        if why is None:
            continue
        if config.allow_synthetic_critics:
            labels[name] = synthetic_label(name, prov, config.dataset)
            log.warning("%s", labels[name])
        else:
            unavailable[name] = why
            del scorers[name]
            log.warning("metric %s %s", name, why)
    return labels


def _would_apply(unavailable: dict[str, str], samples: list[Any]) -> dict[str, str]:
    """The unavailable metrics some sample could have used: a scorer that ``requires`` a word label is
    of no use on a dataset without words, so its absence is not a loss."""
    from talkbench.metrics import METRICS

    out = {}
    for name, why in unavailable.items():
        try:
            requires = getattr(METRICS.get(name), "requires", ())
        except Exception:  # not importable here: it would have applied
            requires = ()
        if "word" in requires and not any(s.word for s in samples):
            continue
        out[name] = why
    return out


def _split_listing(config: RunConfig, reader: Any, planned: list[Any]) -> list[Any]:
    """The whole split (the dataset's identity does not depend on ``--limit``)."""
    if config.limit is None:
        return planned
    listing = getattr(reader, "listing", None)  # a split generated on demand lists itself without generating
    return listing(config.split) if listing is not None else list(reader.samples(config.split))


def _plan(config: RunConfig, reader: Any) -> list[Any]:
    """The samples of the split, up to ``limit`` (paths only; knowing the total gives every bar an ETA).
    Two samples with one id would share their rows and media: a DatasetError naming both files."""
    if config.limit is not None and hasattr(reader, "prepare_first"):
        reader.prepare_first(config.split, config.limit)  # synth-lrs2: generate only the clips the run needs
    samples = reader.samples(config.split)
    if config.limit is not None:
        samples = samples[: config.limit] if isinstance(samples, list) else list(itertools.islice(samples, config.limit))
    samples = list(samples)
    seen: dict[str, Any] = {}
    for s in samples:
        if s.sample_id in seen:
            raise DatasetError(f"two samples share the id {s.sample_id!r}: {seen[s.sample_id].video_path} and "
                               f"{s.video_path}", getattr(reader, "root", None))
        seen[s.sample_id] = s
    return samples


def _evaluate_sample(r: _Run, sample: Any, pending: list[str], bars: tuple[Any, Any]) -> None:
    """Crop one sample, then generate, write and score every pending method spec on it."""
    from talkbench.io.video import write_video

    gen_bar, score_bar = bars
    cfg = r.config
    t0 = time.perf_counter()
    clip, why = prepare(sample, cfg.size, cfg.crop)
    if clip is None:
        for m in pending:
            r.fail(m, sample.sample_id, "__sample__", why)
        gen_bar.update(len(pending))
        score_bar.update(len(pending))
        return
    faces = note_sample(r, sample, clip)
    request = base_request(sample, clip)
    for m in pending:
        spec = parse_method_spec(m)
        why = _unsupported(r, spec)
        if why is not None:
            r.fail(m, sample.sample_id, "__generate__", why)
            gen_bar.update(1)
            score_bar.update(1)
            continue
        req = spec_request(request, spec, clip.num_frames)
        result, err = _generate(r, spec, req, clip)
        gen_bar.update(1)
        if err is not None:
            r.fail(m, sample.sample_id, "__generate__", err)
            score_bar.update(1)
            continue
        try:
            write_video(media_path(r.run_dir, m, sample.sample_id), result.frames, clip.audio, fps=clip.fps,
                        sample_rate=clip.sample_rate)
        except MediaError as exc:  # a full disk: this pair fails (no temp file is left), the store stays intact
            r.fail(m, sample.sample_id, "__media__", str(exc))
            score_bar.update(1)
            continue
        item = score_input(sample, clip, result.frames, req.mask_frames)
        outside: dict[str, str] = {}
        rows = score_rows(r.scorers, item, m, cfg.dataset, sample.sample_id, outside, r.run_dir)
        rows += faces_rows(r, m, sample.sample_id, faces)
        r.summary.failures += int(any(row.error for row in rows))  # failures count pairs, not rows
        r.store.commit_sample(m, cfg.dataset, sample.sample_id, rows, time.perf_counter() - t0, outside)
        score_bar.update(1)
        r.summary.pairs_done += 1


def _close(r: _Run, reader: Any, samples: list[Any]) -> None:
    """The final run.json: cache hits, dataset problems, what was not scored and why, dataset-level
    metrics (FID, FVD) over every finished sample, and each metric's protocol."""
    from talkbench.metrics.dataset_level import finalize, is_dataset_level

    record = r.record
    for s in samples:
        if s.meta.get("alignment") and len(record.setdefault("alignments", {})) < 3:
            record["alignments"][s.sample_id] = s.meta["alignment"]
    record["gen_cache"] = r.gen_cache.record()
    record["metrics_pending"] = []
    record["dataset_problems"] = reader.problems
    record["samples"] = r.summary.samples
    if any(is_dataset_level(s) for s in r.scorers.values()):
        record["dataset_metrics"] = finalize(r.run_dir, r.scorers, list(r.config.all_methods), r.config.dataset,
                                             [s.sample_id for s in samples])
    record["metric_protocols"] = {n: s.provenance().get("protocol") or {
        "crop": f"{r.config.crop} ({r.config.size} px protocol crops)", "frames": "all",
        "definition": "; ".join(i.description for i in s.outputs)} for n, s in r.scorers.items()}
    if record.get("sample_notes"):
        from talkbench.faces.crop import AUDIO_TOLERANCE_S
        from talkbench.faces.track import PICK_RULE

        record.setdefault("notes", []).append(
            f"sample_notes: per-sample notes. Audio shorter than the video by more than {AUDIO_TOLERANCE_S} s: only "
            f"the frames with audio are generated and scored. Several faces: the track follows the {PICK_RULE}; "
            "a __faces__ row holds the number of faces seen in most frames when it is more than one")
    for name, scorer in r.scorers.items():
        if getattr(scorer, "requires", ()):
            record.setdefault("notes", []).append(
                f"{name} is scored only for samples with: {', '.join(scorer.requires)}")
    record["not_applicable"] = _not_applicable_summary(r, samples)
    for name, na in record["not_applicable"].items():
        record.setdefault("notes", []).append(
            f"{name}: {na['pairs']} (method, sample) pairs not applicable (neither scored nor failed): "
            + "; ".join(f"{why} ({n})" for why, n in na["reasons"].items()))
    save_json_atomic(r.run_dir / "run.json", record)


def _not_applicable_summary(r: _Run, samples: list[Any]) -> dict[str, Any]:
    """Per scorer: pairs outside its scope, counted per reason, and (word datasets) per-word coverage:
    how many of each word's samples the scorer applies to. Read from the store, so it covers every
    invocation of a resumed run."""
    store = ResultStore(r.run_dir / "results.sqlite")
    try:
        na = store.not_applicable()
    finally:
        store.close()
    na = na[na["dataset"] == r.config.dataset]
    words = {s.sample_id: s.word for s in samples if s.word}
    out: dict[str, Any] = {}
    for scorer, g in na.groupby("scorer", sort=True):
        entry: dict[str, Any] = {"pairs": int(len(g)), "samples": int(g["sample_id"].nunique()),
                                 "reasons": {str(k): int(v) for k, v in g["reason"].value_counts().items()}}
        if words:
            outside = set(g["sample_id"])
            cov: dict[str, dict[str, int]] = {}
            for sid, w in words.items():
                c = cov.setdefault(w, {"samples": 0, "applicable": 0})
                c["samples"] += 1
                c["applicable"] += int(sid not in outside)
            entry["word_coverage"] = dict(sorted(cov.items()))
            entry["words_covered"] = sum(1 for c in cov.values() if c["applicable"])
            entry["words"] = len(cov)
        out[str(scorer)] = entry
    return out


def _pending(r: _Run, sample: Any, retry_failed: bool) -> list[str]:
    """The method specs ``sample`` still needs (a pair evaluated again is forgotten first)."""
    cfg = r.config
    pending = []
    for m in cfg.all_methods:
        if not r.store.is_done(m, cfg.dataset, sample.sample_id):
            pending.append(m)
        elif ((r.newly_available or (retry_failed and r.store.is_failed(m, cfg.dataset, sample.sample_id)))
              and _unsupported(r, parse_method_spec(m)) is None):
            # (A pair that this run would refuse again, its method unloadable or unable to honour
            # the condition, keeps its row: retrying it could only repeat the failure.)
            r.store.forget(m, cfg.dataset, sample.sample_id)
            r.summary.retried += 1
            pending.append(m)
    r.summary.pairs_skipped += len(cfg.all_methods) - len(pending)
    return pending


EXECUTORS = ("local", "ray")


def run(config: RunConfig, run_dir: str | Path, progress: bool = True,
        on_sample: Callable[[str], None] | None = None, gen_cache: bool | GenCache | None = None,
        retry_failed: bool = True, fresh: bool = False, workers: int | None = 0,
        batch_sizes: dict[str, int] | None = None, executor: str = "local",
        address: str | None = None) -> RunSummary:
    """Evaluate ``config`` into ``run_dir`` (resuming what is there). Returns counts; failures are
    rows with an error, never exceptions, except configuration errors (``ConfigError``).

    Resuming needs the same content (:mod:`talkbench.run_identity`); ``fresh``: when ``run_dir``
    already holds a run, use a new ``<run_dir>-N`` instead (``summary.run_dir``). ``retry_failed``:
    pairs that failed before are evaluated again (their old rows are dropped first), except those this
    run would refuse again (method still unavailable, condition it cannot honour). When a metric that
    was unavailable in the previous invocation is available now, every pair is evaluated again.

    ``gen_cache``: the cross-run generation cache (:mod:`talkbench.gencache`); None means on unless
    the environment sets ``TALKBENCH_GEN_CACHE=0``; False disables it. Hits are recorded in run.json.

    Executors (the rows are the same whichever runs them): ``workers=0`` the serial path, one sample
    at a time in this process; ``workers=N`` (None: :func:`talkbench.pipeline.default_workers`) the
    pipelined local executor (:mod:`talkbench.pipeline`) with ``batch_sizes`` {method or ``*``:
    requests per ``Method.generate`` call}; ``executor="ray"`` actors on a Ray cluster
    (:mod:`talkbench.ray_executor`; ``address`` as ``ray.init`` takes it, None: a local instance)."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; available: {', '.join(EXECUTORS)}")
    if workers is not None and workers < 0:
        raise ConfigError(f"--workers must be 0 (serial) or more, got {workers}")
    bases = {parse_method_spec(m).base for m in config.all_methods}
    for name, b in (batch_sizes or {}).items():
        if b < 1:
            raise ConfigError(f"--batch-size {name}={b}: a batch holds at least one request")
        if name != "*" and name not in bases:
            raise ConfigError(f"--batch-size names method {name!r}, which is not in --methods")
    if executor == "ray":
        from talkbench.ray_executor import require_ray

        require_ray()  # before anything is created: a missing extra is a configuration error
    t_start = time.perf_counter()
    r, reader, samples = _open(config, Path(run_dir), gen_cache, fresh=fresh)
    everyone = config.all_methods
    n_pairs = len(samples) * len(everyone)
    # One bar per stage (crops per sample; generation and metrics per method x sample), each with an ETA.
    bar = tqdm(total=len(samples), desc="crops", unit="sample", disable=not progress, position=0)
    gen_bar = tqdm(total=n_pairs, desc="generation", unit="item", disable=not progress, position=1)
    score_bar = tqdm(total=n_pairs, desc="metrics", unit="item", disable=not progress, position=2)
    try:
        if executor == "ray" or workers != 0:
            # The whole plan first (the store is then the writer thread's alone); skipped pairs
            # advance the bars at once, so the ETAs count only the work left.
            plan = [(s, _pending(r, s, retry_failed)) for s in samples]
            gen_bar.update(r.summary.pairs_skipped)
            score_bar.update(r.summary.pairs_skipped)
            if executor == "ray":
                from talkbench.ray_executor import run_ray

                run_ray(r, plan, (bar, gen_bar, score_bar), on_sample, batch_sizes or {}, address=address)
            else:
                from talkbench.pipeline import default_workers, run_pipelined

                run_pipelined(r, plan, (bar, gen_bar, score_bar), on_sample,
                              workers if workers is not None else default_workers(r.device), batch_sizes or {})
        else:
            for sample in samples:
                r.summary.samples += 1
                bar.update(1)
                before = r.summary.pairs_skipped
                pending = _pending(r, sample, retry_failed)
                gen_bar.update(r.summary.pairs_skipped - before)
                score_bar.update(r.summary.pairs_skipped - before)
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
    """Failed (method, sample) pairs in a run directory (a pair counts once, however many rows failed)."""
    store = ResultStore(Path(run_dir) / "results.sqlite")
    try:
        return store.failed_pairs()
    finally:
        store.close()
