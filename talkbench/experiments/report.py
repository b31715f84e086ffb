"""Experiment pages: metric-vs-k figure and table (context sweep, paper Fig. 6), in-span / out-of-span
LMD with paired differences (masked audio, paper Fig. 5), the Table-4 layout (ablation).

Written next to the run's own report as ``report/experiment.html`` (self-contained, jinja2 with
autoescape, figures embedded) and ``report/experiment.md``. Every number is a mean with its 95%
bootstrap interval over samples (``talkbench.stats``); differences are paired on shared samples.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, select_autoescape

from talkbench.cache import atomic_write
from talkbench.conditions import k_label, with_condition_columns
from talkbench.errors import ConfigError
from talkbench.report.tables import Infos, build_table, header
from talkbench.results import is_scored_metric, load_run
from talkbench.stats import paired_difference, summarize

EXPERIMENT_FILE = "experiment.json"


def _higher(metric: str, infos: Infos) -> bool:
    info = infos.get(metric)
    return info.higher_is_better if info else True


def read_experiment(run_dir: str | Path) -> dict[str, Any] | None:
    p = Path(run_dir) / EXPERIMENT_FILE
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"unreadable experiment record ({exc})", p) from exc


def _scored(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["metric"].map(is_scored_metric)]


def _fmt(mean: float, low: float, high: float, n: int) -> str:
    if n == 0 or not math.isfinite(mean):
        return "n/a"
    return f"{mean:.3f} ± {max(mean - low, high - mean):.3f}"


def _unsupported(df: pd.DataFrame) -> dict[str, str]:
    """method spec -> why it was not run (a condition its card cannot honour, or unavailable)."""
    gen = df[(df["metric"] == "__generate__") & df["error"].notna()]
    return {m: g["error"].iloc[0] for m, g in gen.groupby("method")
            if g["error"].str.contains("cannot honour|method unavailable").all()}


# ----------------------------------------------------------------------------- context sweep

def context_summary(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per (base method, k, metric): mean, 95% CI, n, failed. ``k`` is inf for full context."""
    d = with_condition_columns(_scored(df))
    d = d[d["k"].notna()]
    s = summarize(d, seed=seed)
    if s.empty:
        return s.assign(base=[], k=[])
    cond = d.drop_duplicates("method").set_index("method")[["base", "k"]]
    s = s.join(cond, on="method")
    return s.sort_values(["base", "metric", "k"]).reset_index(drop=True)


