"""Plan and run every part of ``talkbench paper`` as ordinary run directories under one parent, so
resume, ``report``, ``compare`` and the generation cache all apply. ``DIR/paper.json`` records each
part's identity, status and wall time: a finished part whose identity is unchanged is skipped without
loading anything; an interrupted one resumes (the runner skips its finished pairs)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from talkbench.cache import save_json_atomic
from talkbench.errors import ConfigError, TalkbenchError
from talkbench.paper.config import PaperConfig

log = logging.getLogger(__name__)
BOUNDS = ("static",)  # the lower bound every table carries (gt, the upper bound, is added by the runner)


@dataclass(frozen=True)
class Part:
    name: str  # also the sub-folder: table1-LRS2, fig6-context, fig5-mask, table4-ablation
    kind: str
    args: dict[str, Any]

    @property
    def identity(self) -> str:
        """The arguments, plus the synthetic corpus's version where the part reads one: a part finished on
        another corpus version is not "done" (its run directory then refuses to mix, naming the change)."""
        key = dict(self.args)
        if (corpus := _corpus(self.args.get("dataset"), self.args.get("root"))) is not None:
            key["corpus"] = corpus
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _corpus(dataset: str | None, root: str | None) -> Any:
    from talkbench.run_identity import corpus_record

    if root:
        return corpus_record(root)
    if dataset and dataset.startswith("synth-"):  # the default corpus in the cache: the version this code writes
        from talkbench.datasets.synth.corpus import VERSIONS

        return {"version": VERSIONS.get(dataset), "seed": 0}
    return None


def plan(cfg: PaperConfig) -> list[Part]:
    parts = []
    weights = dict(cfg.weights)
    for d in cfg.datasets:
        metrics = list(cfg.metrics) + (["lipread"] if cfg.lipreading == d.key and "lipread" not in cfg.metrics else [])
        methods = [m for m in cfg.methods if m not in cfg.not_in_table1 or d.key == cfg.lipreading]
        parts.append(Part(f"table1-{d.key}", "run", {
            "methods": [*BOUNDS, *methods], "dataset": d.dataset, "root": d.root, "split": d.split,
            "metrics": metrics, "weights": sorted(weights.items()), "limit": d.limit, "device": cfg.device}))
    if s := cfg.context_sweep:
        d = cfg.dataset(s.dataset)
        parts.append(Part("fig6-context", "context", {
            "methods": list(s.methods), "ks": [str(k) for k in s.ks], "dataset": d.dataset, "root": d.root,
            "split": d.split, "metrics": list(s.metrics), "limit": s.limit,
            "weights": sorted((m, w) for m, w in weights.items() if m in s.methods), "device": cfg.device}))
    if s := cfg.masked_audio:
        d = cfg.dataset(s.dataset)
        parts.append(Part("fig5-mask", "mask", {
            "methods": list(s.methods), "span": s.span, "dataset": d.dataset, "root": d.root, "split": d.split,
            "limit": s.limit, "weights": sorted((m, w) for m, w in weights.items() if m in s.methods),
            "device": cfg.device}))
    if s := cfg.ablation:
        d = cfg.dataset(s.dataset)
        parts.append(Part("table4-ablation", "ablation", {
            "config": s.config, "variants": list(s.variants), "dataset": d.dataset, "root": d.root,
            "split": d.split, "metrics": list(s.metrics), "limit": s.limit, "weights": [list(w) for w in s.weights],
            "device": cfg.device}))
    return parts


def check(cfg: PaperConfig) -> None:
    """Everything a part would refuse, before any part runs (readers built, splits known)."""
    from talkbench.checks import check_run_config
    from talkbench.runner import RunConfig

    for p in plan(cfg):
        if p.kind != "run":
            continue
        a = p.args
        rc = RunConfig(methods=tuple(a["methods"]), dataset=a["dataset"], root=a["root"], split=a["split"],
                       metrics=tuple(a["metrics"]), weights=tuple(tuple(w) for w in a["weights"]), limit=a["limit"])
        try:
            check_run_config(rc)
        except ConfigError as exc:
            raise ConfigError(f"{p.name}: {exc.reason}", exc.path or cfg.source) from exc


def _execute(part: Part, run_dir: Path, progress: bool) -> None:
    from talkbench.runner import RunConfig, run

    a = part.args
    w = tuple(tuple(x) for x in a["weights"])
    if part.kind == "run":
        run(RunConfig(methods=tuple(a["methods"]), dataset=a["dataset"], root=a["root"], split=a["split"],
                      metrics=tuple(a["metrics"]), weights=w, limit=a["limit"], device=a["device"]),
            run_dir, progress=progress)
        from talkbench.report.html import build_report

        build_report(run_dir)
    elif part.kind == "context":
        from talkbench.experiments.sweep import context_sweep

        context_sweep(tuple(a["methods"]), run_dir, ",".join(a["ks"]), dataset=a["dataset"], root=a["root"],
                      split=a["split"], metrics=tuple(a["metrics"]), weights=w, limit=a["limit"],
                      device=a["device"], progress=progress)
    elif part.kind == "mask":
        from talkbench.experiments.sweep import mask_sweep

        mask_sweep(tuple(a["methods"]), run_dir, a["span"], dataset=a["dataset"], root=a["root"], split=a["split"],
                   weights=w, limit=a["limit"], device=a["device"], progress=progress)
    elif part.kind == "ablation":
        from talkbench.experiments.ablation import ablate

        ablate(a["config"], run_dir, tuple(a["variants"]), weights=dict(w), dataset=a["dataset"], root=a["root"],
               split=a["split"], metrics=tuple(a["metrics"]), limit=a["limit"], device=a["device"], progress=progress)
    else:  # pragma: no cover - plan() makes only the kinds above
        raise ConfigError(f"unknown part kind {part.kind!r}")


@dataclass
class PaperRun:
    run_dir: Path
    status: dict[str, Any]

    @property
    def failed(self) -> list[str]:
        return [n for n, s in self.status["parts"].items() if s["status"] == "failed"]


def run_paper(cfg: PaperConfig, run_dir: str | Path, progress: bool = True,
              on_part: Callable[[str, str], None] | None = None) -> PaperRun:
    """Run (or resume) every part, then write the paper page. A part that fails is recorded and the
    others go on; configuration errors are raised before any part starts."""
    check(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    status_path = run_dir / "paper.json"
    status = json.loads(status_path.read_text()) if status_path.exists() else {}
    status.setdefault("parts", {})
    status["config"] = {"name": cfg.name, "source": cfg.source, "config": json.loads(json.dumps(asdict(cfg), default=str))}
    status["config"]["config"].pop("lines", None)
    for part in plan(cfg):
        prev = status["parts"].get(part.name, {})
        if prev.get("status") == "done" and prev.get("identity") == part.identity:
            if on_part:
                on_part(part.name, "skipped (done)")
            continue
        t0 = time.perf_counter()
        before = prev.get("seconds", 0.0) if prev.get("identity") == part.identity else 0.0
        entry = {"identity": part.identity, "kind": part.kind, "args": part.args, "status": "running",
                 "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        status["parts"][part.name] = entry
        save_json_atomic(status_path, status)
        if on_part:
            on_part(part.name, "running")
        try:
            _execute(part, run_dir / part.name, progress)
            entry["status"] = "done"
        except (TalkbenchError, Exception) as exc:  # one part failing must not lose the others
            log.exception("paper part %s failed", part.name)
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        entry["seconds"] = round(before + time.perf_counter() - t0, 1)  # across resumed invocations
        save_json_atomic(status_path, status)
        if on_part:
            on_part(part.name, entry["status"])
    from talkbench.paper.page import build_paper_page

    status["page"] = str(build_paper_page(run_dir, cfg))
    save_json_atomic(status_path, status)
    return PaperRun(run_dir, status)
