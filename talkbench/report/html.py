"""``talkbench report RUN_DIR``: one self-contained HTML page (jinja2, autoescaped, figures and a few
videos embedded) plus Markdown, LaTeX and CSV exports of the table."""

from __future__ import annotations

import base64
import json
import shlex
import time
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from talkbench.experiments.report import build_experiment_report
from talkbench.report.figures import distribution_plots, qualitative_strip
from talkbench.report.provenance import critic_lines
from talkbench.report.sanity import offset_sanity
from talkbench.report.tables import build_table, header, to_latex, to_markdown
from talkbench.results import load_run
from talkbench.stats import paired_difference, summarize

MAX_STRIPS = 3
MAX_WORDS = 40  # per-word coverage listed in the report (all of it is in run.json)


def _coverage_lines(not_applicable: dict) -> list[str]:
    """Plain lines for items a scorer did not apply to, with per-word coverage on word datasets."""
    lines = []
    for name, na in not_applicable.items():
        line = (f"{name}: {na['pairs']} (method, sample) pairs not applicable, neither scored nor counted as failures "
                f"({'; '.join(f'{why}: {n}' for why, n in na['reasons'].items())}).")
        if "word_coverage" in na:
            cov = na["word_coverage"]
            covered = [w for w, c in cov.items() if c["applicable"]]
            per_word = [f"{w} {c['applicable']}/{c['samples']}" for w, c in cov.items()]
            more = f", ... ({len(per_word) - MAX_WORDS} more in run.json not_applicable)" if len(per_word) > MAX_WORDS else ""
            line += (f" Word coverage: {na['words_covered']} of {na['words']} words scored"
                     + (f" ({', '.join(covered[:MAX_WORDS])}{', ...' if len(covered) > MAX_WORDS else ''})"
                        if covered else "")
                     + "; per word (applicable/samples): " + ", ".join(per_word[:MAX_WORDS]) + more + ".")
        lines.append(line)
    return lines


def _dataset_notes(res) -> list[str]:
    """What the reader of a dataset-level number must know: how many samples and rows, warnings."""
    notes = []
    for r in res.dataset.to_dict("records"):
        details = json.loads(r["details"]) if r.get("details") else {}
        what = details.get("reference", "vs ground truth of the same samples")
        if r.get("error"):
            notes.append(f"{r['metric']} of {r['method']}: not computed: {r['error']}")
            continue
        rows = details.get("rows", ["?", "?"])
        line = (f"{r['metric']} of {r['method']} ({what}): {r['n']} samples, {rows[0]} vs {rows[1]} feature rows, "
                f"interval from {details.get('resamples', 0)} bootstrap resamples")
        if details.get("warning"):
            line += f"; warning: {details['warning']}"
        notes.append(line)
    return notes


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``index.html`` and ``table.{md,tex,csv}`` into ``out`` (default ``RUN_DIR/report``)."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    res = load_run(run_dir)
    record, df, infos = res.record, res.frame, res.metrics
    scored = res.scored
    summary = summarize(df)  # the whole frame: pairs that failed before scoring count as failed
    if not res.dataset.empty:  # FID/FVD: one value per method with its bootstrap interval
        summary = pd.concat([summary, res.dataset_summary()], ignore_index=True)
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
    # Numbers from a critic trained on the synthetic corpus (allowed on a real dataset): marked in the
    # header and explained under the table, in every export.
    synthetic = record.get("synthetic_critics") or {}
    marked = {o for name in synthetic for o in res.scorers.get(name, ())}
    headers = {m: header(m, infos) + (" †" if m in marked else "") for m in metrics}
    notes = [f"† {label}" for label in synthetic.values()]
    sanity = [s.text for s in offset_sanity(df)]
    coverage = _coverage_lines(record.get("not_applicable") or {})
    example = next(iter(df[~df["metric"].str.startswith("__")][["method", "sample_id"]].itertuples(index=False)), None)
    rescore = (f"talkbench score --run-dir {shlex.quote(str(run_dir))} --sample {shlex.quote(example.sample_id)} "
               f"--method {shlex.quote(example.method)}" if example is not None
               else f"talkbench score --run-dir {shlex.quote(str(run_dir))} --sample ID --method METHOD")
    env = Environment(loader=PackageLoader("talkbench.report", "templates"), autoescape=select_autoescape(["html", "j2"]))
    # Sweeps and ablations (conditions in the method names) get their own page, linked from this one.
    experiment = build_experiment_report(run_dir, out)
    html = env.get_template("report.html.j2").render(
        experiment=experiment.name if experiment else None,
        title=run_dir.name, config=record.get("config", {}), n_samples=df["sample_id"].nunique(),
        git_sha=record.get("git_sha"), generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        metrics=metrics, rows=rows, headers=headers, paired=paired, synthetic_notes=notes, sanity=sanity,
        coverage=coverage, rescore=rescore,
        figures=distribution_plots(scored, metrics), strips=strips, failures=failures,
        critics=critic_lines([record]), unavailable=record.get("metrics_unavailable", {}),
        methods_unavailable=record.get("methods_unavailable", {}),
        protocols=record.get("metric_protocols", {}), dataset_notes=_dataset_notes(res),
        record_json=json.dumps(record, indent=2, default=str),
    )
    (out / "index.html").write_text(html, encoding="utf-8")
    foot = "".join(f"\n{line}\n" for line in [*notes, *sanity, *coverage])
    (out / "table.md").write_text(to_markdown(metrics, rows, infos, marked) + foot, encoding="utf-8")
    (out / "table.tex").write_text(to_latex(metrics, rows, infos, marked) + "".join(f"% {line}\n" for line in
                                                                                    [*notes, *sanity, *coverage]),
                                   encoding="utf-8")
    summary.to_csv(out / "table.csv", index=False)
    return out / "index.html"
