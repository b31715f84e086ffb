"""HDTF: processed clips ``<name>_<idx>.mp4`` (e.g. ``WRA_ReneeEllmers_000.mp4`` or
``Radio11_0.mp4``) under the root (searched recursively, symlinked folders followed), plus the
distributed annotation files (``HDTF_dataset/<GROUP>_annotion_time.txt``, ``_crop_wh.txt``,
``_crop_ratio.txt``, ``_resolution.txt``) whose rows go into ``meta``.

The tables key source videos as ``Name.mp4`` and clips as ``Name_0.mp4`` (MRzzm/HDTF), while the
processed clips common in the wild are ``<GROUP>_<Name>_<NNN>`` (group RD, WDA or WRA from the table's
file name, a zero-padded clip index): ``WRA_ReneeEllmers_000`` takes the rows of ``ReneeEllmers_0.mp4`` and
``ReneeEllmers.mp4`` in the ``WRA_*`` tables. The download script the official README links fetches
video-only streams, so a same-stem ``.wav`` beside a clip is its audio.

HDTF has no official split: a split file (one clip name per line, with or without ``.mp4``) is
required for anything but ``split="all"``; by default ``<root>/splits/<split>.txt`` or
``<root>/<split>.txt``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from talkbench.datasets.base import VIDEO_EXTS, Reader, sidecars
from talkbench.errors import DatasetError
from talkbench.types import Sample

KINDS = ("crop_wh", "crop_ratio", "annotion_time", "resolution")
GROUPED = re.compile(r"^(?P<group>[A-Z]+)_(?P<name>.+)_(?P<idx>\d+)$")


def _read_table(path: Path) -> dict[str, list[str]]:
    rows = {}
    for line in path.read_text(errors="replace").splitlines():
        tokens = line.split()
        if tokens:
            rows[Path(tokens[0]).stem] = tokens[1:]
    return rows


def _files(root: Path) -> Iterator[Path]:
    """Every file under ``root``, following symlinked folders (each real folder once)."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        for f in sorted(filenames):
            yield Path(dirpath) / f


def table_keys(clip: str) -> list[tuple[str | None, str]]:
    """(group or None, key) pairs under which the annotation tables may list ``clip``, most specific
    first: the clip itself (``Radio11_0``), its source video (``Radio11``), and for ``WRA_Name_000`` the
    group's ``Name_0`` and ``Name``."""
    keys: list[tuple[str | None, str]] = [(None, clip), (None, clip.rsplit("_", 1)[0])]
    m = GROUPED.match(clip)
    if m:
        keys[:0] = [(m["group"], f"{m['name']}_{int(m['idx'])}"), (m["group"], m["name"])]
    return keys


class HDTFReader(Reader):
    name = "hdtf"

    def __init__(self, root: str | Path | None, split_file: str | Path | None = None) -> None:
        super().__init__(root)
        self.split_file = Path(split_file) if split_file else None
        self._index()

    def _index(self) -> None:
        files = list(_files(self.root))
        self.videos = {p.stem: p for p in files if p.suffix.lower() in VIDEO_EXTS}
        if not self.videos:
            raise DatasetError("no video clips found under the HDTF root", self.root)
        # (group, key) -> {kind: values}; group None holds every table's rows (ungrouped clip names).
        self.annotations: dict[tuple[str | None, str], dict[str, list[str]]] = {}
        for table in files:
            kind = next((k for k in KINDS if table.name.endswith(f"_{k}.txt")), None)
            if kind is None:
                continue
            group = table.name[: -len(f"_{kind}.txt")]
            for key, values in _read_table(table).items():
                for g in (group, None):
                    self.annotations.setdefault((g, key), {}).setdefault(kind, values)

    def annotation(self, clip: str) -> dict[str, list[str]]:
        """The annotation rows of ``clip`` by kind (the most specific key of :func:`table_keys` wins)."""
        out: dict[str, list[str]] = {}
        for key in table_keys(clip):
            for kind, values in self.annotations.get(key, {}).items():
                out.setdefault(kind, values)
        return out

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
            meta: dict = {**sidecars(video), **self.annotation(name)}
            txt = video.with_suffix(".txt")
            transcript = txt.read_text(errors="replace").strip() if txt.exists() else None
            wav = video.with_suffix(".wav")
            yield Sample(dataset=self.name, split=split, sample_id=name, video_path=video,
                         audio_path=wav if wav.exists() else None, transcript=transcript, meta=meta)
