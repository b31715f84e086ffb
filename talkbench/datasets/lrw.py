"""LRW (lrw-v1): ``lipread_mp4/<WORD>/{train,val,test}/<WORD>_<NNNNN>.{mp4,txt}``.

29 frames at 25 fps with the target word centred; the ``.txt`` holds ``Duration: <s> seconds``
(the word's duration, read as the 5th line by mpc001's LRW code), kept in ``meta["word_duration"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from talkbench.datasets.base import Reader, sidecars
from talkbench.errors import DatasetError
from talkbench.types import Sample


def _duration(txt: Path) -> float | None:
    try:
        for line in txt.read_text(errors="replace").splitlines():
            if line.startswith("Duration:"):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class LRWReader(Reader):
    name = "lrw"

    def __init__(self, root: str | Path | None) -> None:
        super().__init__(root)
        if (self.root / "lipread_mp4").is_dir():
            self.root = self.root / "lipread_mp4"
        self.words = sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.isupper())
        if not self.words:
            raise DatasetError("no LRW word folders (UPPERCASE names) found", self.root)

    def splits(self) -> list[str]:
        return ["train", "val", "test"]

    def samples(self, split: str = "test") -> Iterator[Sample]:
        self._check_split(split)
        for word in self.words:
            folder = self.root / word / split
            if not folder.is_dir():
                self._problem(folder, "missing split folder")
                continue
            for video in sorted(folder.glob(f"{word}_*.mp4")):
                txt = video.with_suffix(".txt")
                meta: dict = dict(sidecars(video))
                if txt.exists():
                    d = _duration(txt)
                    if d is not None:
                        meta["word_duration"] = d
                yield Sample(
                    dataset=self.name, split=split, sample_id=f"{word}/{split}/{video.stem}",
                    video_path=video, transcript=word, word=word, meta=meta,
                )
