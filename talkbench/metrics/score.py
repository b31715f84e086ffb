"""Library form of ``talkbench score``: score one video (optionally against a reference video)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from talkbench.critics.domain import synthetic_label
from talkbench.errors import ConfigError, TalkbenchError
from talkbench.metrics import build_scorers, check_metric_names
from talkbench.metrics.base import ScoreInput, missing_inputs
from talkbench.metrics.pairing import pair_frames
from talkbench.types import Sample

PAIRED_DEFAULT = ("psnr", "ssim", "lmd")
NO_REFERENCE_DEFAULT = ("lse",)
DEFAULT_METRICS = PAIRED_DEFAULT  # kept for callers that import it
AUDIO_METRICS = ("lse", "lse-valid")  # scorers that read the clip's audio


def default_metrics(reference: bool) -> tuple[str, ...]:
    """With a reference, the paired metrics; without one, those that need no reference."""
    return PAIRED_DEFAULT if reference else NO_REFERENCE_DEFAULT


def _clip(path: str | Path, crop: str, size: int | None):
    from talkbench.faces.crop import load_clip

    return load_clip(Sample("score", "score", Path(path).name, Path(path)), size=size, crop=crop, landmarks=False,
                     allow_no_audio=True)


def _clips_on_reference_track(video: str | Path, reference: str | Path, size: int | None) -> tuple[Any, Any, list[str]]:
    """``--crop auto`` with a reference: the reference's face track crops both videos, so a generated clip
    is compared on the same window as its ground truth (cropping each on its own moved the window: LRW
    static PSNR 13.72 against the run's 18.61). A generated video of the reference's frame size is cut
    with the reference's windows; one that is already a square crop of the crop size (a run's output, or a
    method's 128-px clip) is used as given, the reference cropped by its track as a run does; anything
    else is cropped on its own track, with a warning."""
    from dataclasses import replace

    from talkbench.faces.crop import crop_frames
    from talkbench.io.video import probe

    ref = _clip(reference, "auto", size)
    side = int(ref.frames.shape[1])
    g, r = probe(video), probe(reference)
    if (g.width, g.height) == (r.width, r.height):
        native = _clip(video, "none", None)
        windows = ref.meta["windows"]
        n = min(len(native.frames), len(windows))
        frames = crop_frames(native.frames[:n], windows[:n], side)
        # The faces seen are the reference track's (the one track both videos are cut with).
        meta = {**native.meta, "faces": ref.meta.get("faces", {})}
        return replace(native, frames=frames, meta=meta, crop_policy=f"reference track: {ref.crop_policy}"), ref, []
    if g.width == g.height == side:
        gen = _clip(video, "none", None)
        meta = {**gen.meta, "faces": ref.meta.get("faces", {})}
        return (replace(gen, meta=meta, crop_policy=f"as given ({side}x{side}, taken as the reference track's crop)"),
                ref, [])
    gen = _clip(video, "auto", size)
    return gen, ref, [f"{Path(video).name} ({g.width}x{g.height}) is neither the reference's frame size "
                      f"({r.width}x{r.height}) nor a {side}-px crop: each video was cropped on its own face track, so "
                      "the windows may differ (to reproduce a run's number: talkbench score --run-dir DIR --sample ID "
                      "--method M)"]


def critic_choice(metric: str, provenance: dict[str, Any], explicit: bool) -> str:
    """How the critic of ``metric`` was chosen: named by the user, the official file found, or the default
    fallback to the shipped synthetic critic."""
    from talkbench.critics.domain import OFFICIAL_FILES, ROLE_OPTION, synthetic_critics

    if explicit:
        return "explicit (named by the user)"
    synth = synthetic_critics(provenance)
    if synth:
        role = next(iter(synth))
        return (f"default fallback to the shipped SYNTHETIC critic: no official {OFFICIAL_FILES[role]} found in "
                f"$TALKBENCH_WEIGHTS; pass {ROLE_OPTION[role]} FILE to choose")
    return "default (official file found)"


def critic_label(provenance: dict[str, Any]) -> str:
    """One line naming a critic's weights file and sha256, and saying when it was trained on the
    synthetic corpus (its numbers are then only comparable within that domain)."""
    parts = []
    for role in ("syncnet", "lipreader"):
        rec = provenance.get(role)
        if not isinstance(rec, dict):
            continue
        name = Path(rec.get("path") or rec.get("file") or "?").name
        data = (rec.get("card") or {}).get("data") or {}
        synthetic = str(data.get("dataset", "")).startswith("synth")
        parts.append(f"{role} {name} (sha256 {str(rec.get('sha256', ''))[:12]})" +
                     (": SYNTHETIC critic trained on the synthetic corpus, numbers comparable only within that domain"
                      if synthetic else ""))
    return "; ".join(parts)


def score_video(
    video: str | Path,
    reference: str | Path | None = None,
    metrics: list[str] | tuple[str, ...] | None = None,
    crop: str = "auto",
    size: int | None = None,
    device: str = "cpu",
    options: dict[str, dict[str, Any]] | None = None,
    word: str | None = None,
) -> dict[str, Any]:
    """``{"metrics": {...}, "frames": N, "critics": {...}, "errors": {...}, "warnings": [...], "faces": {...}}``.

    ``metrics=None``: :func:`default_metrics`. ``crop="auto"`` detects, tracks and crops both videos to
    ``size`` (128 when None); ``crop="none"`` uses the frames as given: native size unless ``size`` is
    given (SyncNet still resizes to its 224 input). Paired metrics need ``reference``. A metric that
    fails is reported under ``errors`` and the others are still computed; a file that cannot be used
    (truncated, no face...) is an error under ``errors["input"]``. A file without audio fails only
    the metrics that need audio. ``word``: the spoken word, for lip-reading accuracy.
    Unknown metric names are a :class:`ConfigError`, raised before any decoding.
    """
    names = list(metrics) if metrics is not None else list(default_metrics(reference is not None))
    check_metric_names(names)  # unknown names fail here (ConfigError), before any decoding or cropping
    out: dict[str, Any] = {"metrics": {}, "frames": 0, "critics": {}, "errors": {}, "warnings": [],
                           "versions": {}, "crop_policy": None, "faces": {}, "synthetic_critics": {}}
    track_warnings: list[str] = []
    try:
        if crop == "auto" and reference:
            gen, ref, track_warnings = _clips_on_reference_track(video, reference, size)
        else:
            gen = _clip(video, crop, size)
            ref = _clip(reference, crop, size) if reference else None
    except ConfigError:
        raise
    except TalkbenchError as exc:  # a bad input file is this item's failure, not a usage error
        out["errors"]["input"] = str(exc)
        return out
    warnings: list[str] = track_warnings + [f"{Path(video).name}: {n}" for n in gen.meta.get("notes", [])]
    if ref is not None:
        warnings += [f"{Path(reference).name}: {n}" for n in ref.meta.get("notes", [])]
    gen_frames, ref_frames = gen.frames, None
    if ref is not None:
        try:
            gen_frames, ref_frames, pair_warnings = pair_frames(gen.frames, ref.frames)
            warnings += pair_warnings
        except TalkbenchError as exc:
            out["errors"]["input"] = str(exc)
            return out
    item = ScoreInput(sample_id=Path(video).name, generated=gen_frames, audio=gen.audio, reference=ref_frames,
                      word=word)
    out.update(frames=len(gen_frames), warnings=warnings, crop_policy=gen.crop_policy, faces=gen.meta.get("faces", {}))
    if gen.meta.get("no_audio"):
        for name in [n for n in names if n in AUDIO_METRICS]:
            out["errors"][name] = f"{video}: no audio stream (this metric needs the clip's audio)"
    scorers, unavailable = build_scorers([n for n in names if n not in out["errors"]], device, options or {})
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
            explicit = bool((options or {}).get(name, {}).get("weights"))
            out["critics"][name] = {**prov, "choice": critic_choice(name, prov, explicit)}
            if label := synthetic_label(name, prov):
                out["synthetic_critics"][name] = label
                if not explicit:
                    out["warnings"].append(label)
    return out
