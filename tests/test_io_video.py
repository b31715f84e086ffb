from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkbench.errors import MediaError
from talkbench.io.audio import load_audio
from talkbench.io.video import iter_video, probe, read_video, write_video


def _index_frames(n: int, size: int = 32) -> np.ndarray:
    """Frame i is a flat grey of value 8*i, so the decoded value tells which source frame it is."""
    return np.stack([np.full((size, size, 3), 8 * i, np.uint8) for i in range(n)])


def test_roundtrip_frames_and_count(tmp_path: Path) -> None:
    frames = _index_frames(30)
    write_video(tmp_path / "a.mp4", frames, fps=25)
    back = read_video(tmp_path / "a.mp4", fps=25)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 2.0
    info = probe(tmp_path / "a.mp4")
    assert info.fps == pytest.approx(25.0) and info.num_frames == 30 and not info.has_audio


def test_pcm_audio_is_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    audio = (np.round(rng.uniform(-0.5, 0.5, 16000) * 32767) / 32767).astype(np.float32)
    write_video(tmp_path / "a.mov", _index_frames(25), audio, codec="pcm")
    back = load_audio(tmp_path / "a.mov", 16000)
    assert len(back) == len(audio)
    assert np.abs(np.round(back * 32768) - np.round(audio * 32767)).max() <= 1


def test_aac_audio_close(tmp_path: Path) -> None:
    t = np.arange(16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_video(tmp_path / "a.mp4", _index_frames(25), audio)
    back = load_audio(tmp_path / "a.mp4", 16000)
    n = min(len(back), len(audio)) - 2000
    corr = np.corrcoef(back[1000:n], audio[1000:n])[0, 1]
    assert corr > 0.95  # AAC priming is removed: no lag


def test_fps_resampling_by_timestamps(tmp_path: Path) -> None:
    # 30 fps source, 1 s: output slot k at time k/25 shows source frame floor(k*30/25).
    frames = _index_frames(30)
    write_video(tmp_path / "a30.mp4", frames, fps=30)
    out = read_video(tmp_path / "a30.mp4", fps=25)
    assert len(out) == 25
    shown = np.round(out[:, 16, 16, 0] / 8.0).astype(int)
    expected = np.floor(np.arange(25) * 30 / 25 + 1e-9).astype(int)
    assert np.array_equal(shown, expected)


def test_odd_size_padded(tmp_path: Path) -> None:
    frames = np.zeros((5, 33, 47, 3), np.uint8)
    write_video(tmp_path / "odd.mp4", frames)
    assert read_video(tmp_path / "odd.mp4").shape == (5, 34, 48, 3)


def test_streaming_chunks_equal_whole(tmp_path: Path) -> None:
    frames = _index_frames(30)
    write_video(tmp_path / "a.mp4", frames, fps=30)
    chunks = list(iter_video(tmp_path / "a.mp4", fps=25, chunk_frames=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 4]
    assert np.array_equal(np.concatenate(chunks), read_video(tmp_path / "a.mp4", fps=25))


def test_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="zero-length"):
        read_video(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError) as err:
        read_video(junk)
    assert "junk.mp4" in str(err.value)
    with pytest.raises(MediaError, match="not found"):
        probe(tmp_path / "missing.mp4")


def test_truncated_file_keeps_decodable_prefix(tmp_path: Path) -> None:
    write_video(tmp_path / "a.mp4", _index_frames(30), fps=25)
    data = (tmp_path / "a.mp4").read_bytes()
    (tmp_path / "t.mp4").write_bytes(data[: len(data) // 2])
    try:
        out = read_video(tmp_path / "t.mp4")
    except MediaError as exc:  # a header cut away is an error naming the file
        assert "t.mp4" in str(exc)
    else:
        assert 0 < len(out) <= 31


def test_real_video_30fps(real_data: Path) -> None:
    p = real_data / "videos" / "retalking_4.mp4"
    info = probe(p)
    assert info.fps == pytest.approx(30.0)
    frames = read_video(p, fps=25)
    assert len(frames) == round(info.num_frames * 25 / 30)
    assert frames.dtype == np.uint8 and frames.shape[1:] == (700, 700, 3)
