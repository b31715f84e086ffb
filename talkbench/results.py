"""The one reader of a run directory: its record (run.json), its rows as a tidy DataFrame, its media
files, and the metric metadata exactly as stored when the numbers were made.

Reports, experiment pages, ``compare`` and the paper page read runs through this module only; it
depends on none of them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from talkbench.errors import ConfigError
from talkbench.metrics.base import MetricInfo
from talkbench.store import ResultStore

# Metric names that are bookkeeping of another metric (frame counts ...), never table columns.
HIDDEN_SUFFIXES = ("_frames_scored", "_frames_missing", "_identical_frames", "_pairs_scored",
                   "_box_from_landmarks", "_feature_rows")


def safe_name(sample_id: str) -> str:
    """A sample id as a file name (the runner writes ``media/<method>/<safe_name>.mp4``).

    Distinct ids give distinct names: when characters had to be replaced (``a b``, ``a&b`` and ``a__b``
    would all read ``a__b``), a short hash of the id itself is appended."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "__", sample_id)
    if name == sample_id:
        return name
    return f"{name}-{hashlib.sha256(sample_id.encode()).hexdigest()[:8]}"


def media_path(run_dir: str | Path, method: str, sample_id: str) -> Path:
    return Path(run_dir) / "media" / method / f"{safe_name(sample_id)}.mp4"


def is_scored_metric(name: str) -> bool:
    """A value metric (not a ``__sample__`` / ``__generate__`` error marker or a bookkeeping count)."""
    return not name.startswith("__") and not name.endswith(HIDDEN_SUFFIXES)


@dataclass(frozen=True)
class RunResults:
    """A run directory, read: ``record`` is run.json as written, ``frame`` the tidy rows (run, method,
    dataset, sample_id, metric, value, error), ``metrics`` the stored :class:`MetricInfo` by output name,
    ``scorers`` the outputs of each scorer (``lse`` -> ``lse_d, lse_c, av_offset``)."""

    path: Path
    record: dict[str, Any]
    frame: pd.DataFrame
    metrics: dict[str, MetricInfo] = field(default_factory=dict)
    scorers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Dataset-level metrics (FID, FVD): one row per (method, metric) with value, low, high, n, error, details.
    dataset: pd.DataFrame = field(default_factory=pd.DataFrame)

    def dataset_summary(self) -> pd.DataFrame:
        """Dataset-level results in :func:`talkbench.stats.summarize`'s columns (method, metric, mean,
        low, high, n, failed), so tables treat them like per-sample metrics."""
        cols = ["method", "metric", "mean", "low", "high", "n", "failed"]
        if self.dataset.empty:
            return pd.DataFrame(columns=cols)
        d = self.dataset.rename(columns={"value": "mean"})
        d["failed"] = d["error"].notna().astype(int)
        return d[cols]

    @property
    def scored(self) -> pd.DataFrame:
        """Rows of value metrics only (no error markers, no bookkeeping counts)."""
        return self.frame[self.frame["metric"].map(is_scored_metric)]

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(self.frame["method"]))

    def info(self, metric: str) -> MetricInfo | None:
        return self.metrics.get(metric)

    def media(self, method: str, sample_id: str) -> Path:
        path = media_path(self.path, method, sample_id)
        legacy = path.with_name(re.sub(r"[^A-Za-z0-9._-]+", "__", sample_id) + ".mp4")
        return legacy if not path.exists() and legacy.exists() else path  # run dirs written before the hash suffix

    def expand_metrics(self, names: list[str] | tuple[str, ...]) -> list[str]:
        """Scorer names (``lse``) or output names (``lse_c``), as the user typed them, to output names;
        unknown names raise ConfigError naming them and what this run has."""
        out: list[str] = []
        for n in names:
            if n in self.scorers:
                out += [m for m in self.scorers[n] if m not in out]
            elif n in self.metrics or n in set(self.frame["metric"]):
                out += [n] if n not in out else []
            else:
                have = sorted(set(self.scorers) | set(self.metrics))
                raise ConfigError(f"metric {n!r} is not in this run (it has: {', '.join(have)})", self.path)
        return out


def load_run(run_dir: str | Path) -> RunResults:
    """Read a run directory (ConfigError when it is not one)."""
    run_dir = Path(run_dir)
    if not (run_dir / "run.json").exists() or not (run_dir / "results.sqlite").exists():
        raise ConfigError("not a talkbench run directory (run.json / results.sqlite missing)", run_dir)
    try:
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"unreadable run.json ({exc})", run_dir / "run.json") from exc
    store = ResultStore(run_dir / "results.sqlite")
    try:
        df = store.frame()
        dataset = store.dataset_frame()
    finally:
        store.close()
    infos: dict[str, MetricInfo] = {}
    scorers: dict[str, tuple[str, ...]] = {}
    for scorer, outputs in record.get("metrics", {}).items():
        parsed = [MetricInfo.from_record(o) for o in outputs]
        scorers[scorer] = tuple(i.name for i in parsed)
        infos.update({i.name: i for i in parsed})
    return RunResults(run_dir, record, df, infos, scorers, dataset)
