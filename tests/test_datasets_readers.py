from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkbench.datasets import DATASETS
from talkbench.datasets.folder import FolderReader
from talkbench.datasets.hdtf import HDTFReader
from talkbench.datasets.lrs2 import LRS2Reader
from talkbench.datasets.lrw import LRWReader
from talkbench.errors import DatasetError
from talkbench.io.video import write_video


def _clip(path: Path, n: int = 4) -> None:
    write_video(path, np.zeros((n, 32, 32, 3), np.uint8), np.zeros(n * 640, np.float32))


def test_lrw_layout(tmp_path: Path) -> None:
    root = tmp_path / "lipread_mp4"
    for word in ("ABOUT", "WORLD"):
        for split in ("train", "test"):
            d = root / word / split
            d.mkdir(parents=True)
            for i in (1, 2):
                _clip(d / f"{word}_{i:05d}.mp4")
                (d / f"{word}_{i:05d}.txt").write_text(f"Text:  {word}\nConf:  1\n\nDuration: 0.33 seconds\n")
    (root / "WORLD" / "val").mkdir()
    reader = LRWReader(tmp_path)
    items = list(reader.samples("test"))
    assert [s.sample_id for s in items] == [
        "ABOUT/test/ABOUT_00001", "ABOUT/test/ABOUT_00002", "WORLD/test/WORLD_00001", "WORLD/test/WORLD_00002"]
    assert items[0].word == "ABOUT" and items[0].meta["word_duration"] == pytest.approx(0.33)
    list(reader.samples("val"))
    assert any("missing split folder" in r for _, r in reader.problems)
    with pytest.raises(DatasetError, match="unknown split"):
        list(reader.samples("dev"))


def test_lrs2_layout_and_bad_split_lines(tmp_path: Path) -> None:
    root = tmp_path / "mvlrs_v1"
    (root / "main" / "6330311066473698535").mkdir(parents=True)
    _clip(root / "main" / "6330311066473698535" / "00011.mp4")
    (root / "main" / "6330311066473698535" / "00011.txt").write_text("Text:  HELLO THERE\nConf:  4\n")
    (root / "main" / "6330311066473698535" / "00011.align.json").write_text("{}")
    (root / "test.txt").write_text("6330311066473698535/00011 NF\n6330311066473698535/99999\nbroken-line\n\n")
    reader = DATASETS.get("lrs2")(tmp_path)
    items = list(reader.samples("test"))
    assert len(items) == 1
    s = items[0]
    assert s.sample_id == "6330311066473698535/00011" and s.transcript == "HELLO THERE"
    assert s.meta["tag"] == "NF" and s.meta["alignment"].endswith("00011.align.json")
    reasons = " ".join(r for _, r in reader.problems)
    assert "not found" in reasons and "malformed" in reasons
    with pytest.raises(DatasetError, match="train.txt"):
        list(reader.samples("train"))
    assert reader.splits() == ["test"]


def test_hdtf_needs_a_split_file(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    for name in ("WRA_ReneeEllmers_000", "RD_Radio11_000"):
        _clip(tmp_path / "clips" / f"{name}.mp4")
    ann = tmp_path / "HDTF_dataset"
    ann.mkdir()
    (ann / "WRA_crop_wh.txt").write_text("WRA_ReneeEllmers_000.mp4 100 400 50 400\n")
    reader = HDTFReader(tmp_path)
    with pytest.raises(DatasetError, match="no official split"):
        list(reader.samples("test"))
    assert len(list(reader.samples("all"))) == 2
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "test.txt").write_text("WRA_ReneeEllmers_000.mp4\nMISSING_000\n")
    items = list(HDTFReader(tmp_path).samples("test"))
    assert [s.sample_id for s in items] == ["WRA_ReneeEllmers_000"]
    assert items[0].meta["crop_wh"] == ["100", "400", "50", "400"]


def test_folder_reader_with_wavs_and_transcripts(tmp_path: Path) -> None:
    _clip(tmp_path / "a.mp4")
    _clip(tmp_path / "sub" / "b.mov") if (tmp_path / "sub").mkdir() is None else None
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "a.txt").write_text("some words")
    items = list(FolderReader(tmp_path).samples("all"))
    assert [s.sample_id for s in items] == ["a", "sub/b"]
    assert items[0].audio_path == tmp_path / "a.wav" and items[0].transcript == "some words"
    assert items[1].audio_path is None


def test_missing_root_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        LRS2Reader(tmp_path / "nope")
    with pytest.raises(DatasetError, match="needs --root"):
        LRWReader(None)
    with pytest.raises(KeyError, match="Did you mean: lrs2"):
        DATASETS.get("lrs3")
