"""Statistics: means with seeded 95% bootstrap intervals, paired comparisons on shared samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Summary:
    mean: float
    low: float
    high: float
    n: int
    failed: int


def bootstrap_ci(values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile-BCa bootstrap interval of the mean (scipy.stats.bootstrap, seeded)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2 or np.all(v == v[0]):
        m = float(v.mean()) if len(v) else math.nan
        return m, m
    res = stats.bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          random_state=np.random.default_rng(seed), method="BCa")
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa can fail on degenerate data
        res = stats.bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                              random_state=np.random.default_rng(seed), method="percentile")
        lo, hi = res.confidence_interval
    return float(lo), float(hi)


def summarize(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per (method, metric): mean, 95% CI, ``n`` samples scored and ``failed`` samples. ``df`` is the
    tidy store frame. Counts are per (method, sample) pair: a pair that failed before scoring
    (``__sample__`` / ``__generate__`` error rows, when ``df`` holds them) counts as failed for every
    metric, and a pair is counted once however many rows it has. Infinite values (PSNR of identical
    frames) are reported as inf with no interval."""
    special = df["metric"].str.startswith("__")
    early = df[special & df["error"].notna()].groupby("method")["sample_id"].apply(set).to_dict()
    scored = df[~special]
    metrics = list(dict.fromkeys(scored["metric"]))
    groups = dict(iter(scored.groupby(["method", "metric"], sort=False)))
    out = []
    for method in dict.fromkeys(df["method"]):
        for metric in metrics:
            g = groups.get((method, metric))
            lost = set(early.get(method, set()))
            if g is None:
                if lost:
                    out.append((method, metric, math.nan, math.nan, math.nan, 0, len(lost)))
                continue
            lost |= set(g.loc[g["error"].notna(), "sample_id"])
            failed = len(lost)
            vals = g["value"].to_numpy(np.float64)
            finite = vals[np.isfinite(vals)]
            if len(finite) == 0:
                inf = vals[np.isinf(vals)]
                m = float(inf[0]) if len(inf) else math.nan
                out.append((method, metric, m, m, m, int(len(inf)), failed))
                continue
            lo, hi = bootstrap_ci(finite, seed=seed)
            out.append((method, metric, float(finite.mean()), lo, hi, int(len(finite)), failed))
    return pd.DataFrame(out, columns=["method", "metric", "mean", "low", "high", "n", "failed"])


@dataclass(frozen=True)
class Paired:
    metric: str
    a: str
    b: str
    n: int
    mean_diff: float
    low: float
    high: float
    p_value: float


def paired_difference(df: pd.DataFrame, metric: str, a: str, b: str, seed: int = 0) -> Paired:
    """Mean of (b - a) over samples both scored (finite), its bootstrap CI and a Wilcoxon
    signed-rank p-value. ``df`` columns: method, sample_id, metric, value."""
    sub = df[(df["metric"] == metric) & df["method"].isin([a, b])]
    wide = sub.pivot_table(index="sample_id", columns="method", values="value", aggfunc="first")
    if a not in wide or b not in wide:
        return Paired(metric, a, b, 0, math.nan, math.nan, math.nan, math.nan)
    d = (wide[b] - wide[a]).to_numpy(np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return Paired(metric, a, b, 0, math.nan, math.nan, math.nan, math.nan)
    lo, hi = bootstrap_ci(d, seed=seed)
    p = math.nan
    if len(d) >= 2 and np.any(d != 0):
        p = float(stats.wilcoxon(d, zero_method="wilcox").pvalue)
    return Paired(metric, a, b, int(len(d)), float(d.mean()), lo, hi, p)
