"""Regression checks between two runs (e.g. two checkpoints of one method) on their shared samples."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from talkbench.errors import ConfigError
from talkbench.results import RunResults, load_run
from talkbench.stats import Paired, paired_difference


@dataclass(frozen=True)
class Verdict:
    method: str
    paired: Paired
    higher_is_better: bool
    regression: bool
    improvement: bool
    dataset_level: bool = False  # FID/FVD: one value per run, interval from the two bootstrap intervals


def comparable_metrics(ra: RunResults, rb: RunResults, metrics: list[str] | None = None) -> list[str]:
    """Output metrics to compare: those asked for (scorer names such as ``lse`` or output names such as
    ``lse_c``), else every table metric both runs have. Refuses (ConfigError, naming the metric) a metric
    without stored metadata or whose stored versions differ, e.g. LSE from two different critics."""
    if metrics:
        wanted = [m for m in ra.expand_metrics(metrics) if m in rb.expand_metrics(metrics)]
    else:
        wanted = sorted(m for m in set(ra.metrics) & set(rb.metrics) if ra.metrics[m].in_table)
    for m in wanted:
        ia, ib = ra.info(m), rb.info(m)
        if ia is None or ib is None:
            raise ConfigError(f"metric {m!r} has no stored metadata (version, direction) in "
                              f"{ra.path if ia is None else rb.path}; cannot compare it")
        if ia.version != ib.version:
            raise ConfigError(f"metric {m!r} was computed by different versions ({ia.version} in {ra.path}, "
                              f"{ib.version} in {rb.path}); numbers from different critics or definitions "
                              "are never compared")
    return wanted


def compare_runs(run_a: str | Path, run_b: str | Path, metrics: list[str] | None = None,
                 alpha: float = 0.05, min_effect: float = 0.0) -> list[Verdict]:
    """For every method present in both runs and every metric: paired difference B - A on the
    samples both scored. A regression is a difference in the worse direction whose 95% CI excludes
    zero, whose Wilcoxon p < ``alpha`` and whose size exceeds ``min_effect``."""
    ra, rb = load_run(run_a), load_run(run_b)
    wanted = comparable_metrics(ra, rb, metrics)
    a = ra.scored.assign(method=lambda d: d["method"] + "@A")
    b = rb.scored.assign(method=lambda d: d["method"] + "@B")
    both = pd.concat([a, b])
    methods = sorted({m[:-2] for m in a["method"]} & {m[:-2] for m in b["method"]})
    out = []
    for method in methods:
        for metric in wanted:
            p = paired_difference(both, metric, f"{method}@A", f"{method}@B")
            if p.n == 0:
                continue
            hib = ra.metrics[metric].higher_is_better
            worse = p.mean_diff < 0 if hib else p.mean_diff > 0
            ci_excludes = (p.high < 0) if hib else (p.low > 0)
            ci_better = (p.low > 0) if hib else (p.high < 0)
            significant = not math.isnan(p.p_value) and p.p_value < alpha
            big = abs(p.mean_diff) > min_effect
            out.append(Verdict(method, p, hib, bool(worse and ci_excludes and significant and big),
                               bool(not worse and ci_better and significant and big)))
    out += _dataset_verdicts(ra, rb, [m for m in wanted if ra.metrics[m].level == "dataset"], min_effect)
    return out


def _dataset_verdicts(ra: RunResults, rb: RunResults, metrics: list[str], min_effect: float) -> list[Verdict]:
    """Dataset-level metrics (FID, FVD) have one value per run, not paired samples: B - A with the
    interval [low_B - high_A, high_B - low_A] from the two bootstrap intervals (conservative); a
    regression when that whole interval lies on the worse side and exceeds ``min_effect``. No p-value."""
    if ra.dataset.empty or rb.dataset.empty:
        return []
    out = []
    da, db = ra.dataset.set_index(["method", "metric"]), rb.dataset.set_index(["method", "metric"])
    for (method, metric) in sorted(set(da.index) & set(db.index)):
        if metric not in metrics:
            continue
        a, b = da.loc[(method, metric)], db.loc[(method, metric)]
        if not (math.isfinite(a["value"]) and math.isfinite(b["value"])):
            continue
        diff = float(b["value"] - a["value"])
        low, high = float(b["low"] - a["high"]), float(b["high"] - a["low"])
        p = Paired(metric, f"{method}@A", f"{method}@B", int(min(a["n"], b["n"])), diff, low, high, math.nan)
        hib = ra.metrics[metric].higher_is_better
        big = abs(diff) > min_effect
        worse_for_sure = (high < 0) if hib else (low > 0)
        better_for_sure = (low > 0) if hib else (high < 0)
        out.append(Verdict(method, p, hib, bool(worse_for_sure and big), bool(better_for_sure and big), True))
    return out


def to_markdown(verdicts: list[Verdict], run_a: str, run_b: str) -> str:
    lines = [f"### talkbench compare: `{run_a}` (A) vs `{run_b}` (B)", "",
             "| method | metric | n | mean(B − A) | 95% CI | p | verdict |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        p = v.paired
        verdict = "**regression**" if v.regression else ("improvement" if v.improvement else "no significant change")
        pval = "– (dataset-level)" if v.dataset_level else f"{p.p_value:.3g}"
        lines.append(f"| {v.method} | {p.metric} {'↑' if v.higher_is_better else '↓'} | {p.n} | {p.mean_diff:+.4f} | "
                     f"[{p.low:+.4f}, {p.high:+.4f}] | {pval} | {verdict} |")
    return "\n".join(lines) + "\n"
