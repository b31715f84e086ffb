"""A run with --limit n on an ungenerated synth-lrs2 split generates only its first n clips (the demo
needs 12 of 200): the same clips a full build writes, the split not marked complete, the run's
dataset identity the same as over a full split."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from talkbench.datasets.synth.corpus import build_corpus, lrs2_rel
from talkbench.datasets.synth.readers import SynthLRS2Reader


def test_first_clips_only_and_identical_to_a_full_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALKBENCH_CACHE", str(tmp_path / "cache"))
    reader = SynthLRS2Reader()
    reader.prepare_first("test", 2)
    got = list(itertools.islice(reader.samples("test"), 2))
    root = Path(reader.root)
    assert [s.sample_id for s in got] == [lrs2_rel("test", 0), lrs2_rel("test", 1)]
    assert len(list(root.rglob("*.mp4"))) == 2  # not 200
    assert json.loads((root.parent / "CORPUS.json").read_text())["splits"] == {}  # the split is not complete
    listing = reader.listing("test")
    assert len(listing) == 200 and [s.sample_id for s in listing[:2]] == [s.sample_id for s in got]
    assert not (root / "test.txt").exists()

    full = build_corpus("synth-lrs2", tmp_path / "full", clips={"test": 2}, splits=("test",), progress=False,
                        workers=1)
    for s in got:
        other = full / "mvlrs_v1" / "main" / f"{s.sample_id}.mp4"
        assert s.transcript and s.transcript == (other.with_suffix(".txt").read_text().split("Text:")[1].split("\n")[0]
                                                 .strip())
        assert np.array_equal(np.load(s.video_path.with_suffix(".landmarks.npy")),
                              np.load(other.with_suffix(".landmarks.npy")))
        assert (json.loads(s.video_path.with_suffix(".align.json").read_text())
                == json.loads(other.with_suffix(".align.json").read_text()))
