"""The steps of evaluating one (method, sample) pair, shared by every executor (the serial loop in
:mod:`talkbench.runner`, the pipelined :mod:`talkbench.pipeline`, :mod:`talkbench.ray_executor`):
prepare a sample, build its requests, generate (through the generation cache), check the result, build
the scorers' input and score it. ``r`` is the run's shared state (``talkbench.runner._Run``): loaded
methods, scorers, store, record, generation cache. Nothing here imports the runner or an executor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from talkbench.conditions import mask_span_frames
from talkbench.errors import ConfigError, TalkbenchError
from talkbench.store import Row
from talkbench.types import GenRequest, GenResult, lower_half_masked


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} requested but CUDA is not available")
    return device


def score_rows(scorers: dict[str, Any], item: Any, method: str, dataset: str, sample_id: str,
               not_applicable: dict[str, str] | None = None, run_dir: Path | None = None) -> list[Row]:
    """One sample's rows from every scorer. A scorer whose declared inputs (``requires``) the item lacks
    writes no row (e.g. lip reading on a sentence dataset: the run record says so); nor does one that
    says the item is outside its scope (its reason goes into ``not_applicable`` by scorer name: not a
    failure); a failure is a row with the error, never an exception. Dataset-level scorers (FID, FVD) save
    the sample's features under ``run_dir`` instead (:mod:`talkbench.metrics.dataset_level`)."""
    from talkbench.metrics.base import missing_inputs
    from talkbench.metrics.base import not_applicable as outside_scope
    from talkbench.metrics.dataset_level import feature_rows, is_dataset_level

    rows = []
    for name, scorer in scorers.items():
        if missing_inputs(scorer, item):
            continue
        if is_dataset_level(scorer):
            rows.extend(feature_rows(scorer, item, method, dataset, run_dir))
            continue
        try:
            why = outside_scope(scorer, item)
        except Exception as exc:  # a scope check that fails is that scorer's failure on this item
            rows.extend(Row(method, dataset, sample_id, info.name, math.nan, f"{type(exc).__name__}: {exc}")
                        for info in scorer.outputs)
            continue
        if why is not None:
            if not_applicable is not None:
                not_applicable[name] = why
            continue
        try:
            values = scorer.score(item)
            rows.extend(Row(method, dataset, sample_id, k, float(v)) for k, v in values.items())
        except TalkbenchError as exc:
            rows.extend(Row(method, dataset, sample_id, info.name, math.nan, exc.reason) for info in scorer.outputs)
        except Exception as exc:  # a scorer bug must not end the run; it is recorded with its type
            rows.extend(Row(method, dataset, sample_id, info.name, math.nan, f"{type(exc).__name__}: {exc}")
                        for info in scorer.outputs)
    return rows


def _unsupported(r: Any, spec: Any) -> str | None:
    """Why ``spec`` cannot run (its method failed to load, or cannot honour a condition), else None."""
    if spec.base in r.broken:
        return f"method unavailable: {r.broken[spec.base]}"
    card = r.methods[spec.base].card
    missing = [c for c in spec.needs if c not in card.supports]
    if missing:
        return f"{spec.base} cannot honour the {'/'.join(missing)} condition (card.supports={card.supports})"
    return None


def _generate(r: Any, spec: Any, request: GenRequest, clip: Any) -> tuple[GenResult | None, str | None]:
    """Frames for one (method spec, sample): from the generation cache, else from the method; a result
    of the wrong shape or dtype is an error, never scored."""
    return generate_many(r, spec, [request], [clip.frames.shape], batch_size=1)[0]


def check_result(result: GenResult, shape: tuple[int, ...]) -> str | None:
    """Why a method's result cannot be scored (its error, or frames of the wrong shape or dtype)."""
    err = result.error
    if err is None and (result.frames is None or result.frames.shape != shape or result.frames.dtype != np.uint8):
        got = None if result.frames is None else (result.frames.shape, str(result.frames.dtype))
        err = f"method returned {got}, expected {shape} uint8"
    return err


