"""The LRW word list in its class order (a lip reader's output index = the word's position)."""

from __future__ import annotations

from pathlib import Path

WORDS_FILE = Path(__file__).resolve().parents[1] / "datasets" / "synth" / "lrw_words.txt"


def lrw_vocabulary() -> list[str]:
    """LRW's 500 words in their sorted class order (class index = position), upper case."""
    return [w.strip().upper() for w in WORDS_FILE.read_text(encoding="utf-8").splitlines() if w.strip()]
