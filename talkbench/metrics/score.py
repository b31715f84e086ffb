"""Library form of ``talkbench score``: score one video (optionally against a reference video)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from talkbench.errors import ConfigError, MetricError, TalkbenchError
from talkbench.metrics import build_scorers
from talkbench.metrics.base import ScoreInput, missing_inputs
from talkbench.metrics.pairing import pair_frames
from talkbench.types import PROTOCOL_SIZE, Sample

DEFAULT_METRICS = ("psnr", "ssim", "lmd")


def _clip(path: str | Path, crop: str, size: int):
    from talkbench.faces.crop import load_clip

    return load_clip(Sample("score", "score", Path(path).name, Path(path)), size=size, crop=crop, landmarks=False)


def score_video(
    video: str | Path,
    reference: str | Path | None = None,
    metrics: list[str] | tuple[str, ...] = DEFAULT_METRICS,
    crop: str = "auto",
    size: int = PROTOCOL_SIZE,
    device: str = "cpu",
    options: dict[str, dict[str, Any]] | None = None,
    word: str | None = None,
) -> dict[str, Any]:
    """``{"metrics": {...}, "frames": N, "critics": {...}, "errors": {...}, "warnings": [...]}``.

    ``crop="auto"`` detects, tracks and crops both videos to ``size``; ``crop="none"`` uses the
    frames as given (resized to ``size`` only when needed). Paired metrics need ``reference``;
    a metric that fails is reported under ``errors`` and the others are still computed. ``word``: the
    spoken word, for lip-reading accuracy (landmarks are then detected on the generated frames).
    """
    try:  # the same construction as a run's; unknown names fail here, before any decoding or cropping
        scorers, unavailable = build_scorers(list(metrics), device, options or {})
    except ConfigError as exc:
        raise MetricError(exc.reason) from exc
    gen = _clip(video, crop, size)
    ref = _clip(reference, crop, size) if reference else None
    warnings: list[str] = []
    gen_frames, ref_frames = gen.frames, None
    if ref is not None:
        gen_frames, ref_frames, warnings = pair_frames(gen.frames, ref.frames)
    item = ScoreInput(sample_id=Path(video).name, generated=gen_frames, audio=gen.audio, reference=ref_frames,
                      word=word)
    out: dict[str, Any] = {"metrics": {}, "frames": len(gen_frames), "critics": {}, "errors": {}, "warnings": warnings,
                           "versions": {}, "crop_policy": gen.crop_policy}
    out["errors"].update({name: f"metric unavailable: {why}" for name, why in unavailable.items()})
    for name, scorer in scorers.items():
        if missing := missing_inputs(scorer, item):
            flag = {"reference": "--reference", "word": "--word"}
            out["errors"][name] = "needs " + ", ".join(flag.get(m, m) for m in missing)
            continue
        try:
            values = scorer.score(item)
        except TalkbenchError as exc:
            out["errors"][name] = exc.reason
            for info in scorer.outputs:
                out["metrics"][info.name] = math.nan
            continue
        out["metrics"].update(values)
        for info in scorer.outputs:
            out["versions"][info.name] = info.version
        if prov := scorer.provenance():
            out["critics"][name] = prov
    return out
