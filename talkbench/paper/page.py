"""The paper page: ``DIR/paper/index.html`` (self-contained), ``paper.md``, ``paper.tex`` and the
figures as PNG, from the parts' run directories. Table 1 puts the datasets side by side as column
groups; every number is a mean with its 95% bootstrap interval; where the best method is not separated
from the next one by disjoint intervals, the page says so instead of claiming an ordering."""

from __future__ import annotations

import base64
import json
import math
import time
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from talkbench.cache import atomic_write
from talkbench.paper.config import PaperConfig
from talkbench.report.provenance import critic_lines
from talkbench.results import RunResults, load_run
from talkbench.stats import summarize

TABLE1_COLUMNS = ("psnr", "ssim", "lmd", "lse_d", "lse_c")
BOUND_METHODS = ("gt", "static")


def _load(run_dir: Path) -> RunResults | None:
    try:
        return load_run(run_dir)
    except Exception:  # a part that never started or failed before writing its run: shown as missing
        return None


def _summary(res: RunResults) -> pd.DataFrame:
    df = res.frame
    keep = df["metric"].str.startswith("__") | df["metric"].isin(list(res.metrics))
    return summarize(df[keep])


def _cell(summary: pd.DataFrame, method: str, metric: str) -> dict[str, Any] | None:
    r = summary[(summary["method"] == method) & (summary["metric"] == metric)]
    if not len(r):
        return None
    r = r.iloc[0]
    mean, low, high, n = float(r["mean"]), float(r["low"]), float(r["high"]), int(r["n"])
    if n == 0 or math.isnan(mean):
        text = "n/a"
    elif math.isinf(mean):
        text = "∞"
    else:
        text = f"{mean:.3f} ± {max(mean - low, high - mean):.3f}"
    return {"text": text, "mean": mean, "low": low, "high": high, "n": n, "failed": int(r["failed"]), "best": False}


def _mark_best(cells: dict[str, dict | None], higher: bool) -> str | None:
    """Bold the best (ties at 3 decimals all bold); a note when its interval overlaps the runner-up's."""
    ok = {m: c for m, c in cells.items() if c and c["n"] and math.isfinite(c["mean"]) and m not in BOUND_METHODS}
    if not ok:
        return None
    order = sorted(ok, key=lambda m: ok[m]["mean"], reverse=higher)
    top = round(ok[order[0]]["mean"], 3)
    best = [m for m in order if round(ok[m]["mean"], 3) == top]
    for m in best:
        ok[m]["best"] = True
    rest = [m for m in order if m not in best]
    if len(best) > 1:
        return f"tie: {', '.join(best)}"
    if rest:
        b, r = ok[best[0]], ok[rest[0]]
        disjoint = b["low"] > r["high"] if higher else b["high"] < r["low"]
        if not disjoint:
            return f"{best[0]} not separated from {rest[0]} (95% intervals overlap)"
    return None


def table1(cfg: PaperConfig, run_dir: Path) -> dict[str, Any]:
    groups, notes, unavailable, records = [], [], {}, {}
    methods = ["gt", *BOUND_METHODS[1:], *(m for m in cfg.methods if m not in cfg.not_in_table1)]
    rows: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for d in cfg.datasets:
        res = _load(run_dir / f"table1-{d.key}")
        cols = [m for m in TABLE1_COLUMNS if res is None or m in res.metrics] if res else list(TABLE1_COLUMNS)
        groups.append({"key": d.key, "dataset": d.dataset, "columns": cols, "missing": res is None})
        if res is None:
            continue
        records[d.key] = res.record
        summary = _summary(res)
        for m, why in res.record.get("methods_unavailable", {}).items():
            if m in methods:
                unavailable.setdefault(m, why)
        for metric in cols:
            cells = {m: _cell(summary, m, metric) for m in methods}
            note = _mark_best(cells, res.metrics[metric].higher_is_better)
            if note:
                notes.append(f"{d.key} {res.metrics[metric].label or metric}: {note}")
            for m in methods:
                rows[m][(d.key, metric)] = cells[m]
    headers = {}
    for g in groups:
        for c in g["columns"]:
            res = _load(run_dir / f"table1-{g['key']}")
            info = res.metrics.get(c) if res else None
            headers[(g["key"], c)] = info.header if info else c
    notes += [f"{m}: left out of Table 1 (`table1: false`, as the paper does); its rows are in Table 3"
              for m in cfg.not_in_table1]
    return {"groups": groups, "methods": methods, "rows": rows, "headers": headers, "notes": notes,
            "unavailable": unavailable, "records": records}