def context_figure(summary: pd.DataFrame, infos: Infos) -> str | None:
    """One panel per metric: mean vs k per method with 95% CI bars; 'full' at the right end."""
    if summary.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(summary["metric"]))
    finite = sorted({k for k in summary["k"] if math.isfinite(k)})
    far = (max(finite) if finite else 0) + max(2.0, 0.15 * (max(finite) if finite else 1))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        sub = summary[summary["metric"] == metric]
        for base, g in sub.groupby("base", sort=False):
            g = g[np.isfinite(g["mean"])]
            x = np.where(np.isinf(g["k"]), far, g["k"])
            yerr = np.vstack([g["mean"] - g["low"], g["high"] - g["mean"]]).clip(min=0)
            ax.errorbar(x, g["mean"], yerr=yerr, marker="o", ms=4, capsize=3, label=base)
        ticks = finite + ([far] if np.isinf(sub["k"]).any() else [])
        ax.set_xticks(ticks)
        ax.set_xticklabels([k_label(math.inf if t == far else t) for t in ticks], fontsize=8)
        ax.set_title(header(metric, infos))
        ax.set_xlabel("audio context ±k frames")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def context_table(summary: pd.DataFrame, infos: Infos) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns ``base/metric``; one row per k."""
    cols = [f"{b} {header(m, infos)}" for b, m in dict.fromkeys(zip(summary["base"], summary["metric"]))]
    rows = []
    for k in sorted(set(summary["k"])):
        sub = summary[summary["k"] == k]
        cells = {f"{r.base} {header(r.metric, infos)}": _fmt(r.mean, r.low, r.high, r.n) for r in sub.itertuples()}
        rows.append({"k": k_label(k), "cells": [cells.get(c, "–") for c in cols]})
    return cols, rows


# ----------------------------------------------------------------------------- masked audio

def mask_comparison(df: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, list[Any]]:
    """Summary of the span metrics per method and paired differences between every pair of methods
    (same samples), for ``lmd_span`` and ``lmd_outside`` (and any other scored metric)."""
    d = _scored(df)
    summary = summarize(d, seed=seed)
    methods = [m for m in dict.fromkeys(d["method"]) if m != "gt"]
    paired = []
    for metric in dict.fromkeys(d["metric"]):
        for i, a in enumerate(methods):
            for b in methods[i + 1 :]:
                p = paired_difference(d, metric, a, b, seed=seed)
                if p.n:
                    paired.append(p)
    return summary, paired


# ----------------------------------------------------------------------------- writer

_TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:center}.best{font-weight:bold}.small{color:#555;font-size:90%}</style>
</head><body><h1>{{ title }}</h1>
<p class="small">Experiment: {{ kind }}. {{ note }} Means over samples with 95% bootstrap intervals.
<a href="index.html">Full run report</a>.</p>
{% if figure %}<img id="figure" alt="metric vs context" src="data:image/png;base64,{{ figure }}">{% endif %}
{% for t in tables %}<h2>{{ t.title }}</h2><table id="{{ t.id }}"><thead><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for r in t.rows %}<tr>{% for c in r %}<td class="{{ 'best' if c.best else '' }}">{{ c.text }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>{% endfor %}
{% if unsupported %}<h2>Not run</h2><ul>{% for m, why in unsupported.items() %}<li><b>{{ m }}</b>: {{ why }}</li>{% endfor %}</ul>{% endif %}
<h2>Experiment record</h2><pre class="small">{{ record }}</pre></body></html>
"""


def _md(table: dict[str, Any]) -> str:
    lines = [f"### {table['title']}", "", "| " + " | ".join(table["header"]) + " |",
             "|" + "---|" * len(table["header"])]
    for r in table["rows"]:
        lines.append("| " + " | ".join(f"**{c['text']}**" if c.get("best") else c["text"] for c in r) + " |")
    return "\n".join(lines) + "\n"


def _cells(values: list[str], best: set[int] = frozenset()) -> list[dict[str, Any]]:
    return [{"text": v, "best": i in best} for i, v in enumerate(values)]


