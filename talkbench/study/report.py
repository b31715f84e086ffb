"""``talkbench study report STUDY``: the paper's Table 2 (MOS ± 95% CI per method and criterion), the
same per dataset, Krippendorff's alpha, and who was excluded by the attention checks and why.

MOS confidence interval: the mean of all included ratings of a method on a criterion ± the half-width
of the 95% Student-t interval, ``t_{0.975, n-1} * sd / sqrt(n)``, the interval usual for MOS (e.g.
ITU-T P.1401) and, by its size, the one Table 2 reports; like Table 2 it treats ratings as independent. Exclusion: a participant whose answers differ from the instructed one on
more than ``max_attention_failures`` attention checks (any criterion off counts the check as failed)
is left out entirely; with ``complete_only`` so is everyone who has not rated every video.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from scipy import stats

from talkbench.errors import ConfigError
from talkbench.metrics.base import MetricInfo
from talkbench.report.tables import to_latex, to_markdown
from talkbench.study.agreement import krippendorff_alpha
from talkbench.study.definition import CRITERIA, Check, Study, load_study
from talkbench.study.ratings import RatingStore

LABELS = {"gt": "Ground Truth"}


@dataclass(frozen=True)
class Mos:
    mean: float
    half: float  # half-width of the 95% t interval (NaN with fewer than two ratings)
    n: int

    @property
    def text(self) -> str:
        if self.n == 0:
            return "–"
        return f"{self.mean:.3f} ± {self.half:.3f}" if math.isfinite(self.half) else f"{self.mean:.3f} (n=1)"


def mos(values: np.ndarray, confidence: float = 0.95) -> Mos:
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return Mos(math.nan, math.nan, 0)
    if len(v) == 1:
        return Mos(float(v[0]), math.nan, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return Mos(float(v.mean()), half, len(v))


@dataclass(frozen=True)
class ParticipantStatus:
    participant: int  # 1-based, as the admin page shows it
    rated: int
    total: int
    checks_passed: int
    checks_failed: int
    checks_pending: int
    included: bool
    reason: str


def read_ratings(study: Study) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(participants, ratings) from ``STUDY/ratings.sqlite``; ratings get method/dataset/sample/kind."""
    path = study.path / "ratings.sqlite"
    if not path.is_file():
        raise ConfigError("no ratings yet (ratings.sqlite missing: run `talkbench study serve` first)", path)
    try:
        store = RatingStore(path)
        people, ratings = store.participants(), store.ratings()
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise ConfigError(f"unreadable ratings store ({exc})", path) from exc
    meta = []
    for r in ratings["item"]:
        e = study.by_token.get(r)
        if e is None:
            raise ConfigError(f"ratings.sqlite holds a rating of video {r!r}, which this study does not have "
                              "(a ratings file from another study?)", path)
        if isinstance(e, Check):
            meta.append(("check", None, None, None, e.answer))
        else:
            s = study.samples[e.sample]
            meta.append(("video", e.method, s.dataset, e.sample, None))
    extra = pd.DataFrame(meta, columns=["kind", "method", "dataset", "sample", "answer"])
    return people, pd.concat([ratings.reset_index(drop=True), extra], axis=1)


def participant_status(study: Study, people: pd.DataFrame, ratings: pd.DataFrame,
                       complete_only: bool = False) -> list[ParticipantStatus]:
    total = len(study.videos) + len(study.checks)
    out = []
    for p in people.itertuples():
        mine = ratings[ratings["participant"] == p.id]
        checks = mine[mine["kind"] == "check"]
        failed = int(sum(any(int(getattr(r, c.key)) != int(r.answer) for c in CRITERIA) for r in checks.itertuples()))
        passed = len(checks) - failed
        pending = len(study.checks) - len(checks)
        rated = int((mine["kind"] == "video").sum())
        if failed > study.max_attention_failures:
            included, reason = False, (f"failed {failed} attention check(s) (allowed: "
                                       f"{study.max_attention_failures})")
        elif rated == 0:
            included, reason = False, "no video rated"
        elif complete_only and len(mine) < total:
            included, reason = False, f"incomplete ({len(mine)}/{total}) and --complete-only"
        else:
            included, reason = True, "complete" if len(mine) == total else f"partial ({len(mine)}/{total})"
        out.append(ParticipantStatus(int(p.idx) + 1, int(len(mine)), total, passed, failed, pending, included, reason))
    return out


