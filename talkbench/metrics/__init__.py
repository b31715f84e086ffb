"""Metrics: pure functions in ``functional/``, scorers registered here by name (lazy).

Registry values are factories ``factory(device="cpu", **options) -> Scorer``.
"""

from talkbench.metrics.base import MetricInfo, ScoreInput, Scorer
from talkbench.registry import Registry

METRICS: Registry = Registry("metric")
for _name, _spec in {
    "psnr": "talkbench.metrics.image:PSNRScorer",
    "ssim": "talkbench.metrics.image:SSIMScorer",
    "lmd": "talkbench.metrics.landmarks:LMDScorer",
    "lmd-span": "talkbench.metrics.landmarks:LMDSpanScorer",
    "lvd": "talkbench.metrics.temporal:LandmarkVelocityScorer",
    "csim": "talkbench.metrics.identity:IdentityScorer",
    "lse": "talkbench.metrics.sync:LSEScorer",
    "lse-valid": "talkbench.metrics.sync:LSEValidScorer",
    "lipread": "talkbench.metrics.lipread:LipReadingScorer",
}.items():
    METRICS.register(_name, _spec)

__all__ = ["METRICS", "MetricInfo", "ScoreInput", "Scorer"]
