"""Metrics: pure functions in ``functional/``, scorers registered here by name (lazy).

Registry values are factories ``factory(device="cpu", **options) -> Scorer``.
"""

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from talkbench.errors import ConfigError
from talkbench.metrics.base import MetricInfo, ScoreInput, Scorer
from talkbench.registry import Registry

log = logging.getLogger(__name__)

METRICS: Registry = Registry("metric", entry_point_group="talkbench.metrics")
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
    "fid": "talkbench.metrics.distribution:FIDScorer",
    "fvd": "talkbench.metrics.distribution:FVDScorer",
    "lpips": "talkbench.metrics.perceptual:LPIPSScorer",
    "csim-arcface": "talkbench.metrics.identity_arcface:ArcFaceScorer",
    "cpbd": "talkbench.metrics.sharpness:CPBDScorer",
}.items():
    METRICS.register(_name, _spec)


def check_metric_names(names: Sequence[str]) -> None:
    """ConfigError (with suggestions) for a name no scorer is registered under; nothing is built."""
    for name in names:
        if name not in METRICS:
            try:
                METRICS.get(name)
            except KeyError as exc:
                raise ConfigError(str(exc.args[0])) from exc


def build_scorers(names: Sequence[str], device: str = "cpu",
                  options: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Scorers by name, and ``{name: why}`` for those that cannot be built here (a missing critic, an
    optional package not installed): recorded, never fatal. Unknown names are a ConfigError."""
    check_metric_names(names)
    options = options or {}
    scorers, unavailable = {}, {}
    for name in names:
        try:
            scorers[name] = METRICS.get(name)(device=device, **options.get(name, {}))
        except Exception as exc:  # ImportError, a MetricError for missing weights, ...: recorded
            unavailable[name] = f"{type(exc).__name__}: {exc}"
            log.warning("metric %s unavailable: %s", name, unavailable[name])
    return scorers, unavailable


__all__ = ["METRICS", "MetricInfo", "ScoreInput", "Scorer", "build_scorers", "check_metric_names"]
