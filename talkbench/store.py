"""Results store: one SQLite file per run directory with tidy rows, resumable.

Table ``results``: one row per (method, dataset, sample_id, metric) with ``value`` (REAL, NULL for
NaN) and ``error`` (TEXT, NULL when fine). Table ``not_applicable``: (method, dataset, sample_id,
scorer) with the reason a scorer does not apply to that item (an LRW word outside a word-subset lip
reader's vocabulary): neither a value nor a failure. Table ``done``: a (method, dataset, sample_id) is marked
done in the same transaction that writes its rows, so a run killed at any moment loses at most the
sample in flight and a restart neither duplicates nor redoes finished work. Table ``dataset_results``:
one row per (method, dataset, metric) for dataset-level metrics (FID, FVD), with the interval, the
number of samples pooled and a JSON ``details`` (rows, warnings); rewritten at the end of every run.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from talkbench.errors import TalkbenchError

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
  run TEXT NOT NULL, method TEXT NOT NULL, dataset TEXT NOT NULL, sample_id TEXT NOT NULL,
  metric TEXT NOT NULL, value REAL, error TEXT,
  PRIMARY KEY (method, dataset, sample_id, metric)
);
CREATE TABLE IF NOT EXISTS not_applicable (
  method TEXT NOT NULL, dataset TEXT NOT NULL, sample_id TEXT NOT NULL, scorer TEXT NOT NULL, reason TEXT,
  PRIMARY KEY (method, dataset, sample_id, scorer)
);
CREATE TABLE IF NOT EXISTS done (
  method TEXT NOT NULL, dataset TEXT NOT NULL, sample_id TEXT NOT NULL, seconds REAL,
  PRIMARY KEY (method, dataset, sample_id)
);
CREATE TABLE IF NOT EXISTS dataset_results (
  run TEXT NOT NULL, method TEXT NOT NULL, dataset TEXT NOT NULL, metric TEXT NOT NULL,
  value REAL, low REAL, high REAL, n INTEGER, error TEXT, details TEXT,
  PRIMARY KEY (method, dataset, metric)
);
"""


@dataclass(frozen=True)
class Row:
    method: str
    dataset: str
    sample_id: str
    metric: str
    value: float | None
    error: str | None = None


class ResultStore:
    def __init__(self, path: str | Path, run: str = "") -> None:
        self.path = Path(path)
        self.run = run
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One thread at a time: the runner plans in its main thread, then hands the store to its
            # writer thread (talkbench.pipeline), which is from then on the only one to use it.
            self.conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise TalkbenchError(f"cannot open the results store ({exc})", self.path) from exc

    def close(self) -> None:
        self.conn.close()

    def is_done(self, method: str, dataset: str, sample_id: str) -> bool:
        cur = self.conn.execute("SELECT 1 FROM done WHERE method=? AND dataset=? AND sample_id=?",
                                (method, dataset, sample_id))
        return cur.fetchone() is not None

    def commit_sample(self, method: str, dataset: str, sample_id: str, rows: Iterable[Row], seconds: float = 0.0,
                      not_applicable: dict[str, str] | None = None) -> None:
        """Write all rows of one (method, sample), the scorers that do not apply to it (``{scorer:
        reason}``), and mark it done, atomically."""
        try:
            with self.conn:
                self.conn.executemany("INSERT OR REPLACE INTO not_applicable VALUES (?,?,?,?,?)",
                                      [(method, dataset, sample_id, k, v) for k, v in (not_applicable or {}).items()])
                self.conn.executemany(
                    "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?)",
                    [(self.run, r.method, r.dataset, r.sample_id, r.metric,
                      None if r.value is None or (isinstance(r.value, float) and math.isnan(r.value)) else float(r.value),
                      r.error) for r in rows],
                )
                self.conn.execute("INSERT OR REPLACE INTO done VALUES (?,?,?,?)", (method, dataset, sample_id, seconds))
        except sqlite3.Error as exc:
            raise TalkbenchError(f"cannot write results ({exc}); is the disk full or the folder read-only?", self.path) from exc

    def rows(self) -> Iterator[Row]:
        for r in self.conn.execute("SELECT method, dataset, sample_id, metric, value, error FROM results ORDER BY rowid"):
            yield Row(*r)

    def frame(self) -> pd.DataFrame:
        """All rows as a tidy DataFrame (value NaN where NULL)."""
        df = pd.read_sql_query("SELECT run, method, dataset, sample_id, metric, value, error FROM results", self.conn)
        df["value"] = df["value"].astype(float)
        return df

    def put_dataset_result(self, method: str, dataset: str, metric: str, value: float | None, low: float | None,
                           high: float | None, n: int, error: str | None = None, details: str | None = None) -> None:
        def real(v: float | None) -> float | None:
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

        try:
            with self.conn:
                self.conn.execute("INSERT OR REPLACE INTO dataset_results VALUES (?,?,?,?,?,?,?,?,?,?)",
                                  (self.run, method, dataset, metric, real(value), real(low), real(high), int(n),
                                   error, details))
        except sqlite3.Error as exc:
            raise TalkbenchError(f"cannot write results ({exc})", self.path) from exc

    def dataset_frame(self) -> pd.DataFrame:
        """Dataset-level results (method, dataset, metric, value, low, high, n, error, details)."""
        df = pd.read_sql_query("SELECT method, dataset, metric, value, low, high, n, error, details "
                               "FROM dataset_results", self.conn)
        for c in ("value", "low", "high"):
            df[c] = df[c].astype(float)
        return df

    def not_applicable(self) -> pd.DataFrame:
        """(method, dataset, sample_id, scorer, reason) of every item a scorer did not apply to."""
        return pd.read_sql_query("SELECT method, dataset, sample_id, scorer, reason FROM not_applicable", self.conn)

    def count_done(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM done").fetchone()[0])

    def is_failed(self, method: str, dataset: str, sample_id: str) -> bool:
        """Whether a done (method, sample) holds any error row (it is retried on resume by default)."""
        cur = self.conn.execute("SELECT 1 FROM results WHERE method=? AND dataset=? AND sample_id=? AND error IS NOT NULL "
                                "LIMIT 1", (method, dataset, sample_id))
        return cur.fetchone() is not None

    def forget(self, method: str, dataset: str, sample_id: str) -> None:
        """Drop one (method, sample)'s rows and done mark, atomically (before retrying it)."""
        try:
            with self.conn:
                key = (method, dataset, sample_id)
                self.conn.execute("DELETE FROM results WHERE method=? AND dataset=? AND sample_id=?", key)
                self.conn.execute("DELETE FROM not_applicable WHERE method=? AND dataset=? AND sample_id=?", key)
                self.conn.execute("DELETE FROM done WHERE method=? AND dataset=? AND sample_id=?", key)
        except sqlite3.Error as exc:
            raise TalkbenchError(f"cannot write results ({exc}); is the disk full or the folder read-only?", self.path) from exc

    def failed_pairs(self) -> int:
        """Number of (method, sample) pairs with at least one error row: a failure is counted once
        per pair, however many metric rows it left."""
        return int(self.conn.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT method, dataset, sample_id FROM results WHERE error IS NOT NULL)"
        ).fetchone()[0])
