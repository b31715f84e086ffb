"""``talkbench score VIDEO``: metrics for one generated video."""

from __future__ import annotations

import json
import math
import sys

import click

from talkbench.metrics.score import critic_label, default_metrics, score_video


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
@click.option("--metrics", default=None,
              help=f"Comma-separated metric names [default: {','.join(default_metrics(True))} with --reference, "
                   f"{','.join(default_metrics(False))} without].")
@click.option("--crop", type=click.Choice(["auto", "none"]), default="auto", show_default=True,
              help="auto: detect, track and crop faces; none: frames are already face crops, used at their own "
                   "size (no detection, no resizing) unless --size is given.")
@click.option("--size", type=click.IntRange(min=16), default=None,
              help="Crop size [default: 128 with --crop auto; the frames' own size with --crop none].")
@click.option("--syncnet", type=click.Path(exists=True, dir_okay=False), help="SyncNet weights for LSE.")
@click.option("--lipreader", type=click.Path(exists=True, dir_okay=False), help="Lip-reader weights for lipread.")
@click.option("--word", default=None, help="The spoken word (LRW-style clips), for lipread.")
@click.option("--lmd-variant", default="mean-centred", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--metric-option", "metric_option", multiple=True, metavar="METRIC.KEY=VALUE",
              help="Option of one metric (repeatable), e.g. csim-arcface.weights=PATH, lpips.trunk=PATH.")
def score(video: str, reference: str | None, metrics: str | None, crop: str, size: int | None, syncnet: str | None,
          lipreader: str | None, word: str | None, lmd_variant: str, device: str, as_json: bool,
          metric_option: tuple[str, ...]) -> None:
    """Score VIDEO (against --reference for paired metrics).

    \b
    Exit codes: 0 every metric computed; 1 a metric failed or the file could not be used (truncated,
    no face, no audio for an audio metric), reported under "errors"; 2 usage error (unknown metric,
    bad option)."""
    names = None if metrics is None else [m.strip() for m in metrics.split(",") if m.strip()]
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
        for name, prov in result["critics"].items():
            click.echo(f"  critic for {name}: {critic_label(prov)}")
        if (faces := result.get("faces") or {}).get("persistent_faces", 0) > 1:
            click.echo(f"  faces: {faces['persistent_faces']} (followed the {faces['pick']})")
        for w in result["warnings"]:
            click.echo(f"  warning: {w}")
        for k, v in result["errors"].items():
            click.echo(f"  {k}: failed: {v}")
    if result["errors"]:
        sys.exit(1)
