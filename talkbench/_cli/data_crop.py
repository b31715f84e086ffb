"""``talkbench data crop``: face crops and landmarks for a dataset split, into the cache."""

from __future__ import annotations

import json
import sys

import click
from tqdm import tqdm

from talkbench.datasets import DATASETS
from talkbench.errors import TalkbenchError
from talkbench.faces.crop import load_clip


@click.command(name="crop")
@click.option("--dataset", required=True, help="Dataset name (lrw, lrs2, hdtf, folder, synth-*).")
@click.option("--root", type=click.Path(file_okay=False), default=None, help="Dataset root folder.")
@click.option("--split", default="test", show_default=True)
@click.option("--size", default=128, show_default=True, help="Crop size in pixels.")
@click.option("--crop", "crop_mode", type=click.Choice(["auto", "none"]), default="auto", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N samples.")
def crop(dataset: str, root: str | None, split: str, size: int, crop_mode: str, limit: int | None) -> None:
    """Detect, track and crop faces for every sample (cached; a second run does no detection).

    Failures are reported per item and the batch goes on; exit code 1 if any item failed."""
    try:
        reader = DATASETS.get(dataset)(root)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from exc
    failures: list[tuple[str, str]] = []
    done = 0
    samples = reader.samples(split)
    for i, sample in enumerate(tqdm(samples, desc=f"crop {dataset}/{split}", unit="clip")):
        if limit is not None and i >= limit:
            break
        try:
            # Crops need only the video: a video-only clip (HDTF downloads, muted footage) crops fine.
            clip = load_clip(sample, size=size, crop=crop_mode, allow_no_audio=True)
            done += 1
            if clip.meta.get("frames_without_face"):
                failures.append((sample.sample_id, f"face lost in {clip.meta['frames_without_face']} frames (kept, landmarks NaN)"))
        except TalkbenchError as exc:
            failures.append((sample.sample_id, str(exc)))
    failures.extend(reader.problems)
    click.echo(json.dumps({"cropped": done, "failed": failures}, indent=2))
    if any("kept" not in reason for _, reason in failures):
        sys.exit(1)
