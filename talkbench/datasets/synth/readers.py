"""Readers of the synthetic corpus: the real LRS2 reader on the generated tree (generated into the
cache on first use when no root is given)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from talkbench.datasets.hdtf import HDTFReader
from talkbench.datasets.lrs2 import LRS2Reader
from talkbench.datasets.lrw import LRWReader
from talkbench.types import Sample


class SynthLRS2Reader(LRS2Reader):
    name = "synth-lrs2"

    def __init__(self, root: str | Path | None = None, seed: int = 0) -> None:
        self._lazy = root is None
        self._seed = seed
        if root is None:
            from talkbench.datasets.synth.corpus import ensure_corpus

            root = ensure_corpus("synth-lrs2", "test", seed)
        super().__init__(root)

    def samples(self, split: str = "test") -> Iterator[Sample]:
        if self._lazy and self._split_file(split) is None:
            from talkbench.datasets.synth.corpus import ensure_corpus

            ensure_corpus("synth-lrs2", split, self._seed)
        for s in super().samples(split):
            yield Sample(dataset=self.name, split=s.split, sample_id=s.sample_id, video_path=s.video_path,
                         audio_path=s.audio_path, transcript=s.transcript, word=s.word, meta=s.meta)


class SynthLRWReader(LRWReader):
    """synth-lrw: 29-frame 256 px clips of one of LRW's 500 words centred between two context words,
    in LRW's ``lipread_mp4/<WORD>/<split>/`` layout (``root=None``: the cached default corpus)."""

    name = "synth-lrw"

    def __init__(self, root: str | Path | None = None, seed: int = 0) -> None:
        self._lazy = root is None
        self._seed = seed
        if root is None:
            from talkbench.datasets.synth.corpus import ensure_corpus

            root = ensure_corpus("synth-lrw", "test", seed)
        super().__init__(root)

    def samples(self, split: str = "test") -> Iterator[Sample]:
        if self._lazy:
            from talkbench.datasets.synth.corpus import ensure_corpus

            ensure_corpus("synth-lrw", split, self._seed)
            self.words = sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.isupper())
        for s in super().samples(split):
            yield Sample(dataset=self.name, split=s.split, sample_id=s.sample_id, video_path=s.video_path,
                         audio_path=s.audio_path, transcript=s.transcript, word=s.word, meta=s.meta)


class SynthHDTFReader(HDTFReader):
    """synth-hdtf: 10-25 s monologues at 512 px (HDTF's distributed resolution) in HDTF's flat ``<Speaker>_<NNN>.mp4`` layout with
    ``splits/<split>.txt`` (``root=None``: the cached default corpus, all three splits)."""

    name = "synth-hdtf"

    def __init__(self, root: str | Path | None = None, split_file: str | Path | None = None, seed: int = 0) -> None:
        if root is None:
            from talkbench.datasets.synth.corpus import ensure_corpus

            for split in ("train", "val", "test"):
                root = ensure_corpus("synth-hdtf", split, seed)
        super().__init__(root, split_file)

    def samples(self, split: str = "test") -> Iterator[Sample]:
        for s in super().samples(split):
            yield Sample(dataset=self.name, split=s.split, sample_id=s.sample_id, video_path=s.video_path,
                         audio_path=s.audio_path, transcript=s.transcript, word=s.word, meta=s.meta)