def _table(study: Study, videos: pd.DataFrame) -> list[dict]:
    """Rows for the table exporters: method x criterion cells, best real method (not gt) in bold."""
    cells = {m: {c.key: mos(videos.loc[videos["method"] == m, c.key].to_numpy(np.float64)) for c in CRITERIA}
             for m in study.methods}
    best: dict[str, set[str]] = {}
    for c in CRITERIA:
        scored = {m: cells[m][c.key].mean for m in study.methods if m != "gt" and cells[m][c.key].n}
        if scored:  # ties: all of them
            best[c.key] = {m for m, v in scored.items() if v == max(scored.values())}
    return [{"method": LABELS.get(m, m), "key": m,
             "cells": {c.key: {"text": cells[m][c.key].text, "best": m in best.get(c.key, ()),
                               **asdict(cells[m][c.key])}
                       for c in CRITERIA}} for m in study.methods]


def agreement(study: Study, videos: pd.DataFrame) -> list[dict]:
    """Krippendorff's alpha per criterion: units = videos, raters = included participants."""
    out = []
    for c in CRITERIA:
        wide = videos.pivot_table(index="participant", columns="item", values=c.key, aggfunc="first")
        table = wide.to_numpy(np.float64) if wide.size else np.empty((0, 0))
        out.append({"criterion": c.label, "ordinal": krippendorff_alpha(table, "ordinal") if table.size else math.nan,
                    "interval": krippendorff_alpha(table, "interval") if table.size else math.nan,
                    "raters": int(wide.shape[0]), "units": int(wide.shape[1])})
    return out


def _alpha_text(a: float) -> str:
    return "n/a" if not math.isfinite(a) else f"{a:.3f}"


def build_study_report(study_dir: str | Path, out: str | Path | None = None, complete_only: bool = False) -> Path:
    """Write ``index.html``, ``table.{md,tex,csv}`` and ``ratings.csv`` into ``out`` (default
    ``STUDY/report``); returns the HTML page."""
    study = load_study(study_dir)
    out = Path(out) if out else study.path / "report"
    people, ratings = read_ratings(study)
    status = participant_status(study, people, ratings, complete_only)
    included_ids = {pid for pid, s in zip(people["id"], status) if s.included}
    videos = ratings[(ratings["kind"] == "video") & ratings["participant"].isin(included_ids)]
    keys = [c.key for c in CRITERIA]
    headers = {c.key: MetricInfo(c.key, True, "no-reference", "1", c.question, "", c.label) for c in CRITERIA}
    overall = _table(study, videos)
    per_dataset = {d: _table(study, videos[videos["dataset"] == d]) for d in study.datasets}
    alpha = agreement(study, videos)
    out.mkdir(parents=True, exist_ok=True)
    md = [to_markdown(keys, overall, headers)]
    tex = [to_latex(keys, overall, headers)]
    for d, rows in per_dataset.items():
        md.append(f"\n**{d}**\n\n" + to_markdown(keys, rows, headers))
        tex.append(f"\n% {d}\n" + to_latex(keys, rows, headers))
    md.append("\n| Krippendorff's alpha | ordinal | interval |\n|---|---|---|\n"
              + "".join(f"| {a['criterion']} | {_alpha_text(a['ordinal'])} | {_alpha_text(a['interval'])} |\n"
                        for a in alpha))
    (out / "table.md").write_text("".join(md), encoding="utf-8")
    (out / "table.tex").write_text("".join(tex), encoding="utf-8")
    csv = [{"dataset": d, "method": r["key"], "criterion": k, "mos": r["cells"][k]["mean"],
            "ci95_half": r["cells"][k]["half"], "n": r["cells"][k]["n"]}
           for d, rows in [("all", overall), *per_dataset.items()] for r in rows for k in keys]
    pd.DataFrame(csv).to_csv(out / "table.csv", index=False)
    tidy = videos[["idx", "method", "dataset", "sample", *keys, "shown", "submitted"]].copy()
    tidy["participant"] = tidy.pop("idx") + 1
    tidy["sample_id"] = [study.samples[int(s)].sample_id for s in tidy["sample"]]
    tidy.to_csv(out / "ratings.csv", index=False)
    env = Environment(loader=PackageLoader("talkbench.study", "templates"), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        title=study.title, generated=time.strftime("%Y-%m-%d %H:%M:%S"), criteria=CRITERIA, overall=overall,
        per_dataset=per_dataset, alpha=[{**a, "ordinal": _alpha_text(a["ordinal"]),
                                         "interval": _alpha_text(a["interval"])} for a in alpha],
        status=status, n_included=sum(s.included for s in status), n_ratings=len(videos),
        max_failures=study.max_attention_failures, n_checks=len(study.checks), complete_only=complete_only,
        samples=len(study.samples), datasets=study.datasets, methods=[LABELS.get(m, m) for m in study.methods],
        record_json=json.dumps({k: v for k, v in study.record.items() if k not in ("videos", "attention_checks")},
                               indent=2, default=str),
    )
    (out / "index.html").write_text(html, encoding="utf-8")
    return out / "index.html"
