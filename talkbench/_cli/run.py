"""``talkbench run``: evaluate methods on a dataset split into a resumable run directory."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from talkbench.runner import DEFAULT_METRICS, RunConfig
from talkbench.runner import run as run_lib


def _weights(values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for v in values:
        if "=" not in v:
            raise click.UsageError(f"--weights expects METHOD=PATH, got {v!r}")
        m, p = v.split("=", 1)
        if not Path(p).exists():
            raise click.UsageError(f"--weights {m}: file not found: {p}")
        out.append((m, p))
    return tuple(out)


def _batch_sizes(values: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for v in values:
        m, _, b = v.partition("=")
        if not m or not b.strip().lstrip("-").isdigit():
            raise click.UsageError(f"--batch-size expects METHOD=B (or *=B for every method), got {v!r}")
        out[m.strip()] = int(b)
    return out


def metric_options(values: tuple[str, ...]) -> tuple[tuple[str, str, object], ...]:
    """``METRIC.KEY=VALUE`` -> (metric, key, value); numbers become int/float, the rest stay strings."""
    out = []
    for v in values:
        head, sep, raw = v.partition("=")
        metric, dot, key = head.partition(".")
        if not (sep and dot and metric and key):
            raise click.UsageError(f"--metric-option expects METRIC.KEY=VALUE (e.g. fid.weights=PATH), got {v!r}")
        value: object = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        out.append((metric, key, value))
    return tuple(out)


@click.command(name="run")
@click.option("--methods", required=True, help="Comma-separated method names, e.g. cals,wav2lip.")
@click.option("--dataset", default="synth-lrs2", show_default=True)
@click.option("--root", type=click.Path(file_okay=False), default=None, help="Dataset root (real datasets).")
@click.option("--split", default="test", show_default=True)
@click.option("--metrics", default=",".join(DEFAULT_METRICS), show_default=True,
              help="Comma-separated metric (scorer) names; each writes one or more columns: psnr, ssim, lmd, "
                   "lmd-span (lmd_span, lmd_outside), lvd, csim, lse (lse_d, lse_c, av_offset), lse-valid "
                   "(lse_d_valid, lse_c_valid, av_offset_valid), lipread (lipread_top1, lipread_top5), lpips, "
                   "csim-arcface (csim_arcface), cpbd, and the dataset-level fid and fvd (one value per method; "
                   "official weight files in $TALKBENCH_WEIGHTS, see `talkbench doctor`). "
                   "`compare --metrics` takes either form.")
@click.option("--weights", multiple=True, help="METHOD=PATH (repeatable): evaluate a given checkpoint.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N samples (N >= 1).")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None, help="Default: runs/<dataset>-<time>.")
@click.option("--crop", type=click.Choice(["auto", "none"]), default="auto", show_default=True)
@click.option("--no-gt", is_flag=True, help="Do not add the ground-truth row.")
@click.option("--no-report", is_flag=True, help="Skip the HTML report.")
@click.option("--no-gen-cache", is_flag=True, help="Do not reuse (or store) generations across runs.")
@click.option("--no-retry-failed", is_flag=True, help="On resume, keep failed items as they are (default: retry them).")
@click.option("--allow-synthetic-critics", is_flag=True,
              help="On a real dataset, score LSE / lip reading with a critic trained on the synthetic corpus when no "
                   "official one is found (refused by default); the report and console label those numbers.")
@click.option("--fresh", is_flag=True,
              help="If --run-dir already holds a run, start a new directory beside it (<run-dir>-N) instead of "
                   "resuming (resuming is refused when the weights, critics, versions, protocol or data changed).")
@click.option("--metric-option", "metric_option", multiple=True, metavar="METRIC.KEY=VALUE",
              help="Option of one metric (repeatable), e.g. fid.weights=PATH, fid.frame_step=5, fvd.start=20, "
                   "csim-arcface.align=resize, lpips.trunk=PATH.")
@click.option("--workers", type=int, default=None,
              help="Worker processes preparing samples (decode, crop, landmarks) ahead of generation and, on "
                   "CPU, scoring them; 0: the serial path, one sample at a time. Default: one per core (on a "
                   "GPU: cores minus one).")
@click.option("--batch-size", "batch_size", multiple=True, metavar="METHOD=B",
              help="Requests per Method.generate call for METHOD (repeatable; *=B for every method; default 4).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine (pipelined); ray: actors on a Ray cluster (pip install 'talkbench[ray]').")
@click.option("--address", default=None,
              help="With --executor ray: the cluster (auto | HOST:PORT); default: a Ray instance on this machine.")
def run(methods: str, dataset: str, root: str | None, split: str, metrics: str, weights: tuple[str, ...],
        limit: int | None, device: str, run_dir: str | None, crop: str, no_gt: bool, no_report: bool,
        no_gen_cache: bool, no_retry_failed: bool, allow_synthetic_critics: bool, fresh: bool,
        metric_option: tuple[str, ...], workers: int | None, batch_size: tuple[str, ...], executor: str,
        address: str | None) -> None:
    """Generate with every method, score every sample, store tidy rows, write the report.

    Re-running the same command on the same --run-dir resumes: finished items are kept, failed ones
    are retried. A run directory is identified by its content (every method's and critic's weights
    sha256, method and metric versions, protocol, dataset split); resuming with any of it changed is
    refused, naming what changed.

    A metric whose only critic was trained on the synthetic corpus (the shipped syncnet-synth /
    lipreader-synth) is refused on a dataset that is not synthetic, naming the official file to put in
    $TALKBENCH_WEIGHTS; --allow-synthetic-critics scores it anyway, labelled as such.

    \b
    Exit codes: 0 every item scored; 1 some items failed (recorded in the store, the run completed), or a
    requested metric could not be computed (a refused synthetic critic, missing weights: run.json
    metrics_unavailable); 2 usage or configuration error, or none of the metrics can be computed
    (checked before the run directory is created)."""
    config = RunConfig(
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()), dataset=dataset, root=root, split=split,
        metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()), weights=_weights(weights),
        limit=limit, device=device, crop=crop, include_gt=not no_gt, allow_synthetic_critics=allow_synthetic_critics,
        metric_options=metric_options(metric_option),
    )
    run_dir = run_dir or f"runs/{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    if address is not None and executor != "ray":
        raise click.UsageError("--address is for --executor ray")
    summary = run_lib(config, run_dir, gen_cache=False if no_gen_cache else None, retry_failed=not no_retry_failed,
                      fresh=fresh, workers=workers, batch_sizes=_batch_sizes(batch_size), executor=executor,
                      address=address)
    click.echo(f"run dir: {summary.run_dir}  samples: {summary.samples}  generated+scored: {summary.pairs_done}  "
               f"resumed (skipped): {summary.pairs_skipped}  retried: {summary.retried}  "
               f"failed items: {summary.failures}  "
               f"time: {summary.seconds:.1f} s")
    for name, why in summary.metrics_unavailable.items():
        click.echo(f"metric {name} NOT computed: {why}", err=True)
    for label in summary.synthetic_critics.values():
        click.echo(f"WARNING: {label}")
    from talkbench.report.sanity import offset_sanity
    from talkbench.results import load_run

    for check in offset_sanity(load_run(summary.run_dir).frame):
        click.echo(check.text)
    if not no_report:
        from talkbench.report.html import build_report

        click.echo(f"report: {build_report(summary.run_dir)}")
    from talkbench.runner import count_failures

    if count_failures(summary.run_dir) or summary.metrics_unavailable:
        sys.exit(1)
