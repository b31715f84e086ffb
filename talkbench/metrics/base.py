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


@dataclass(frozen=True)
class MetricInfo:
    """Metadata of one output metric (written into run.json and used by reports)."""

    name: str
    higher_is_better: bool
    kind: Literal["paired", "no-reference"]
    version: str
    description: str = ""
    unit: str = ""
    # "sample": one value per sample (rows in ``results``); "dataset": one value per method over the
    # whole run (FID, FVD), computed from per-sample features at the end of a run (``dataset_results``).
    level: Literal["sample", "dataset"] = "sample"


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
    sample_rate: int = 16000
    word: str | None = None
    reference_landmarks: np.ndarray | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Scorer(Protocol):
    """Computes ``outputs`` for one sample. Raise :class:`talkbench.errors.MetricError` for a
    per-item failure (the runner records it); return NaN for an undefined value with a reason in
    ``details``."""

    name: str
    outputs: tuple[MetricInfo, ...]

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
