"""``talkbench score VIDEO``: metrics for one generated video."""

from __future__ import annotations

import json
import math
import sys

import click

from talkbench.metrics.score import DEFAULT_METRICS, score_video


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


@click.command(name="score")
@click.argument("video", type=click.Path(exists=True, dir_okay=False))
@click.option("--reference", type=click.Path(exists=True, dir_okay=False), help="Ground-truth video for paired metrics.")
@click.option("--metrics", default=",".join(DEFAULT_METRICS), show_default=True, help="Comma-separated metric names.")
@click.option("--crop", type=click.Choice(["auto", "none"]), default="auto", show_default=True,
              help="auto: detect, track and crop faces; none: frames are already face crops.")
@click.option("--size", default=128, show_default=True, help="Crop size for paired metrics.")
@click.option("--syncnet", type=click.Path(exists=True, dir_okay=False), help="SyncNet weights for LSE.")
@click.option("--lipreader", type=click.Path(exists=True, dir_okay=False), help="Lip-reader weights for lipread.")
@click.option("--word", default=None, help="The spoken word (LRW-style clips), for lipread.")
@click.option("--lmd-variant", default="mean-centred", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--metric-option", "metric_option", multiple=True, metavar="METRIC.KEY=VALUE",
              help="Option of one metric (repeatable), e.g. csim-arcface.weights=PATH, lpips.trunk=PATH.")
def score(video: str, reference: str | None, metrics: str, crop: str, size: int, syncnet: str | None,
          lipreader: str | None, word: str | None, lmd_variant: str, device: str, as_json: bool,
          metric_option: tuple[str, ...]) -> None:
    """Score VIDEO (against --reference for paired metrics). Exit code 1 if a metric failed."""
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    options = {"lmd": {"variant": lmd_variant}}
    if syncnet:
        options["lse"] = {"weights": syncnet}
    if lipreader:
        options["lipread"] = {"weights": lipreader}
    from talkbench._cli.run import metric_options

    for metric, key, value in metric_options(metric_option):
        options.setdefault(metric, {})[key] = value
    result = score_video(video, reference, names, crop=crop, size=size, device=device, options=options, word=word)
    if as_json:
        click.echo(json.dumps(_json_safe(result)))
    else:
        click.echo(f"{video}: {result['frames']} frames ({result['crop_policy']})")
        for k, v in result["metrics"].items():
            click.echo(f"  {k:<24} {v:.4f}" if isinstance(v, float) else f"  {k:<24} {v}")
        for w in result["warnings"]:
            click.echo(f"  warning: {w}")
        for k, v in result["errors"].items():
            click.echo(f"  {k}: failed: {v}")
    if result["errors"]:
        sys.exit(1)
