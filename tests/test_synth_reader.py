"""The generated tree reads through the registry like real LRS2, and the CLI writes it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from talkbench.datasets import DATASETS


def test_cli_writes_a_corpus_the_reader_reads(tmp_path: Path) -> None:
    from talkbench.cli import cli

    out = tmp_path / "corpus"
    res = CliRunner().invoke(cli, ["data", "synth", "--corpus", "synth-lrs2", "--out", str(out),
                                    "--clips", "2", "--seed", "3", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "CORPUS.json").read_text())["splits"] == {"test": 2}
    samples = list(DATASETS.get("synth-lrs2")(out).samples("test"))
    assert len(samples) == 2
    s = samples[0]
    assert s.dataset == "synth-lrs2"
    plan = json.loads(Path(s.meta["synth_meta"]).read_text())["plan"]
    assert s.transcript.lower() == plan["text"]
    align = json.loads(Path(s.meta["alignment"]).read_text())
    assert [w["word"] for w in align["words"]] == plan["text"].split()
    from talkbench.io.video import probe

    info = probe(s.video_path)
    lms = np.load(s.meta["landmarks"])
    assert (info.width, info.height) == (160, 160)
    assert lms.shape == (info.num_frames, 68, 2)
    assert np.load(s.meta["articulation"])["params"].shape[0] == info.num_frames
    # Audio spans the video exactly (whole frames), so sync needs no trimming.
    assert abs(info.duration - info.num_frames / 25) < 0.05

    # The trainers' exact landmarks in the protocol crop (sidecar through the crop windows) sit where a
    # landmark detector finds the mouth on the crops themselves.
    from talkbench.datasets.clips import protocol_clips, sidecar_landmarks
    from talkbench.faces.landmarks import detect_landmarks

    for smp, clip in protocol_clips("synth-lrs2", str(out), "test", 1):
        lm = sidecar_landmarks(smp, clip)
        assert lm is not None and lm.shape == (clip.num_frames, 68, 2)
        found = detect_landmarks(clip.frames[:4])
        assert np.nanmean(np.abs(found[:, 48:68] - lm[:4, 48:68])) < 3.0


def test_synth_lrw_word_centred_in_29_frames(tmp_path: Path) -> None:
    from talkbench.datasets.synth.corpus import build_corpus
    from talkbench.datasets.synth.readers import SynthLRWReader
    from talkbench.io.video import probe

    root = build_corpus("synth-lrw", tmp_path / "lrw", clips=2, splits=("test", "val"), progress=False, workers=1)
    samples = list(SynthLRWReader(root).samples("test"))
    assert [s.word for s in samples] == ["ABOUT", "ABSOLUTELY"]  # the first two of LRW's vocabulary
    assert list(SynthLRWReader(root).samples("val"))  # val folders exist for every word
    for s in samples:
        info = probe(s.video_path)
        assert (info.num_frames, info.width, info.height) == (29, 256, 256)
        target = json.loads(Path(s.meta["alignment"]).read_text())["words"][1]
        assert target["word"] == s.word.lower()
        assert abs((target["start"] + target["end"]) / 2 - 29 / 25 / 2) <= 0.5 / 25 + 1e-6
        assert s.meta["word_duration"] == round(target["end"] - target["start"], 2)
        assert np.load(s.meta["landmarks"]).shape == (29, 68, 2)


def test_synth_hdtf_long_clips_in_hdtf_layout(tmp_path: Path) -> None:
    from talkbench.datasets.synth.corpus import build_corpus
    from talkbench.datasets.synth.readers import SynthHDTFReader
    from talkbench.io.video import probe

    root = build_corpus("synth-hdtf", tmp_path / "hdtf", clips=1, progress=False, workers=1)
    (s,) = list(SynthHDTFReader(root).samples("test"))
    info = probe(s.video_path)
    assert (info.width, info.height) == (512, 512)  # HDTF's distributed resolution
    assert info.duration > 8.0
    plan = json.loads(Path(s.meta["synth_meta"]).read_text())["plan"]
    assert s.sample_id.startswith(f"Synth{plan['identity']:03d}_")
    assert np.load(s.meta["landmarks"]).shape == (info.num_frames, 68, 2)


def test_default_synth_hdtf_renders_only_the_split_it_reads(tmp_path: Path, monkeypatch) -> None:
    """An evaluation on the default synth-hdtf must not render the training monologues (it did: the
    reader built all three splits, 15 min of a paper run); a later read of another split builds it."""
    from talkbench.datasets.synth import corpus
    from talkbench.datasets.synth.readers import SynthHDTFReader

    monkeypatch.setenv("TALKBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(corpus, "DEFAULT_CLIPS_HDTF", {"train": 1, "val": 1, "test": 1})
    reader = SynthHDTFReader()
    manifest = reader.root / "CORPUS.json"
    assert set(json.loads(manifest.read_text())["splits"]) == {"test"}
    assert not list((reader.root / "clips").glob("*.mp4"))[1:]  # the one test clip only
    assert {"train", "val", "test"} <= set(reader.splits())
    (s,) = list(reader.samples("val"))
    assert s.split == "val" and s.video_path.exists()
    assert set(json.loads(manifest.read_text())["splits"]) == {"test", "val"}
    assert len(list(reader.samples("test"))) == 1
