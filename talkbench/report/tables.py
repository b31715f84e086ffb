"""The Table-1 layout (methods x metrics, "mean ± CI", best in bold) and its exports."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from talkbench.metrics.base import MetricInfo

# Column order of the CALS paper's Table 1, then anything else measured. Direction, label and version
# come only from the MetricInfo stored with the run.
TABLE_METRICS = ("psnr", "ssim", "lmd", "lse_d", "lse_c", "lipread_top1")
Infos = Mapping[str, MetricInfo]


def table_metrics(summary: pd.DataFrame, infos: Infos) -> list[str]:
    """The summary's metrics that are table columns: those with a stored MetricInfo marked in_table."""
    present = [m for m in dict.fromkeys(summary["metric"]) if m in infos and infos[m].in_table]
    return [m for m in TABLE_METRICS if m in present] + [m for m in present if m not in TABLE_METRICS]


def higher_is_better(metric: str, infos: Infos) -> bool:
    return infos[metric].higher_is_better


def _fmt(mean: float, low: float, high: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return "n/a"
    if math.isinf(mean):
        return "∞ (identical)"
    half = max(mean - low, high - mean)
    return f"{mean:.3f} ± {half:.3f}"


def build_table(summary: pd.DataFrame, infos: Infos) -> tuple[list[str], list[dict]]:
    """Rows ``{"method", cells: {metric: {"text", "best", "n", "failed"}}}``; best in bold among
    real methods (not ``gt``)."""
    metrics = table_metrics(summary, infos)
    methods = list(dict.fromkeys(summary["method"]))
    # Best in bold: every method whose mean equals the best at the printed precision (ties: all or none).
    best: dict[str, set[str]] = {}
    for m in metrics:
        sub = summary[(summary["metric"] == m) & (summary["method"] != "gt") & (summary["n"] > 0)]
        sub = sub[sub["mean"].apply(lambda v: math.isfinite(v))]
        if len(sub):
            top = sub["mean"].max() if infos[m].higher_is_better else sub["mean"].min()
            best[m] = set(sub.loc[sub["mean"].round(3) == round(top, 3), "method"])
    rows = []
    for method in methods:
        cells = {}
        for m in metrics:
            r = summary[(summary["method"] == method) & (summary["metric"] == m)]
            if len(r) == 0:
                cells[m] = {"text": "–", "best": False, "n": 0, "failed": 0}
                continue
            r = r.iloc[0]
            cells[m] = {"text": _fmt(r["mean"], r["low"], r["high"], int(r["n"])), "best": method in best.get(m, ()),
                        "n": int(r["n"]), "failed": int(r["failed"]), "mean": float(r["mean"]),
                        "low": float(r["low"]), "high": float(r["high"])}
        rows.append({"method": method, "cells": cells})
    return metrics, rows


def header(metric: str, infos: Infos) -> str:
    info = infos.get(metric)
    return info.header if info else metric


def _head(metric: str, infos: Infos, marked: set[str] | frozenset[str]) -> str:
    """The column header; ``marked`` columns (a synthetic critic's) carry a dagger explained below."""
    return header(metric, infos) + (" †" if metric in marked else "")


def to_markdown(metrics: list[str], rows: list[dict], infos: Infos, marked: set[str] | frozenset[str] = frozenset()) -> str:
    lines = ["| Method | " + " | ".join(_head(m, infos, marked) for m in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for r in rows:
        cells = [f"**{r['cells'][m]['text']}**" if r["cells"][m]["best"] else r["cells"][m]["text"] for m in metrics]
        lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_latex(metrics: list[str], rows: list[dict], infos: Infos, marked: set[str] | frozenset[str] = frozenset()) -> str:
    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("±", r"$\pm$").replace("∞", r"$\infty$").replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("†", r"\dag{}")

    lines = [r"\begin{tabular}{l" + "c" * len(metrics) + "}", r"\toprule",
             "Method & " + " & ".join(esc(_head(m, infos, marked)) for m in metrics) + r" \\", r"\midrule"]
    for r in rows:
        cells = [(r"\textbf{" + esc(r["cells"][m]["text"]) + "}") if r["cells"][m]["best"] else esc(r["cells"][m]["text"])
                 for m in metrics]
        lines.append(esc(r["method"]) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
