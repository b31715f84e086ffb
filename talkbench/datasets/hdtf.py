"""HDTF: processed clips ``<name>_<idx>.mp4`` (e.g. ``WRA_ReneeEllmers_000.mp4`` or
``Radio11_0.mp4``) under the root (searched recursively), plus the distributed annotation files
(``HDTF_dataset/xx_annotion_time.txt``, ``xx_crop_wh.txt``, ``xx_crop_ratio.txt``,
``xx_resolution.txt``) whose per-clip rows go into ``meta``.

HDTF has no official split: a split file (one clip name per line, with or without ``.mp4``) is
required for anything but ``split="all"``; by default ``<root>/splits/<split>.txt`` or
``<root>/<split>.txt``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from talkbench.datasets.base import VIDEO_EXTS, Reader, sidecars
from talkbench.errors import DatasetError
from talkbench.types import Sample


def _read_table(path: Path) -> dict[str, list[str]]:
    rows = {}
    for line in path.read_text(errors="replace").splitlines():
        tokens = line.split()
        if tokens:
            rows[Path(tokens[0]).stem] = tokens[1:]
    return rows


class HDTFReader(Reader):
    name = "hdtf"

    def __init__(self, root: str | Path | None, split_file: str | Path | None = None) -> None:
        super().__init__(root)
        self.split_file = Path(split_file) if split_file else None
        self.videos = {p.stem: p for p in sorted(self.root.rglob("*")) if p.suffix.lower() in VIDEO_EXTS}
        if not self.videos:
            raise DatasetError("no video clips found under the HDTF root", self.root)
        self.annotations: dict[str, dict[str, list[str]]] = {}
        for kind in ("crop_wh", "crop_ratio", "annotion_time", "resolution"):
            for table in sorted(self.root.rglob(f"*_{kind}.txt")):
                for clip, values in _read_table(table).items():
                    self.annotations.setdefault(clip, {})[kind] = values

    def _split_path(self, split: str) -> Path | None:
        if self.split_file is not None:
            return self.split_file
        for p in (self.root / "splits" / f"{split}.txt", self.root / f"{split}.txt"):
            if p.exists():
                return p
        return None

    def splits(self) -> list[str]:
        found = [s for s in ("train", "val", "test") if self._split_path(s) is not None]
        return [*found, "all"]

    def samples(self, split: str = "test") -> Iterator[Sample]:
        if split == "all":
            names = list(self.videos)
        else:
            path = self._split_path(split)
            if path is None:
                raise DatasetError(
                    f"HDTF has no official split: give a split file for {split!r} "
                    f"(<root>/splits/{split}.txt, one clip name per line) or use split 'all'",
                    self.root,
                )
            if not path.exists():
                raise DatasetError("split file not found", path)
            names = [Path(t.split()[0]).stem for t in path.read_text(errors="replace").splitlines() if t.strip()]
        for name in names:
            video = self.videos.get(name)
            if video is None:
                self._problem(name, f"listed in the {split} split but no clip {name}.* under {self.root}")
                continue
            meta: dict = dict(sidecars(video))
            stem_source = name.rsplit("_", 1)[0]
            for kind, values in {**self.annotations.get(stem_source, {}), **self.annotations.get(name, {})}.items():
                meta[kind] = values
            txt = video.with_suffix(".txt")
            transcript = txt.read_text(errors="replace").strip() if txt.exists() else None
            yield Sample(dataset=self.name, split=split, sample_id=name, video_path=video, transcript=transcript, meta=meta)
