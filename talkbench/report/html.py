"""``talkbench report RUN_DIR``: one self-contained HTML page (jinja2, autoescaped, figures and a few
videos embedded) plus Markdown, LaTeX and CSV exports of the table."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from talkbench.experiments.report import build_experiment_report
from talkbench.report.figures import distribution_plots, qualitative_strip
from talkbench.report.tables import build_table, header, to_latex, to_markdown
from talkbench.results import load_run
from talkbench.stats import paired_difference, summarize

MAX_STRIPS = 3


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``index.html`` and ``table.{md,tex,csv}`` into ``out`` (default ``RUN_DIR/report``)."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    res = load_run(run_dir)
    record, df, infos = res.record, res.frame, res.metrics
    scored = res.scored
    summary = summarize(scored)
    metrics, rows = build_table(summary, infos) if len(summary) else ([], [])
    methods = list(dict.fromkeys(df["method"]))
    real = [m for m in methods if m not in ("gt",)]
    paired = []
    if len(real) >= 2:
        base = real[0]
        for other in real[1:]:
            for m in metrics:
                p = paired_difference(scored, m, base, other)
                if p.n:
                    paired.append(p)
    strips = []
    alignments = record.get("alignments", {})
    for sid in list(dict.fromkeys(df["sample_id"]))[:MAX_STRIPS]:
        files = {m: res.media(m, sid) for m in methods if res.media(m, sid).exists()}
        if not files:
            continue
        png = qualitative_strip(files, alignment=alignments.get(sid))
        videos = [{"method": m, "data": base64.b64encode(p.read_bytes()).decode()} for m, p in files.items()
                  if p.stat().st_size < 2_000_000]
        if png:
            strips.append({"sample_id": sid, "png": png, "videos": videos})
    failures = df[df["error"].notna()][["method", "sample_id", "metric", "error"]].to_dict("records")
    env = Environment(loader=PackageLoader("talkbench.report", "templates"), autoescape=select_autoescape(["html", "j2"]))
    # Sweeps and ablations (conditions in the method names) get their own page, linked from this one.
    experiment = build_experiment_report(run_dir, out)
    html = env.get_template("report.html.j2").render(
        experiment=experiment.name if experiment else None,
        title=run_dir.name, config=record.get("config", {}), n_samples=df["sample_id"].nunique(),
        git_sha=record.get("git_sha"), generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        metrics=metrics, rows=rows, headers={m: header(m, infos) for m in metrics}, paired=paired,
        figures=distribution_plots(scored, metrics), strips=strips, failures=failures,
        critics=record.get("critics", {}), unavailable=record.get("metrics_unavailable", {}),
        methods_unavailable=record.get("methods_unavailable", {}),
        record_json=json.dumps(record, indent=2, default=str),
    )
    (out / "index.html").write_text(html, encoding="utf-8")
    (out / "table.md").write_text(to_markdown(metrics, rows, infos), encoding="utf-8")
    (out / "table.tex").write_text(to_latex(metrics, rows, infos), encoding="utf-8")
    summary.to_csv(out / "table.csv", index=False)
    return out / "index.html"
