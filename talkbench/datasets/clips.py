"""Protocol clips of a dataset split for the trainers: cached 128-px crops and 16 kHz audio, each
failing sample skipped with its reason (a bad clip never ends a training run)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from talkbench.errors import TalkbenchError
from talkbench.progress import shown
from talkbench.types import PROTOCOL_SIZE, Clip, Sample


@dataclass(frozen=True)
class ClipsConfig:
    """Where a trainer's clips come from; the trainers' configs extend it."""

    dataset: str = "synth-lrs2"
    root: str | None = None
    split: str = "train"
    val_split: str = "val"


def protocol_clips(dataset: str, root: str | None, split: str, limit: int | None = None, min_frames: int = 1,
                   landmarks: bool = False, desc: str = "clips") -> Iterator[tuple[Sample, Clip]]:
    """(sample, clip) for the first ``limit`` samples of ``split`` that load and have ``min_frames``."""
    from talkbench.datasets import DATASETS
    from talkbench.faces.crop import load_clip

    reader = DATASETS.get(dataset)(root)
    for i, s in enumerate(tqdm(reader.samples(split), desc=f"{desc} {split}", unit="clip", disable=not shown())):
        if limit is not None and i >= limit:
            break
        try:
            clip = load_clip(s, size=PROTOCOL_SIZE, landmarks=landmarks)
        except TalkbenchError as exc:
            tqdm.write(f"skip {s.sample_id}: {exc}")
            continue
        if clip.num_frames >= min_frames:
            yield s, clip


def sidecar_landmarks(sample: Sample, clip: Clip) -> np.ndarray | None:
    """The exact per-frame landmarks a dataset ships beside a clip (the synthetic corpus's sidecar, video
    pixels) mapped into the protocol crop through the crop windows: (T, 68, 2) float32 in crop pixels, or
    None when there are none (real datasets) or they are not finite."""
    path = sample.meta.get("landmarks")
    if not path or "windows" not in clip.meta:
        return None
    lm, w = np.load(path), np.asarray(clip.meta["windows"])
    n = min(len(lm), len(w), clip.num_frames)
    s = clip.frames.shape[1] / (w[:n, 2] - w[:n, 0])
    out = ((lm[:n] - w[:n, None, :2]) * s[:, None, None]).astype(np.float32)
    return out if np.isfinite(out).all() else None


def spaced_starts(n: int, k: int, gap: int, rng: np.random.Generator) -> list[int]:
    """Up to ``k`` window starts in [0, n) at least ``gap`` apart, uniformly placed."""
    slack = n - 1 - (k - 1) * gap
    while slack < 0 and k > 1:
        k -= 1
        slack = n - 1 - (k - 1) * gap
    offs = np.sort(rng.integers(0, max(slack, 0) + 1, k))
    return [int(o + i * gap) for i, o in enumerate(offs)]
