"""Audio front-ends against independent references: python_speech_features, librosa, scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from talkbench.errors import NoAudioError
from talkbench.io.audio import (
    audio_units,
    load_audio,
    log_mel,
    mel_filterbank,
    mfcc,
    resample,
    stft_magnitude,
    wav2lip_mel,
)
from talkbench.io.video import write_video


@pytest.fixture(scope="module")
def speech(real_data: Path) -> np.ndarray:
    return load_audio(real_data / "speech" / "hallo_1.wav", 16000)[: 16000 * 3]


def test_mfcc_equals_python_speech_features(speech: np.ndarray) -> None:
    psf = pytest.importorskip("python_speech_features")
    x = speech * 32768.0  # int16 scale, as syncnet_python feeds it
    ours = mfcc(x, 16000)
    ref = psf.mfcc(x, 16000)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-4)


def test_mel_filterbank_equals_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    for n_fft, fmin, fmax in [(800, 55.0, 7600.0), (400, 55.0, 7600.0), (512, 0.0, 8000.0)]:
        ref = librosa.filters.mel(sr=16000, n_fft=n_fft, n_mels=80, fmin=fmin, fmax=fmax)
        np.testing.assert_allclose(mel_filterbank(16000, n_fft, 80, fmin, fmax), ref, atol=1e-7)


def test_stft_equals_librosa_reflect(speech: np.ndarray) -> None:
    librosa = pytest.importorskip("librosa")
    ref = np.abs(librosa.stft(speech.astype(np.float64), n_fft=800, hop_length=200, win_length=800, pad_mode="reflect"))
    np.testing.assert_allclose(stft_magnitude(speech, 800, 200, 800), ref, atol=1e-8 * ref.max())


def test_wav2lip_mel_equals_official_formula(speech: np.ndarray) -> None:
    # Wav2Lip audio.melspectrogram: preemphasis, librosa.stft (0.7: reflect), slaney mel, dB, normalise.
    librosa = pytest.importorskip("librosa")
    x = lfilter([1, -0.97], [1], speech.astype(np.float64))
    d = librosa.stft(y=x, n_fft=800, hop_length=200, win_length=800, pad_mode="reflect")
    mel = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600) @ np.abs(d)
    s = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    ref = np.clip((2 * 4) * ((s + 100) / 100) - 4, -4, 4)
    ours = wav2lip_mel(speech)
    assert ours.shape == ref.shape == (80, 1 + len(speech) // 200)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_log_mel_equals_librosa_melspectrogram(speech: np.ndarray) -> None:
    librosa = pytest.importorskip("librosa")
    ref = librosa.feature.melspectrogram(
        y=speech.astype(np.float64), sr=16000, n_fft=400, hop_length=160, win_length=400,
        n_mels=80, fmin=55, fmax=7600, power=2.0, pad_mode="reflect",
    )
    np.testing.assert_allclose(log_mel(speech), np.log(np.maximum(ref, 1e-5)), atol=1e-3)


def test_audio_units_are_four_mel_frames_per_video_frame(speech: np.ndarray) -> None:
    units = audio_units(speech[:16000], 25)
    mel = log_mel(speech[:16000])
    assert units.shape == (25, 80, 4)
    np.testing.assert_array_equal(units[3], mel[:, 12:16])
    padded = audio_units(speech[:8000], 25)  # short audio is padded with silence
    assert padded.shape == (25, 80, 4) and np.allclose(padded[-1], np.log(1e-5))


def test_resample_and_stereo_to_mono(tmp_path: Path) -> None:
    sr = 44100
    t = np.arange(sr) / sr
    tone = 0.4 * np.sin(2 * np.pi * 1000 * t)
    y = resample(tone.astype(np.float32), sr, 16000)
    assert len(y) == 16000
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) - 1000) <= 1  # 1 Hz bins
    sf = pytest.importorskip("soundfile")
    stereo = np.stack([tone, -tone * 0 + tone], axis=1)
    sf.write(tmp_path / "st.wav", stereo, sr)
    mono = load_audio(tmp_path / "st.wav", 16000)
    assert len(mono) == 16000 and abs(np.abs(mono).max() - 0.4) < 0.02


def test_video_without_audio_raises(tmp_path: Path) -> None:
    write_video(tmp_path / "silent.mp4", np.zeros((5, 32, 32, 3), np.uint8))
    with pytest.raises(NoAudioError, match="silent.mp4"):
        load_audio(tmp_path / "silent.mp4")


def test_real_48k_stereo_speech(real_data: Path) -> None:
    librosa = pytest.importorskip("librosa")
    p = real_data / "speech" / "hallo_2.wav"
    ours = load_audio(p, 16000)
    ref, _ = librosa.load(p, sr=16000, mono=True)
    n = min(len(ours), len(ref))
    assert abs(len(ours) - len(ref)) <= 2
    assert np.corrcoef(ours[:n], ref[:n])[0, 1] > 0.99
