"""How often ATVGnet's own face pipeline fails on real footage (the paper leaves ATVGnet out of its Table 1
because "it fails on large proportions of the test sets due to its face detection").

``python -m baselines.atvgnet.failures --basis B.npz VIDEO ...`` runs, on every ``--every``-th frame of each
video as a would-be reference frame, (a) the official ``demo.py`` pipeline on the whole frame as decoded, and
(b) the adapter's path: the protocol's 128-px face crop, padded as the adapter pads it. Prints one JSON
object: per video and overall, the fraction of frames that fail and the reasons.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import click
import numpy as np

from baselines.atvgnet.landmarks import load_space
from baselines.atvgnet.preprocess import FacePipelineError, align_reference


def _try(frame: np.ndarray, template: np.ndarray, close: np.ndarray, pad: float) -> str | None:
    try:
        align_reference(frame, template, close, pad=pad)
        return None
    except FacePipelineError as exc:
        return str(exc).split(" (")[0]


def pipeline_failures(videos: Sequence[str | Path], basis: str | Path, every: int = 5) -> dict:
    from talkbench.faces.crop import load_clip
    from talkbench.io.video import read_video
    from talkbench.types import Sample

    space = load_space(basis)
    out: dict = {"every": every, "basis": str(basis), "videos": {}}
    totals = {"full_frame": Counter(), "protocol_crop": Counter()}
    for v in videos:
        v = Path(v)
        full = read_video(v)[::every]
        rec: dict = {}
        try:
            crops = load_clip(Sample("real", "all", v.stem, v), landmarks=False).frames[::every]
        except Exception as exc:  # the protocol crop itself failed: every frame fails
            crops = None
            rec["protocol_crop_error"] = str(exc)
        for name, frames, pad in (("full_frame", full, 0.0), ("protocol_crop", crops, 0.25)):
            reasons = [_try(f, space.template, space.template_close, pad) for f in frames] if frames is not None else []
            c = Counter(r or "ok" for r in reasons)
            n = len(reasons)
            rec[name] = {"frames": n, "failed": n - c["ok"], "fraction_failed": (n - c["ok"]) / n if n else 1.0,
                         "reasons": {k: v for k, v in c.items() if k != "ok"}}
            totals[name].update(c)
        out["videos"][v.name] = rec
    for name, c in totals.items():
        n = sum(c.values())
        out[name] = {"frames": n, "fraction_failed": (n - c["ok"]) / n if n else None,
                     "reasons": {k: v for k, v in c.items() if k != "ok"}}
    return out


@click.command()
@click.argument("videos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--basis", required=True, type=click.Path(exists=True), help="Landmark basis (.npz) or official basics/ folder.")
@click.option("--every", default=5, show_default=True)
def main(videos: tuple[str, ...], basis: str, every: int) -> None:
    click.echo(json.dumps(pipeline_failures(videos, basis, every), indent=1))


if __name__ == "__main__":
    main()