def table3(cfg: PaperConfig, run_dir: Path) -> dict[str, Any] | None:
    if not cfg.lipreading:
        return None
    res = _load(run_dir / f"table1-{cfg.lipreading}")
    if res is None or "lipread_top1" not in res.metrics:
        why = (res.record.get("metrics_unavailable", {}).get("lipread") if res else None) or "not run yet"
        return {"rows": [], "why": why, "dataset": cfg.lipreading}
    summary = _summary(res)
    gt = _cell(summary, "gt", "lipread_top1")
    rows = []
    unavailable = res.record.get("methods_unavailable", {})
    for m in ["gt", *cfg.methods]:
        c = _cell(summary, m, "lipread_top1")
        if m in unavailable and (c is None or c["n"] == 0):
            rows.append({"method": m, "acc": {"text": f"not available: {unavailable[m]}"}, "relative": "",
                         "failed": ""})
            continue
        if c is None:
            continue
        rel = (100 * c["mean"] / gt["mean"]) if gt and gt["mean"] > 0 and math.isfinite(c["mean"]) else math.nan
        # items a method could not generate (ATVGnet's face pipeline) are counted, not averaged in
        rows.append({"method": m, "acc": c, "relative": "n/a" if math.isnan(rel) else f"{rel:.1f}%",
                     "failed": f"{c['failed']} of {c['n'] + c['failed']}"})
    prov = res.record.get("critics", {}).get("lipread", {})
    vocab = prov.get("vocabulary_size")
    return {"rows": rows, "why": None, "dataset": cfg.lipreading, "vocabulary": vocab}


def _experiment(run_dir: Path, name: str) -> dict[str, Any] | None:
    """The experiment page's tables (already made by talkbench's experiment report) and its figure."""
    res = _load(run_dir / name)
    md = run_dir / name / "report" / "experiment.md"
    if res is None or not md.exists():
        return None
    out = {"markdown": md.read_text(), "figure": None, "record": res.record}
    if name == "fig6-context":
        from talkbench.experiments.report import context_figure, context_summary

        out["figure"] = context_figure(context_summary(res.frame), res.metrics)
    return out


def protocol(records: list[dict[str, Any]], cfg: PaperConfig) -> dict[str, Any]:
    rec = records[0] if records else {}
    p = rec.get("protocol", {})
    return {"fps": p.get("fps"), "sample_rate": p.get("sample_rate"), "crop": p.get("crop"), "size": p.get("size"),
            "reference_frame": p.get("reference_frame"), "pose_prior": p.get("pose_prior"),
            "git": rec.get("git_sha"), "samples": {d.key: (r.get("samples") if (r := _rec_for(records, d)) else None)
                                                  for d in cfg.datasets}}


def _rec_for(records: list[dict[str, Any]], d: Any) -> dict[str, Any] | None:
    for r in records:
        if r.get("config", {}).get("dataset") == d.dataset:
            return r
    return None


