"""Readers of the synthetic corpus: the real LRS2 reader on the generated tree (generated into the
cache on first use when no root is given)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from talkbench.datasets.lrs2 import LRS2Reader
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
