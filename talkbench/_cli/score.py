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
@click.argument("video", type=click.Path(exists=True, dir_okay=False), required=False)
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
@click.option("--run-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Score one item of this run again, exactly as the run did (with --sample and --method).")
@click.option("--sample", "sample_id", default=None, help="With --run-dir: the sample id (as in the report).")
@click.option("--method", default=None, help="With --run-dir: the method (as in the report, e.g. gt, wav2lip).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--metric-option", "metric_option", multiple=True, metavar="METRIC.KEY=VALUE",
              help="Option of one metric (repeatable), e.g. csim-arcface.weights=PATH, lpips.trunk=PATH.")
def score(video: str | None, reference: str | None, metrics: str | None, crop: str, size: int | None,
          syncnet: str | None, lipreader: str | None, word: str | None, lmd_variant: str, device: str,
          run_dir: str | None, sample_id: str | None, method: str | None, as_json: bool,
          metric_option: tuple[str, ...]) -> None:
    """Score VIDEO (against --reference for paired metrics), or one item of a run (--run-dir).

    With --crop auto and --reference, the reference's face track crops both videos (a generated video
    that is already a square crop of --size is used as given); otherwise a warning says each was
    cropped on its own. The critic of LSE / lip reading is named in the output; when no official file is
    found the default falls back to the shipped SYNTHETIC critic, and the output says so.

    --run-dir DIR --sample ID --method M reproduces the run's numbers for that item: the crops from the
    crop cache, the generated frames from the generation cache (bit-exact; gt/static are regenerated),
    the run's metrics, options and critics; the output shows the run's values beside them. The videos
    under DIR/media are H.264 for viewing and do not reproduce the numbers.

    \b
    Exit codes: 0 every metric computed; 1 a metric failed or the file could not be used (truncated,
    no face, no audio for an audio metric), reported under "errors", or with --run-dir a value differs
    from the run's; 2 usage error (unknown metric, bad option, a sample or method not in the run)."""
    if run_dir or sample_id or method:
        if video or not (run_dir and sample_id and method):
            raise click.UsageError("--run-dir needs --sample and --method, and no VIDEO")
        _rescore(run_dir, sample_id, method, None if device == "cpu" and not _device_given() else device, as_json)
        return
    if not video:
        raise click.UsageError("give a VIDEO, or --run-dir DIR --sample ID --method M")
    names = None if metrics is None else [m.strip() for m in metrics.split(",") if m.strip()]
    options = {"lmd": {"variant": lmd_variant}}
    if syncnet:
        options["lse"] = {"weights": syncnet}
        options["lse-valid"] = {"weights": syncnet}
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
        synthetic = _synthetic_outputs(result)
        for k, v in result["metrics"].items():
            line = f"  {k:<24} {v:.4f}" if isinstance(v, float) else f"  {k:<24} {v}"
            click.echo(line + ("   [SYNTHETIC critic, see below]" if k in synthetic else ""))
        for name, prov in result["critics"].items():
            click.echo(f"  critic for {name}: {critic_label(prov)}; {prov.get('choice', '')}")
        if (faces := result.get("faces") or {}).get("persistent_faces", 0) > 1:
            click.echo(f"  faces: {faces['persistent_faces']} (followed the {faces['pick']})")
        for w in result["warnings"]:
            click.echo(f"  warning: {w}")
        for k, v in result["errors"].items():
            click.echo(f"  {k}: failed: {v}")
    if result["errors"]:
        sys.exit(1)


def _device_given() -> bool:
    ctx = click.get_current_context()
    return ctx.get_parameter_source("device") != click.core.ParameterSource.DEFAULT


def _synthetic_outputs(result: dict) -> set[str]:
    """Output names (lse_d, ...) whose scorer used a synthetic critic."""
    out: set[str] = set()
    for name in result.get("synthetic_critics") or {}:
        prefix = {"lse": ("lse_", "av_offset"), "lse-valid": ("lse_", "av_offset"), "lipread": ("lipread_",)}
        out |= {k for k in result["metrics"] if k.startswith(prefix.get(name, (name,)))}
    return out


def _rescore(run_dir: str, sample_id: str, method: str, device: str | None, as_json: bool) -> None:
    from talkbench.rescore import rescore_item

    result = rescore_item(run_dir, sample_id, method, device=device)
    if as_json:
        click.echo(json.dumps(_json_safe(result)))
    else:
        click.echo(f"{run_dir}: {method} on {sample_id}, {result['frames']} frames ({result['crop_policy']})")
        click.echo(f"  frames from: {result['frames_source']}")
        synthetic = _synthetic_outputs(result)
        for k, v in result["metrics"].items():
            run_v = result["run"].get(k)
            same = "" if run_v is None else ("  = run" if (v == run_v or (math.isnan(v) and math.isnan(run_v)))
                                             else f"  != run {run_v:.6f}")
            click.echo(f"  {k:<24} {v:.6f}{same}" + ("   [SYNTHETIC critic, see below]" if k in synthetic else ""))
        for name, prov in result["critics"].items():
            click.echo(f"  critic for {name}: {critic_label(prov)}")
        for label in result["synthetic_critics"].values():
            click.echo(f"  WARNING: {label}")
        for name, why in result["not_applicable"].items():
            click.echo(f"  {name}: not applicable: {why}")
        for w in result["warnings"]:
            click.echo(f"  warning: {w}")
        for k, v in result["errors"].items():
            click.echo(f"  {k}: failed: {v}")
        click.echo("  matches the run: " + ("yes" if result["matches"] else "NO"))
    if result["errors"] or not result["matches"]:
        sys.exit(1)
