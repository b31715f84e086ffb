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


def test_hdtf_real_naming_symlinked_folders_and_side_wav(tmp_path: Path) -> None:
    """Tables in MRzzm/HDTF's keys (``ReneeEllmers_0.mp4``, ``ReneeEllmers.mp4`` in WRA_* files) attach
    to ``WRA_ReneeEllmers_000``; clips in a symlinked folder are found; a video-only mp4 with a same-stem
    .wav (what the linked download script produces) runs end to end through the CLI."""
    from click.testing import CliRunner
    from scipy.io import wavfile

    from talkbench.cli import cli
    from talkbench.io.video import write_video
    from tests.conftest import talking_frames, tone

    real = tmp_path / "elsewhere" / "WRA"
    real.mkdir(parents=True)
    write_video(real / "WRA_ReneeEllmers_000.mp4", talking_frames(12, size=160), None)  # video only
    wavfile.write(real / "WRA_ReneeEllmers_000.wav", 16000, (tone(0.48) * 32767).astype(np.int16))
    root = tmp_path / "hdtf"
    root.mkdir()
    (root / "WRA").symlink_to(real, target_is_directory=True)
    ann = root / "HDTF_dataset"
    ann.mkdir()
    (ann / "WRA_crop_wh.txt").write_text("ReneeEllmers_0.mp4 426 469 0 469\nReneeEllmers_1.mp4 1 2 3 4\n")
    (ann / "WRA_annotion_time.txt").write_text("ReneeEllmers.mp4 00:01-00:40\n")
    (ann / "RD_crop_wh.txt").write_text("ReneeEllmers_0.mp4 9 9 9 9\n")  # another group's row never attaches
    (root / "splits").mkdir()
    (root / "splits" / "test.txt").write_text("WRA_ReneeEllmers_000\n")
    [s] = list(HDTFReader(root).samples("test"))
    assert s.meta["crop_wh"] == ["426", "469", "0", "469"] and s.meta["annotion_time"] == ["00:01-00:40"]
    assert s.audio_path is not None and s.audio_path.name == "WRA_ReneeEllmers_000.wav"
    res = CliRunner().invoke(cli, ["run", "--methods", "static", "--dataset", "hdtf", "--root", str(root),
                                   "--metrics", "psnr", "--run-dir", str(tmp_path / "run"), "--no-report"])
    assert res.exit_code == 0, res.output
    import sqlite3

    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as c:
        rows = c.execute("SELECT method, metric, error FROM results WHERE metric='psnr'").fetchall()
    assert sorted(rows) == [("gt", "psnr", None), ("static", "psnr", None)]