def _md_table1(t: dict[str, Any]) -> str:
    head = ["Method"] + [f"{g['key']} {t['headers'][(g['key'], c)]}" for g in t["groups"] for c in g["columns"]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in t["methods"]:
        if m in t["unavailable"]:
            lines.append(f"| {m} | not available: {t['unavailable'][m]} |")
            continue
        cells = []
        for g in t["groups"]:
            for c in g["columns"]:
                cell = t["rows"][m].get((g["key"], c))
                text = cell["text"] if cell else "–"
                cells.append(f"**{text}**" if cell and cell["best"] else text)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _md_protocol(proto: dict[str, Any], parts: dict[str, Any]) -> list[str]:
    """The page's protocol block and parts table, so the markdown alone says how each number was made."""
    samples = ", ".join(f"{k} {n if n is not None else '–'}" for k, n in proto["samples"].items())
    md = ["\n## Protocol\n",
          f"- Video {proto['fps']} fps, audio {proto['sample_rate']} Hz; crop {proto['crop']}, {proto['size']} px "
          "face-centred crops.\n",
          f"- Reference frame: {proto['reference_frame']}; pose prior: {proto['pose_prior']}.\n",
          f"- Samples per cell: {samples}; code version (git) {proto['git'] or 'unknown'}.\n"]
    if parts:
        md += ["\n## Parts\n\n| part | status | wall time (s) |\n|---|---|---|\n"]
        md += [f"| {n} | {p.get('status')}{': ' + p['error'] if p.get('error') else ''} | {p.get('seconds', '–')} |\n"
               for n, p in parts.items()]
    return md


def _tex_table1(t: dict[str, Any]) -> str:
    def esc(s: str) -> str:
        return (s.replace("_", r"\_").replace("±", r"$\pm$").replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$")
                .replace("∞", r"$\infty$").replace("%", r"\%"))

    ncol = sum(len(g["columns"]) for g in t["groups"])
    lines = [r"\begin{tabular}{l" + "c" * ncol + "}", r"\toprule",
             " & " + " & ".join(rf"\multicolumn{{{len(g['columns'])}}}{{c}}{{{esc(g['key'])}}}" for g in t["groups"]) + r" \\",
             "Method & " + " & ".join(esc(t["headers"][(g["key"], c)]) for g in t["groups"] for c in g["columns"]) + r" \\",
             r"\midrule"]
    for m in t["methods"]:
        if m in t["unavailable"]:
            lines.append(esc(m) + rf" & \multicolumn{{{ncol}}}{{l}}{{not available}} \\")
            continue
        cells = []
        for g in t["groups"]:
            for c in g["columns"]:
                cell = t["rows"][m].get((g["key"], c))
                text = esc(cell["text"]) if cell else "--"
                cells.append(rf"\textbf{{{text}}}" if cell and cell["best"] else text)
        lines.append(esc(m) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def build_paper_page(run_dir: str | Path, cfg: PaperConfig) -> Path:
    run_dir = Path(run_dir)
    out = run_dir / "paper"
    out.mkdir(parents=True, exist_ok=True)
    status_path = run_dir / "paper.json"
    status = json.loads(status_path.read_text()) if status_path.exists() else {"parts": {}}
    t1 = table1(cfg, run_dir)
    t3 = table3(cfg, run_dir)
    fig6 = _experiment(run_dir, "fig6-context") if cfg.context_sweep else None
    fig5 = _experiment(run_dir, "fig5-mask") if cfg.masked_audio else None
    t4 = _experiment(run_dir, "table4-ablation") if cfg.ablation else None
    records = list(t1["records"].values()) + [e["record"] for e in (fig6, fig5, t4) if e]
    if fig6 and fig6["figure"]:
        (out / "fig6-context.png").write_bytes(base64.b64decode(fig6["figure"]))
    critics = critic_lines(records)
    proto = protocol(list(t1["records"].values()), cfg)
    env = Environment(loader=PackageLoader("talkbench.paper", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("paper.html.j2").render(
        cfg=cfg, t1=t1, t3=t3, fig5=fig5, fig6=fig6, t4=t4, critics=critics, protocol=proto,
        parts=status.get("parts", {}), generated=time.strftime("%Y-%m-%d %H:%M:%S"))
    with atomic_write(out / "index.html", "w") as f:
        f.write(html)
    md = [f"# {cfg.name}: the CALS paper's evaluation\n", "## Table 1\n", _md_table1(t1)]
    md += [f"- {n}\n" for n in t1["notes"]]
    if t3:
        md += ["\n## Table 3: lip-reading accuracy\n"]
        md += ([f"not available: {t3['why']}\n"] if t3["why"] else
               ["| Method | top-1 | relative to ground truth | items failed |\n|---|---|---|---|\n"] +
               [f"| {r['method']} | {r['acc']['text']} | {r['relative']} | {r['failed']} |\n" for r in t3["rows"]] +
               [f"\nLip reader vocabulary: {t3.get('vocabulary') or '?'} words.\n"])
    for title, e in (("Table 4: ablation", t4), ("Fig. 5: masked audio", fig5), ("Fig. 6: context", fig6)):
        if e:
            md += [f"\n## {title}\n\n", e["markdown"]]
    md += ["\n## Critics\n"] + [f"- {c['metric']}: `{c['file']}` sha256 {c['sha']} ({c['domain']})\n" for c in critics]
    md += _md_protocol(proto, status.get("parts", {}))
    with atomic_write(out / "paper.md", "w") as f:
        f.write("".join(md))
    with atomic_write(out / "paper.tex", "w") as f:
        f.write(_tex_table1(t1))
    return out / "index.html"