def build_experiment_report(run_dir: str | Path, out: str | Path | None = None, seed: int = 0) -> Path | None:
    """Write ``experiment.html`` and ``experiment.md`` for a run directory made by ``talkbench sweep``
    or ``talkbench ablate`` (None for a plain run). ``out`` defaults to ``RUN_DIR/report``."""
    run_dir = Path(run_dir)
    exp = read_experiment(run_dir)
    if exp is None:
        return None
    out = Path(out) if out else run_dir / "report"
    res = load_run(run_dir)
    df, infos = res.frame, res.metrics
    kind = exp.get("kind", "?")
    figure, tables, note = None, [], ""
    if kind == "context":
        summary = context_summary(df, seed)
        figure = context_figure(summary, infos)
        cols, rows = context_table(summary, infos)
        tables.append({"title": "Metric vs audio context (±k frames)", "id": "context",
                       "header": ["±k", *cols], "rows": [_cells([r["k"], *r["cells"]]) for r in rows]})
        note = ("Generation with the audio of each frame limited to ±k frames (paper Fig. 6); "
                "'full' is the whole clip.")
    elif kind == "mask":
        summary, paired = mask_comparison(df, seed)
        metrics = [m for m in dict.fromkeys(summary["metric"])]
        methods = list(dict.fromkeys(summary["method"]))
        best = {}
        for m in metrics:
            sub = summary[(summary["metric"] == m) & np.isfinite(summary["mean"]) & (summary["n"] > 0)]
            if len(sub):
                best[m] = sub.loc[sub["mean"].idxmax() if _higher(m, infos) else sub["mean"].idxmin(), "method"]
        rows = []
        for method in methods:
            vals = []
            for m in metrics:
                r = summary[(summary["method"] == method) & (summary["metric"] == m)]
                vals.append(_fmt(*r.iloc[0][["mean", "low", "high", "n"]]) if len(r) else "–")
            rows.append(_cells([method, *vals], {1 + i for i, m in enumerate(metrics) if best.get(m) == method}))
        tables.append({"title": f"LMD inside / outside the masked span ({exp.get('span')} frames)", "id": "mask",
                       "header": ["Method", *[header(m, infos) for m in metrics]], "rows": rows})

        def verdict(p) -> str:
            if not (p.low > 0 or p.high < 0):
                return "no significant difference"
            b_better = (p.mean_diff > 0) == _higher(p.metric, infos)
            return f"{p.b if b_better else p.a} better"

        tables.append({"title": "Paired differences (B − A, same samples)", "id": "paired",
                       "header": ["metric", "A", "B", "n", "mean diff", "95% CI", "p (Wilcoxon)", "verdict (CI)"],
                       "rows": [_cells([p.metric, p.a, p.b, str(p.n), f"{p.mean_diff:.4f}",
                                        f"[{p.low:.4f}, {p.high:.4f}]", f"{p.p_value:.3g}", verdict(p)])
                                for p in paired]})
        note = (f"The audio of {exp.get('span')} consecutive frames in the middle of each clip is masked (zeroed); "
                "lmd_span is LMD on those frames only, lmd_outside on the others (paper Fig. 5).")
    elif kind == "ablation":
        summary = summarize(_scored(df), seed=seed)
        metrics, trows = build_table(summary, infos) if len(summary) else ([], [])
        flags = exp.get("flags", {})
        by_method = {r["method"]: r for r in trows}
        rows = []
        for variant in exp.get("variants", []):  # the row order of Table 4 (the JSON mapping is key-sorted)
            method = exp.get("methods", {}).get(variant)
            f = flags.get(variant, {})
            marks = ["✓" if f.get("baseline", True) else "✗", *("✓" if f.get(k) else "✗" for k in ("use_a2l", "use_dav", "use_dvv"))]
            r = by_method.get(method)
            vals = [r["cells"][m]["text"] if r else "not evaluated" for m in metrics]
            best = {5 + i for i, m in enumerate(metrics) if r and r["cells"][m]["best"]}
            rows.append(_cells([variant, *marks, *vals], best))
        tables.append({"title": "Ablation (Table 4 layout)", "id": "ablation",
                       "header": ["Variant", "Baseline", "A2L", "d_av", "d_vv", *[header(m, infos) for m in metrics]],
                       "rows": rows})
        note = ("Baseline: the suite's Wav2Lip trained on the same data with the same budget (paper Table 4 row 1); "
                "the CALS variants are built from the config flags model.use_a2l, loss.use_dav, loss.use_dvv; "
                "unet-baseline (if listed) is the CALS U-Net without A2L or sync losses, not a row of the paper.")
    else:
        raise ConfigError(f"unknown experiment kind {kind!r}", run_dir / EXPERIMENT_FILE)
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    html = env.from_string(_TEMPLATE).render(
        title=f"{run_dir.name}: {kind}", kind=kind, note=note, figure=figure, tables=tables,
        unsupported=_unsupported(df), record=json.dumps(exp, indent=2, default=str))
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "experiment.html", "w") as f:
        f.write(html)
    md = "".join(_md(t) + "\n" for t in tables)
    if _unsupported(df):
        md += "Not run: " + "; ".join(f"{m} ({why})" for m, why in _unsupported(df).items()) + "\n"
    with atomic_write(out / "experiment.md", "w") as f:
        f.write(md)
    return out / "experiment.html"
