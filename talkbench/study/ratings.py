"""Ratings of a study: ``STUDY/ratings.sqlite``.

Participants are known by the sha256 of their session secret (the cookie), never the secret itself.
A rating is one row per (participant, video) with the three scores, the time the video was first
served and the time it was submitted; the PRIMARY KEY makes a second submission impossible, and each
submission runs in one ``BEGIN IMMEDIATE`` transaction, so two sessions of one participant serialise.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from talkbench.errors import TalkbenchError
from talkbench.study.definition import CRITERIA, SCALE

_COLS = ", ".join(f"{c.key} INTEGER NOT NULL CHECK ({c.key} BETWEEN {SCALE[0]} AND {SCALE[1]})" for c in CRITERIA)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS participants (
  id TEXT PRIMARY KEY, idx INTEGER NOT NULL UNIQUE, created REAL NOT NULL, completed REAL, user_agent TEXT
);
CREATE TABLE IF NOT EXISTS views (
  participant TEXT NOT NULL, item TEXT NOT NULL, shown REAL NOT NULL, PRIMARY KEY (participant, item)
);
CREATE TABLE IF NOT EXISTS ratings (
  participant TEXT NOT NULL REFERENCES participants(id), item TEXT NOT NULL, position INTEGER NOT NULL,
  {_COLS}, shown REAL, submitted REAL NOT NULL,
  PRIMARY KEY (participant, item)
);
"""


class RatingRejected(TalkbenchError):
    """A submission that is refused; ``status`` is the HTTP status the server answers with."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Participant:
    id: str  # sha256 of the session secret
    idx: int  # 0-based enrolment number; selects the presentation order
    completed: float | None


class RatingStore:
    """One connection per call (the server is multi-threaded; SQLite connections are not shared)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise TalkbenchError(f"cannot open the ratings store ({exc})", self.path) from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=FULL")  # a rating acknowledged to the browser is on disk
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def enrol(self, secret: str, user_agent: str = "") -> Participant:
        """A new participant with the next enrolment number (atomic under concurrent consents)."""
        pid = secret_hash(secret)
        with self._transaction() as conn:
            idx = conn.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM participants").fetchone()[0]
            conn.execute("INSERT INTO participants VALUES (?,?,?,?,?)", (pid, idx, time.time(), None, user_agent[:300]))
        return Participant(pid, idx, None)

    def participant(self, secret: str | None) -> Participant | None:
        if not secret:
            return None
        with self._connect() as conn:
            row = conn.execute("SELECT id, idx, completed FROM participants WHERE id=?", (secret_hash(secret),)).fetchone()
        return Participant(*row) if row else None

    def rated(self, participant: Participant) -> set[str]:
        with self._connect() as conn:
            return {r[0] for r in conn.execute("SELECT item FROM ratings WHERE participant=?", (participant.id,))}

    def mark_shown(self, participant: Participant, item: str) -> None:
        with self._connect() as conn:
            conn.execute("INSERT OR IGNORE INTO views VALUES (?,?,?)", (participant.id, item, time.time()))

    def submit(self, participant: Participant, order: list[str], item: str, scores: dict[str, int]) -> int:
        """Store one rating; returns how many the participant has now. The item must be the participant's
        next unrated one: an already rated item is refused (409), so is one out of order (409)."""
        with self._transaction() as conn:
            done = {r[0] for r in conn.execute("SELECT item FROM ratings WHERE participant=?", (participant.id,))}
            if item in done:
                raise RatingRejected("this video was already rated by this participant; nothing stored", 409)
            position = len(done)
            if position >= len(order) or order[position] != item:
                raise RatingRejected("this is not the participant's current video (another tab moved on?); "
                                     "nothing stored", 409)
            shown = conn.execute("SELECT shown FROM views WHERE participant=? AND item=?",
                                 (participant.id, item)).fetchone()
            keys = [c.key for c in CRITERIA]
            conn.execute(f"INSERT INTO ratings (participant, item, position, {', '.join(keys)}, shown, submitted) "
                         f"VALUES (?,?,?,{','.join('?' * len(keys))},?,?)",
                         (participant.id, item, position, *(scores[k] for k in keys), shown[0] if shown else None,
                          time.time()))
            if position + 1 == len(order):
                conn.execute("UPDATE participants SET completed=? WHERE id=?", (time.time(), participant.id))
        return position + 1

    def participants(self) -> pd.DataFrame:
        with self._connect() as conn:
            df = pd.read_sql_query(
                "SELECT p.idx, p.id, p.created, p.completed, COUNT(r.item) AS rated, MAX(r.submitted) AS last "
                "FROM participants p LEFT JOIN ratings r ON r.participant = p.id GROUP BY p.id ORDER BY p.idx", conn)
        return df

    def ratings(self) -> pd.DataFrame:
        """Tidy-ish: one row per (participant, item) with idx and the criteria columns."""
        with self._connect() as conn:
            return pd.read_sql_query(
                "SELECT p.idx, r.participant, r.item, r.position, "
                + ", ".join(f"r.{c.key}" for c in CRITERIA)
                + ", r.shown, r.submitted FROM ratings r JOIN participants p ON p.id = r.participant "
                "ORDER BY p.idx, r.position", conn)
