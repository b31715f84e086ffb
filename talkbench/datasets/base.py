"""Shared reader machinery: root checks, sidecars, per-item problems.

A reader never stops a batch for one bad entry: entries it cannot use (a split-file line pointing
nowhere, a clip without its transcript) are skipped and recorded in ``reader.problems`` as
``(item, reason)`` pairs, which the runner writes into its failure rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from talkbench.errors import DatasetError
from talkbench.types import Sample

log = logging.getLogger(__name__)

VIDEO_EXTS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg")
SIDECARS = {
    "alignment": ".align.json",
    "landmarks": ".landmarks.npy",
    "articulation": ".artic.npz",
    "synth_meta": ".meta.json",
}


def sidecars(video: Path) -> dict[str, str]:
    """Existing sidecar files next to ``video`` (``<stem><suffix>``), by key."""
    out = {}
    for key, suffix in SIDECARS.items():
        p = video.with_name(video.stem + suffix)
        if p.exists():
            out[key] = str(p)
    return out


def read_text_field(txt: Path, field: str) -> str | None:
    """Value of an LRS/LRW-style ``Field:  value`` line, or None."""
    try:
        for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(f"{field}:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


class Reader:
    """Base class: ``samples(split)`` yields :class:`Sample` in a stable order."""

    name = "base"

    def __init__(self, root: str | Path | None) -> None:
        if root is None:
            raise DatasetError(f"the {self.name} dataset needs --root (it cannot be downloaded)")
        self.root = Path(root).expanduser()
        if not self.root.exists():
            raise DatasetError("dataset root does not exist", self.root)
        if not self.root.is_dir():
            raise DatasetError("dataset root is not a folder", self.root)
        self.problems: list[tuple[str, str]] = []

    def splits(self) -> list[str]:
        raise NotImplementedError

    def samples(self, split: str = "test") -> Iterator[Sample]:
        raise NotImplementedError

    def _problem(self, item: str | Path, reason: str) -> None:
        log.warning("%s: %s", item, reason)
        self.problems.append((str(item), reason))

    def _check_split(self, split: str) -> None:
        if split not in self.splits():
            raise DatasetError(f"unknown split {split!r} for {self.name}; available: {', '.join(self.splits())}", self.root)
