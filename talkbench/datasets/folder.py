"""A generic folder of talking-face videos: every video under the root (recursively), with an
optional same-stem ``.wav`` (driving audio; else the container's audio) and ``.txt`` (transcript; an
LRS-style ``Text:`` line or the whole file). Split: the folder has one, called ``all`` (``test`` is
accepted as an alias), unless it has ``train/``, ``val/``, ``test/`` subfolders.

Sample ids are the relative path without the extension, so two videos differing only in extension
(``x.mp4`` and ``x.mov``) would share one id: that is a :class:`DatasetError` naming both files
(renaming one is the fix; silently dropping one would change the benchmark)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from talkbench.datasets.base import VIDEO_EXTS, Reader, read_text_field, sidecars
from talkbench.errors import DatasetError
from talkbench.types import Sample


class FolderReader(Reader):
    name = "folder"

    def splits(self) -> list[str]:
        subs = [s for s in ("train", "val", "test") if (self.root / s).is_dir()]
        return subs or ["all", "test"]

    def samples(self, split: str = "test") -> Iterator[Sample]:
        self._check_split(split)
        base = self.root / split if (self.root / split).is_dir() else self.root
        videos = sorted(p for p in base.rglob("*") if p.suffix.lower() in VIDEO_EXTS and not p.name.startswith("."))
        if not videos:
            raise DatasetError("no videos found", base)
        seen: dict[str, Path] = {}
        for video in videos:
            sid = video.relative_to(base).with_suffix("").as_posix()
            if sid in seen:
                raise DatasetError(f"two videos share the sample id {sid!r}: {seen[sid]} and {video}; rename one", base)
            seen[sid] = video
        for video in videos:
            wav = video.with_suffix(".wav")
            txt = video.with_suffix(".txt")
            transcript = None
            if txt.exists():
                transcript = read_text_field(txt, "Text") or txt.read_text(errors="replace").strip() or None
            yield Sample(
                dataset=self.name, split=split, sample_id=video.relative_to(base).with_suffix("").as_posix(),
                video_path=video, audio_path=wav if wav.exists() else None, transcript=transcript,
                meta=dict(sidecars(video)),
            )
