"""Contracts between metrics and the runner.

A *scorer* computes one or more named metrics for one sample (e.g. ``lse`` -> ``lse_d``, ``lse_c``,
``av_offset``). Scorers are registered by name in :data:`talkbench.metrics.METRICS` as factories
``factory(device: str = "cpu", **options) -> Scorer``. Pure math lives in
``talkbench.metrics.functional``; scorers are thin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from talkbench.types import PROTOCOL_SR


@dataclass(frozen=True)
class MetricInfo:
    """Metadata of one output metric (written into run.json and used by reports)."""

    name: str
    higher_is_better: bool
    kind: Literal["paired", "no-reference"]
    version: str
    description: str = ""
    unit: str = ""
    label: str = ""  # column header in tables ("LSE-C"); the name when empty
    in_table: bool = True  # False: recorded and exported, but not a column of the summary table
    # "sample": one value per sample (rows in ``results``); "dataset": one value per method over the
    # whole run (FID, FVD), computed from per-sample features at the end of a run (``dataset_results``).
    level: Literal["sample", "dataset"] = "sample"

    @property
    def header(self) -> str:
        return f"{self.label or self.name} {'↑' if self.higher_is_better else '↓'}"

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> MetricInfo:
        """From the dict stored in run.json (older records lack the later fields)."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class ScoreInput:
    """Everything a scorer may use for one sample.

    ``generated`` / ``reference``: (T, S, S, 3) uint8 RGB protocol crops (reference = ground
    truth, None for no-reference scoring). ``reference_landmarks``: cached ground-truth landmarks
    (T, 68, 2) in crop pixels, when the runner has them. ``word``: LRW-style label.
    """

    sample_id: str
    generated: np.ndarray
    audio: np.ndarray
    reference: np.ndarray | None = None
    fps: float = 25.0
    sample_rate: int = PROTOCOL_SR
    word: str | None = None
    reference_landmarks: np.ndarray | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


INPUTS = ("reference", "word", "reference_landmarks", "mask_frames")


def missing_inputs(scorer: Any, item: ScoreInput) -> list[str]:
    """The inputs ``scorer.requires`` that ``item`` does not have."""
    have = {"reference": item.reference is not None, "word": item.word is not None,
            "reference_landmarks": item.reference_landmarks is not None,
            "mask_frames": bool(item.meta.get("mask_frames"))}
    return [r for r in getattr(scorer, "requires", ()) if not have[r]]


def not_applicable(scorer: Any, item: ScoreInput) -> str | None:
    """Why ``scorer`` does not apply to ``item`` (its optional ``not_applicable(item)`` method), else None.

    Not applicable is neither a value nor a failure: the item has what the scorer needs, but the
    scorer's own scope excludes it (an LRW word outside a word-subset lip reader's vocabulary). The
    runner writes no rows for it, counts it per reason in run.json, and the exit code ignores it."""
    fn = getattr(scorer, "not_applicable", None)
    return fn(item) if callable(fn) else None


@runtime_checkable
class Scorer(Protocol):
    """Computes ``outputs`` for one sample. Raise :class:`talkbench.errors.MetricError` for a
    per-item failure (the runner records it); return NaN for an undefined value with a reason in
    ``details``."""

    name: str
    outputs: tuple[MetricInfo, ...]
    # What the scorer needs beyond the generated frames and audio, among "reference", "word",
    # "reference_landmarks", "mask_frames": an item lacking one is not scored (no row), and the run
    # record says why. Scorers without the attribute need nothing more.
    requires: tuple[str, ...]
    # Optional: ``not_applicable(item) -> str | None``, a reason when the item is outside the scorer's
    # scope (see :func:`not_applicable`); scorers without it apply to every item they can score.

    def provenance(self) -> dict[str, Any]:
        """Critic weights (path, sha256, training data) and options; {} for pure metrics."""
        ...

    def score(self, item: ScoreInput) -> dict[str, float]:
        ...


@runtime_checkable
class DatasetScorer(Protocol):
    """A dataset-level metric (FID, FVD): ``features`` per sample (generated and reference rows), and
    ``compute`` over all samples of one method. ``level = "dataset"`` tells the runner."""

    name: str
    level: str
    outputs: tuple[MetricInfo, ...]

    def provenance(self) -> dict[str, Any]:
        ...

    def features(self, item: ScoreInput) -> tuple[np.ndarray, np.ndarray]:
        ...

    def compute(self, generated: list[np.ndarray], reference: list[np.ndarray]) -> dict[str, Any]:
        ...