def generate_many(r: Any, spec: Any, requests: list[GenRequest], shapes: list[tuple[int, ...]],
                  batch_size: int = 1,
                  call: Callable[[list[GenRequest]], list[GenResult]] | None = None,
                  ) -> list[tuple[GenResult | None, str | None]]:
    """:func:`_generate` for several samples of one method spec: cache hits are read, the misses go to
    ``Method.generate`` ``batch_size`` requests at a time (``call`` replaces the method's own
    ``generate``: a Ray actor's). A batch that raises is retried one request at a time, so an exception
    fails only its own sample, as in the serial path."""
    call = call or r.methods[spec.base].generate
    out: list[tuple[GenResult | None, str | None]] = [(None, None)] * len(requests)
    keys = [r.gen_cache.key(r.methods[spec.base], spec.spec, q, r.protocol) for q in requests]
    misses = []
    for i, (q, key, shape) in enumerate(zip(requests, keys, shapes)):
        cached = r.gen_cache.get(key)
        if cached is not None and cached.shape == shape and cached.dtype == np.uint8:
            out[i] = (GenResult(q.sample_id, cached, meta={"gen_cache": "hit"}), None)
        else:
            misses.append(i)

    def one(i: int) -> tuple[GenResult | None, str | None]:
        try:
            return call([requests[i]])[0], None
        except Exception as exc:
            return None, f"{type(exc).__name__}: {exc}"

    step = max(1, batch_size)
    for b in range(0, len(misses), step):
        idx = misses[b : b + step]
        if len(idx) == 1:
            got = [one(idx[0])]
        else:
            try:
                got = [(res, None) for res in call([requests[i] for i in idx])]
            except Exception:
                got = [one(i) for i in idx]
        for i, (res, err) in zip(idx, got):
            if err is None:
                err = check_result(res, shapes[i])
                if err is None:
                    r.gen_cache.put(keys[i], res.frames, {"method": spec.spec, "sample_id": requests[i].sample_id})
            out[i] = (res, err)
    return out


def prepare(sample: Any, size: int, crop: str) -> tuple[Any, str | None]:
    """Decode, crop and landmark one sample: ``(clip, None)``, or ``(None, why)`` when it cannot be
    (MemoryError, a decoder's own error...: this sample fails, the run goes on)."""
    from talkbench.faces.crop import load_clip

    try:
        return load_clip(sample, size=size, crop=crop), None
    except Exception as exc:
        why = str(exc) if isinstance(exc, TalkbenchError) else f"{type(exc).__name__}: {exc} ({sample.video_path})"
        return None, why


def note_sample(r: Any, sample: Any, clip: Any) -> int | None:
    """Record a clip's notes in run.json; returns the number of faces seen (for a ``__faces__`` row)."""
    if notes := clip.meta.get("notes"):
        # E.g. audio shorter than the video (only the frames with audio are scored), several faces.
        r.record.setdefault("sample_notes", {})[sample.sample_id] = list(notes)
    return (clip.meta.get("faces") or {}).get("persistent_faces")


def faces_rows(r: Any, m: str, sample_id: str, faces: int | None) -> list[Row]:
    """Several faces: their number (which one was followed: run.json sample_notes)."""
    return [Row(m, r.config.dataset, sample_id, "__faces__", float(faces))] if faces and faces > 1 else []


def base_request(sample: Any, clip: Any) -> GenRequest:
    """The protocol's request for one sample: first frame as reference, the target crops with the lower
    half zeroed as pose prior, the clip's audio; the ground truth for oracle methods."""
    return GenRequest(sample_id=sample.sample_id, reference=clip.frames[0], pose_prior=lower_half_masked(clip.frames),
                      audio=clip.audio, ground_truth=clip.frames)


def spec_request(request: GenRequest, spec: Any, num_frames: int) -> GenRequest:
    """``request`` under a method spec's conditions (masked audio span, limited context)."""
    if not spec.needs:
        return request
    masked = mask_span_frames(num_frames, spec.mask_span) if spec.mask_span else ()
    return replace(request, mask_frames=masked, context_frames=spec.context_frames)


def score_input(sample: Any, clip: Any, frames: np.ndarray, mask_frames: Any = ()) -> Any:
    """What every scorer sees for one generated clip (``talkbench score --run-dir`` builds the same)."""
    from talkbench.metrics.base import ScoreInput

    return ScoreInput(
        sample_id=sample.sample_id, generated=frames, audio=clip.audio, reference=clip.frames,
        word=sample.word, reference_landmarks=clip.landmarks,
        meta={"alignment": sample.meta.get("alignment"), "transcript": sample.transcript,
              "mask_frames": tuple(mask_frames)},
    )
