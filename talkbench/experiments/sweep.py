"""Context sweep (paper Fig. 6) and masked-audio span (paper Fig. 5) as runs of the normal runner.

A sweep is one run directory whose methods are conditions of the given methods (``cals@ctx=3``,
``cals@mask=7``): the results store, resume, the generation cache, ``talkbench report`` and
``talkbench compare`` all work unchanged, and ``experiment.json`` next to ``run.json`` says which
experiment the run is, so :mod:`talkbench.experiments.report` can pivot the rows on ``k``. A method
whose card cannot honour a condition gets a ``__generate__`` row saying so (never a silent
full-context run) and is listed as "not run" on the experiment page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkbench.cache import save_json_atomic
from talkbench.conditions import context_specs, mask_specs, parse_ks
from talkbench.errors import ConfigError
from talkbench.experiments.report import EXPERIMENT_FILE, build_experiment_report, read_experiment
from talkbench.gencache import GenCache
from talkbench.runner import RunConfig, RunSummary, run

DEFAULT_KS = "0,1,2,3,5,7,10,15,full"


@dataclass(frozen=True)
class SweepResult:
    run: RunSummary
    experiment: dict[str, Any]
    page: Path | None


def _write_experiment(run_dir: Path, exp: dict[str, Any]) -> None:
    def ident(e: dict[str, Any]) -> dict[str, Any]:
        # what must match to resume; weights are checked by the runner's own config identity
        return {k: v for k, v in e.items() if k not in ("notes", "weights")}

    old = read_experiment(run_dir)
    if old is not None and ident(old) != ident(exp):
        diff = sorted(k for k in set(ident(old)) | set(ident(exp)) if old.get(k) != exp.get(k))
        raise ConfigError(f"run directory holds another experiment ({old.get('kind')}; differs in "
                          f"{', '.join(diff)}): refusing to mix", run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json_atomic(run_dir / EXPERIMENT_FILE, exp)


def _finish(config: RunConfig, run_dir: Path, exp: dict[str, Any], progress: bool, report: bool,
            gen_cache: bool | GenCache | None) -> SweepResult:
    _write_experiment(run_dir, exp)
    summary = run(config, run_dir, progress=progress, gen_cache=gen_cache)
    page = None
    if report:
        from talkbench.report.html import build_report

        build_report(run_dir)
        page = build_experiment_report(run_dir)
    return SweepResult(summary, exp, page)


def context_sweep(methods: Sequence[str], run_dir: str | Path, ks: str | Sequence[int | str] = DEFAULT_KS,
                  dataset: str = "synth-lrs2", root: str | None = None, split: str = "test",
                  metrics: Sequence[str] = ("lmd", "lse"), weights: Sequence[tuple[str, str]] = (),
                  limit: int | None = None, device: str = "auto", crop: str = "auto", progress: bool = True,
                  report: bool = True, gen_cache: bool | GenCache | None = None,
                  allow_synthetic_critics: bool = False) -> SweepResult:
    """Generate with every method at every context size ``k`` (frame t generated with the audio
    outside frames [t-k, t+k] removed; ``"full"``: no limit) and score with ``metrics``. Resumable like ``talkbench run``."""
    kk = parse_ks(ks)
    specs = context_specs(methods, kk)
    config = RunConfig(methods=specs, dataset=dataset, root=root, split=split, metrics=tuple(metrics),
                       weights=tuple(weights), limit=limit, device=device, crop=crop, include_gt=False,
                       allow_synthetic_critics=allow_synthetic_critics)
    exp = {"kind": "context", "methods": list(methods), "k": [str(k) for k in kk], "paper": "CALS Fig. 6",
           "notes": ["frame t is generated from the audio stream with every audio unit outside [t-k, t+k] zeroed "
                     "(paper Fig. 6; one Audio-to-Lip pass per target frame, stream length and positions kept); "
                     "the 80x4 log-mel units of a frame use 400-sample windows, which reach <= 15 ms into the "
                     "neighbouring frames"]}
    return _finish(config, Path(run_dir), exp, progress, report, gen_cache)


def mask_sweep(methods: Sequence[str], run_dir: str | Path, span: int = 7, dataset: str = "synth-lrs2",
               root: str | None = None, split: str = "test", metrics: Sequence[str] = ("lmd-span",),
               weights: Sequence[tuple[str, str]] = (), limit: int | None = None, device: str = "auto",
               crop: str = "auto", progress: bool = True, report: bool = True,
               gen_cache: bool | GenCache | None = None, allow_synthetic_critics: bool = False) -> SweepResult:
    """Generate with the audio of ``span`` frames in the middle of each clip masked and score LMD in
    the span (``lmd_span``) and outside it (``lmd_outside``); methods are compared on the same samples
    with paired bootstrap differences on the experiment page."""
    if "lmd-span" not in metrics:
        metrics = ("lmd-span", *metrics)
    specs = mask_specs(methods, span)
    config = RunConfig(methods=specs, dataset=dataset, root=root, split=split, metrics=tuple(metrics),
                       weights=tuple(weights), limit=limit, device=device, crop=crop, include_gt=False,
                       allow_synthetic_critics=allow_synthetic_critics)
    exp = {"kind": "mask", "methods": list(methods), "span": span, "paper": "CALS Fig. 5",
           "notes": ["the masked span is the `span` frames centred in each clip (talkbench.conditions.mask_span_frames)"]}
    return _finish(config, Path(run_dir), exp, progress, report, gen_cache)
