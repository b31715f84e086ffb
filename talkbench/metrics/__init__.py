"""Metrics: pure functions in ``functional/``, scorers registered here by name (lazy)."""

from talkbench.metrics.base import MetricInfo, ScoreInput, Scorer
from talkbench.registry import Registry

METRICS: Registry = Registry("metric")
# name -> factory(device="cpu", **options) -> Scorer. Filled by the metrics and critics issues.

__all__ = ["METRICS", "MetricInfo", "ScoreInput", "Scorer"]
