"""LRS2-BBC (mvlrs_v1): ``main/<video_id>/<clip>.{mp4,txt}`` and ``pretrain/...``, with split files
``train.txt``, ``val.txt``, ``test.txt``, ``pretrain.txt`` (one ``<video_id>/<clip>`` per line; test
lines carry an extra tag after a space, ignored as Wav2Lip does). Transcripts: the ``Text:`` line of
each clip's ``.txt``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from talkbench.datasets.base import Reader, read_text_field, sidecars
from talkbench.errors import DatasetError
from talkbench.types import Sample

SPLITS = ("train", "val", "test", "pretrain")


class LRS2Reader(Reader):
    name = "lrs2"

    def __init__(self, root: str | Path | None) -> None:
        super().__init__(root)
        if (self.root / "mvlrs_v1").is_dir():
            self.root = self.root / "mvlrs_v1"
        if not (self.root / "main").is_dir() and not (self.root / "pretrain").is_dir():
            raise DatasetError("not an LRS2 root: no main/ or pretrain/ folder", self.root)

    def _split_file(self, split: str) -> Path | None:
        for folder in (self.root, self.root.parent):
            p = folder / f"{split}.txt"
            if p.exists():
                return p
        return None

    def splits(self) -> list[str]:
        return [s for s in SPLITS if self._split_file(s) is not None]

    def samples(self, split: str = "test") -> Iterator[Sample]:
        if split not in SPLITS:
            raise DatasetError(f"unknown LRS2 split {split!r}; use one of {', '.join(SPLITS)}", self.root)
        split_file = self._split_file(split)
        if split_file is None:
            raise DatasetError(f"split file {split}.txt not found next to main/", self.root)
        sub = "pretrain" if split == "pretrain" else "main"
        for lineno, line in enumerate(split_file.read_text(errors="replace").splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            rel = tokens[0]
            parts = rel.split("/")
            if len(parts) != 2 or not all(parts):
                self._problem(f"{split_file}:{lineno}", f"malformed entry {line!r} (want <video_id>/<clip>)")
                continue
            video = self.root / sub / f"{rel}.mp4"
            if not video.exists():
                self._problem(f"{split_file}:{lineno}", f"listed clip not found: {video}")
                continue
            txt = video.with_suffix(".txt")
            transcript = read_text_field(txt, "Text") if txt.exists() else None
            meta: dict = dict(sidecars(video))
            if len(tokens) > 1:
                meta["tag"] = " ".join(tokens[1:])
            yield Sample(
                dataset=self.name, split=split, sample_id=rel, video_path=video,
                transcript=transcript, meta=meta,
            )
