"""``talkbench sweep context|mask`` and ``talkbench ablate``: the CALS paper's context experiments
(Fig. 5, Fig. 6) and ablation (Table 4) as resumable run directories with their own report page."""

from __future__ import annotations

import sys
import time

import click

from talkbench._cli.run import _weights


def _methods(text: str) -> tuple[str, ...]:
    out = tuple(m.strip() for m in text.split(",") if m.strip())
    if not out:
        raise click.UsageError("--methods lists no method")
    return out


def _common(f):
    opts = [
        click.option("--methods", default="cals", show_default=True, help="Comma-separated plain method names."),
        click.option("--dataset", default="synth-lrs2", show_default=True),
        click.option("--root", type=click.Path(file_okay=False), default=None, help="Dataset root (real datasets)."),
        click.option("--split", default="test", show_default=True),
        click.option("--weights", multiple=True, help="METHOD=PATH (repeatable)."),
        click.option("--limit", type=int, default=None, help="Only the first N samples."),
        click.option("--device", default="auto", show_default=True),
        click.option("--crop", type=click.Choice(["auto", "none"]), default="auto", show_default=True),
        click.option("--run-dir", type=click.Path(file_okay=False), default=None, help="Default: runs/<experiment>-<time>."),
        click.option("--no-gen-cache", is_flag=True, help="Do not read or write the cross-run generation cache."),
        click.option("--no-report", is_flag=True, help="Skip the HTML pages."),
        click.option("--allow-synthetic-critics", is_flag=True,
                     help="On a real dataset, score LSE with the shipped synthetic critic when no official one is "
                          "found (refused by default; labelled)."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _done(result) -> None:
    from talkbench.runner import count_failures

    s = result.run
    click.echo(f"run dir: {s.run_dir}  samples: {s.samples}  generated+scored: {s.pairs_done}  "
               f"resumed (skipped): {s.pairs_skipped}  failed items: {s.failures}  time: {s.seconds:.1f} s")
    if result.page:
        click.echo(f"experiment page: {result.page}")
    for name, why in s.metrics_unavailable.items():
        click.echo(f"metric {name} NOT computed: {why}", err=True)
    for label in s.synthetic_critics.values():
        click.echo(f"WARNING: {label}")
    if count_failures(s.run_dir) or s.metrics_unavailable:
        sys.exit(1)


@click.group(name="sweep")
def sweep() -> None:
    """Context experiments of the CALS paper: audio context window (Fig. 6), masked audio (Fig. 5)."""


@sweep.command(name="context")
@_common
@click.option("--k", "ks", default="0,1,2,3,5,7,10,15,full", show_default=True,
              help="Context sizes: audio limited to +-k frames around each frame; 'full' = no limit.")
@click.option("--metrics", default="lmd,lse", show_default=True)
def context(methods: str, dataset: str, root: str | None, split: str, weights: tuple[str, ...], limit: int | None,
            device: str, crop: str, run_dir: str | None, no_gen_cache: bool, no_report: bool,
            allow_synthetic_critics: bool, ks: str, metrics: str) -> None:
    """Metric vs audio context +-k for every method (methods that cannot limit their context are
    reported as not run). Resumable; exit 1 when items failed."""
    from talkbench.experiments.sweep import context_sweep

    result = context_sweep(
        _methods(methods), run_dir or f"runs/sweep-context-{time.strftime('%Y%m%d-%H%M%S')}", ks=ks, dataset=dataset,
        root=root, split=split, metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()),
        weights=_weights(weights), limit=limit, device=device, crop=crop, report=not no_report,
        gen_cache=False if no_gen_cache else None, allow_synthetic_critics=allow_synthetic_critics)
    _done(result)


@sweep.command(name="mask")
@_common
@click.option("--span", type=int, default=7, show_default=True, help="Frames of audio masked in the middle of each clip.")
@click.option("--metrics", default="lmd-span", show_default=True, help="lmd-span is always scored.")
def mask(methods: str, dataset: str, root: str | None, split: str, weights: tuple[str, ...], limit: int | None,
         device: str, crop: str, run_dir: str | None, no_gen_cache: bool, no_report: bool,
         allow_synthetic_critics: bool, span: int, metrics: str) -> None:
    """LMD inside and outside a masked audio span, methods compared on the same samples (paired)."""
    from talkbench.experiments.sweep import mask_sweep

    result = mask_sweep(
        _methods(methods), run_dir or f"runs/sweep-mask-{time.strftime('%Y%m%d-%H%M%S')}", span=span,
        dataset=dataset, root=root, split=split, metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()),
        weights=_weights(weights), limit=limit, device=device, crop=crop, report=not no_report,
        gen_cache=False if no_gen_cache else None, allow_synthetic_critics=allow_synthetic_critics)
    _done(result)


@click.command(name="ablate")
@click.option("--config", "config_path", default="synth", show_default=True,
              help="CALS YAML config (or preset name) the variants are built from.")
@click.option("--variants", default="baseline,+a2l,+dav,+dvv", show_default=True,
              help="Table 4 rows: baseline (the suite's Wav2Lip, same data and budget), +a2l, +dav, +dvv; "
                   "extra: unet-baseline (the CALS U-Net without A2L or sync losses).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None, help="Default: runs/ablate-<time>.")
@click.option("--train/--no-train", default=True, show_default=True,
              help="Train variants that have no checkpoint yet (resumable); --no-train uses --weights only.")
@click.option("--weights", multiple=True, help="VARIANT=FILE (repeatable): evaluate this checkpoint, do not train.")
@click.option("--dataset", default=None, help="Evaluation dataset (default: the config's).")
@click.option("--root", type=click.Path(file_okay=False), default=None)
@click.option("--split", default="test", show_default=True)
@click.option("--metrics", default="psnr,ssim,lmd,lse", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N test samples.")
@click.option("--device", default="auto", show_default=True)
@click.option("--no-gen-cache", is_flag=True)
@click.option("--no-report", is_flag=True)
def ablate(config_path: str, variants: str, run_dir: str | None, train: bool, weights: tuple[str, ...],
           dataset: str | None, root: str | None, split: str, metrics: str, limit: int | None, device: str,
           no_gen_cache: bool, no_report: bool) -> None:
    """Paper Table 4: train (or take) the Wav2Lip baseline and the +A2L, +d_av and +d_vv variants from one
    config and evaluate them on the test split; writes the Table-4 layout (Markdown + HTML)."""
    from talkbench.experiments.ablation import ablate as ablate_lib

    given = {}
    for w in weights:
        if "=" not in w:
            raise click.UsageError(f"--weights expects VARIANT=FILE, got {w!r}")
        v, p = w.split("=", 1)
        given[v] = p
    result = ablate_lib(
        config_path, run_dir or f"runs/ablate-{time.strftime('%Y%m%d-%H%M%S')}",
        variants=tuple(v.strip() for v in variants.split(",") if v.strip()), train=train, weights=given,
        dataset=dataset, root=root, split=split, metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()),
        limit=limit, device=device, report=not no_report, gen_cache=False if no_gen_cache else None)
    _done(result)
