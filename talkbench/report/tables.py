"""The Table-1 layout (methods x metrics, "mean ± CI", best in bold) and its exports."""

from __future__ import annotations

import math

import pandas as pd

# Column order of the CALS paper's Table 1, then anything else measured.
TABLE_METRICS = ("psnr", "ssim", "lmd", "lse_d", "lse_c", "lipread_top1")
LABELS = {"psnr": "PSNR", "ssim": "SSIM", "lmd": "LMD", "lse_d": "LSE-D", "lse_c": "LSE-C",
          "lipread_top1": "Lip-read acc.", "lvd": "LVD", "csim": "CSIM", "av_offset": "AV offset"}
HIGHER = {"psnr": True, "ssim": True, "lmd": False, "lse_d": False, "lse_c": True, "lipread_top1": True,
          "lvd": False, "csim": True, "lmd_span": False, "lmd_outside": False, "lipread_top5": True,
          "lse_d_valid": False, "lse_c_valid": True}
HIDDEN_SUFFIXES = ("_frames_scored", "_frames_missing", "_identical_frames", "_pairs_scored")


def table_metrics(summary: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(summary["metric"]))
    shown = [m for m in TABLE_METRICS if m in present]
    shown += [m for m in present if m not in shown and m in HIGHER and not m.startswith("__")]
    return shown


def _fmt(mean: float, low: float, high: float, n: int) -> str:
    if n == 0 or math.isnan(mean):
        return "n/a"
    if math.isinf(mean):
        return "∞ (identical)"
    half = max(mean - low, high - mean)
    return f"{mean:.3f} ± {half:.3f}"


def build_table(summary: pd.DataFrame) -> tuple[list[str], list[dict]]:
    """Rows ``{"method", cells: {metric: {"text", "best", "n", "failed"}}}``; best in bold among
    real methods (not ``gt``)."""
    metrics = table_metrics(summary)
    methods = list(dict.fromkeys(summary["method"]))
    best: dict[str, str] = {}
    for m in metrics:
        sub = summary[(summary["metric"] == m) & (summary["method"] != "gt") & (summary["n"] > 0)]
        sub = sub[sub["mean"].apply(lambda v: math.isfinite(v))]
        if len(sub):
            idx = sub["mean"].idxmax() if HIGHER.get(m, True) else sub["mean"].idxmin()
            best[m] = sub.loc[idx, "method"]
    rows = []
    for method in methods:
        cells = {}
        for m in metrics:
            r = summary[(summary["method"] == method) & (summary["metric"] == m)]
            if len(r) == 0:
                cells[m] = {"text": "–", "best": False, "n": 0, "failed": 0}
                continue
            r = r.iloc[0]
            cells[m] = {"text": _fmt(r["mean"], r["low"], r["high"], int(r["n"])), "best": best.get(m) == method,
                        "n": int(r["n"]), "failed": int(r["failed"]), "mean": float(r["mean"]),
                        "low": float(r["low"]), "high": float(r["high"])}
        rows.append({"method": method, "cells": cells})
    return metrics, rows


def header(metric: str) -> str:
    arrow = "↑" if HIGHER.get(metric, True) else "↓"
    return f"{LABELS.get(metric, metric)} {arrow}"


def to_markdown(metrics: list[str], rows: list[dict], headers: dict[str, str] | None = None) -> str:
    """``headers``: column titles other than :func:`header`'s (e.g. the user study's criteria)."""
    title = (headers or {}).get
    lines = ["| Method | " + " | ".join(title(m) or header(m) for m in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for r in rows:
        cells = [f"**{r['cells'][m]['text']}**" if r["cells"][m]["best"] else r["cells"][m]["text"] for m in metrics]
        lines.append(f"| {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_latex(metrics: list[str], rows: list[dict], headers: dict[str, str] | None = None) -> str:
    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("±", r"$\pm$").replace("∞", r"$\infty$").replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")

    lines = [r"\begin{tabular}{l" + "c" * len(metrics) + "}", r"\toprule",
             "Method & " + " & ".join(esc((headers or {}).get(m) or header(m)) for m in metrics) + r" \\", r"\midrule"]
    for r in rows:
        cells = [(r"\textbf{" + esc(r["cells"][m]["text"]) + "}") if r["cells"][m]["best"] else esc(r["cells"][m]["text"])
                 for m in metrics]
        lines.append(esc(r["method"]) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
