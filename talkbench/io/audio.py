"""Audio loading, resampling and the front-ends as pure functions on numpy arrays.

- :func:`log_mel` / :func:`audio_units`: the CALS paper front-end (16 kHz, window 400, hop 160,
  80 mels, so 4 mel frames per 25 fps video frame).
- :func:`wav2lip_mel`: Wav2Lip's ``audio.melspectrogram`` with its hparams (n_fft 800, hop 200,
  preemphasis 0.97, 80 slaney mels 55-7600 Hz, dB with ref 20 / min -100, symmetric [-4, 4]), with the
  reflect-padded STFT of the librosa 0.7 it was written against, reimplemented without librosa.
- :func:`mfcc`: ``python_speech_features.mfcc`` with its defaults, as syncnet_python feeds it.

librosa is not used at run time (its numba JIT costs seconds per process); tests compare the mel
filterbank and STFT with librosa and the MFCC with python_speech_features.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd
from pathlib import Path

import av
import numpy as np
from scipy.fft import dct
from scipy.signal import get_window, lfilter, resample_poly

from talkbench.errors import MediaError, NoAudioError

# ----------------------------------------------------------------------------- loading


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 audio in [-1, 1] at ``sample_rate`` from a wav or any container's first audio
    stream (channels averaged)."""
    from talkbench.io.video import check_media_file

    p = check_media_file(path)
    try:
        container = av.open(str(p))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot open as media ({exc})", p) from exc
    with container as c:
        if not c.streams.audio:
            raise NoAudioError("no audio stream", p)
        stream = c.streams.audio[0]
        rate = stream.rate
        chunks: list[np.ndarray] = []
        try:
            for frame in c.decode(stream):
                x = frame.to_ndarray()
                fmt = frame.format.name
                if x.dtype == np.int16:
                    x = x.astype(np.float32) / 32768.0
                elif x.dtype == np.int32:
                    x = x.astype(np.float32) / 2147483648.0
                elif x.dtype == np.uint8:
                    x = (x.astype(np.float32) - 128.0) / 128.0
                else:
                    x = x.astype(np.float32)
                nch = len(frame.layout.channels)
                if fmt.endswith("p"):  # planar: (channels, samples)
                    x = x.reshape(nch, -1)
                else:  # packed: (1, samples*channels) interleaved
                    x = x.reshape(-1, nch).T
                chunks.append(x.mean(axis=0))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise MediaError(f"cannot decode audio ({exc})", p) from exc
    if not chunks:
        raise MediaError("audio stream has no samples", p)
    audio = np.concatenate(chunks).astype(np.float32)
    return resample(audio, rate, sample_rate)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``, Kaiser window) to ``sr_out``."""
    audio = np.asarray(audio, dtype=np.float32)
    if sr_in == sr_out:
        return audio
    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(audio, sr_out // g, sr_in // g).astype(np.float32)


# ----------------------------------------------------------------------------- spectral helpers


def _hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-style, slaney-normalised triangular filters ``(n_mels, 1 + n_fft // 2)`` (the
    definition of ``librosa.filters.mel`` with its defaults)."""
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(fmin), _hz_to_mel_slaney(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    weights.setflags(write=False)
    return weights


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int, win: int, pad_mode: str = "reflect") -> np.ndarray:
    """|STFT| ``(1 + n_fft // 2, frames)``, centred frames, periodic Hann window (librosa's
    ``stft(center=True)`` convention)."""
    x = np.asarray(x, dtype=np.float64)
    pad = n_fft // 2
    if len(x) <= pad and pad_mode == "reflect":
        pad_mode = "constant"  # reflect padding needs more samples than the pad
    xp = np.pad(x, pad, mode=pad_mode)
    window = get_window("hann", win, fftbins=True)
    if win < n_fft:
        lpad = (n_fft - win) // 2
        window = np.pad(window, (lpad, n_fft - win - lpad))
    n_frames = 1 + (len(xp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = xp[idx] * window[None, :]
    return np.abs(np.fft.rfft(frames, n=n_fft, axis=1)).T


# ----------------------------------------------------------------------------- CALS front-end

CALS_MEL = {"sample_rate": 16000, "n_fft": 400, "hop": 160, "win": 400, "n_mels": 80, "fmin": 55.0, "fmax": 7600.0}


def log_mel(audio: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """The CALS log-mel ``(80, N)``, N = 1 + len // 160: natural log of the slaney mel power
    spectrum (clamped at 1e-5) of a 400-sample Hann window every 160 samples."""
    if sample_rate != CALS_MEL["sample_rate"]:
        audio = resample(audio, sample_rate, CALS_MEL["sample_rate"])
    spec = stft_magnitude(audio, CALS_MEL["n_fft"], CALS_MEL["hop"], CALS_MEL["win"]) ** 2
    fb = mel_filterbank(16000, CALS_MEL["n_fft"], CALS_MEL["n_mels"], CALS_MEL["fmin"], CALS_MEL["fmax"])
    return np.log(np.maximum(fb @ spec, 1e-5)).astype(np.float32)


def audio_units(audio: np.ndarray, num_frames: int, fps: float = 25.0, sample_rate: int = 16000) -> np.ndarray:
    """Frame-level audio units ``(num_frames, 80, 4)``: mel frames ``4t .. 4t+3`` for video frame t
    (16 kHz / hop 160 = 100 mel frames/s = 4 per frame at 25 fps). Short audio is padded with the
    log floor (silence); long audio is trimmed."""
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    mel = log_mel(audio, sample_rate)
    per = 100.0 / fps
    if abs(per - round(per)) > 1e-6:
        raise ValueError(f"audio units need 100/fps to be an integer, got fps={fps}")
    per_i = round(per)
    need = num_frames * per_i
    if mel.shape[1] < need:
        mel = np.pad(mel, ((0, 0), (0, need - mel.shape[1])), constant_values=np.log(1e-5))
    mel = mel[:, :need]
    return np.ascontiguousarray(mel.reshape(80, num_frames, per_i).transpose(1, 0, 2))


# ----------------------------------------------------------------------------- Wav2Lip front-end

WAV2LIP_HPARAMS = {
    "sample_rate": 16000, "n_fft": 800, "hop_size": 200, "win_size": 800, "num_mels": 80,
    "fmin": 55.0, "fmax": 7600.0, "preemphasis": 0.97, "ref_level_db": 20.0, "min_level_db": -100.0,
    "max_abs_value": 4.0,
}


def wav2lip_mel(audio: np.ndarray) -> np.ndarray:
    """Wav2Lip's ``audio.melspectrogram(wav)`` for 16 kHz float audio: ``(80, 1 + len // 200)``,
    80 mel frames per second, values in [-4, 4]."""
    hp = WAV2LIP_HPARAMS
    x = lfilter([1.0, -hp["preemphasis"]], [1.0], np.asarray(audio, dtype=np.float64))
    mag = stft_magnitude(x, hp["n_fft"], hp["hop_size"], hp["win_size"], pad_mode="reflect")
    fb = mel_filterbank(hp["sample_rate"], hp["n_fft"], hp["num_mels"], hp["fmin"], hp["fmax"])
    db = 20.0 * np.log10(np.maximum(1e-5, fb @ mag)) - hp["ref_level_db"]
    m = hp["max_abs_value"]
    return np.clip(2 * m * ((db - hp["min_level_db"]) / -hp["min_level_db"]) - m, -m, m).astype(np.float32)


# ----------------------------------------------------------------------------- MFCC (python_speech_features)


def _psf_filterbank(nfilt: int, nfft: int, sample_rate: int, lowfreq: float, highfreq: float) -> np.ndarray:
    # HTK mel scale and floor-rounded FFT bins, as python_speech_features.get_filterbanks.
    lowmel = 2595 * np.log10(1 + lowfreq / 700.0)
    highmel = 2595 * np.log10(1 + highfreq / 700.0)
    melpoints = np.linspace(lowmel, highmel, nfilt + 2)
    hz = 700 * (10 ** (melpoints / 2595.0) - 1)
    bins = np.floor((nfft + 1) * hz / sample_rate)
    fbank = np.zeros((nfilt, nfft // 2 + 1))
    for j in range(nfilt):
        a, b, c = int(bins[j]), int(bins[j + 1]), int(bins[j + 2])
        for i in range(a, b):
            fbank[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(b, c):
            fbank[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    return fbank


def mfcc(
    signal: np.ndarray,
    sample_rate: int = 16000,
    winlen: float = 0.025,
    winstep: float = 0.01,
    numcep: int = 13,
    nfilt: int = 26,
    nfft: int = 512,
    preemph: float = 0.97,
    ceplifter: int = 22,
) -> np.ndarray:
    """MFCC ``(frames, numcep)`` equal to ``python_speech_features.mfcc`` with the same arguments
    (rectangular window, appendEnergy=True). syncnet_python passes int16-scale samples."""
    sig = np.asarray(signal, dtype=np.float64).reshape(-1)
    sig = np.append(sig[:1], sig[1:] - preemph * sig[:-1])
    # round-half-up as python_speech_features' round_half_up
    flen = int(np.floor(winlen * sample_rate + 0.5))
    fstep = int(np.floor(winstep * sample_rate + 0.5))
    n = len(sig)
    nframes = 1 if n <= flen else 1 + int(np.ceil((n - flen) / fstep))
    padded = np.concatenate([sig, np.zeros((nframes - 1) * fstep + flen - n)])
    idx = np.arange(flen)[None, :] + fstep * np.arange(nframes)[:, None]
    frames = padded[idx]
    pspec = (1.0 / nfft) * np.abs(np.fft.rfft(frames, nfft)) ** 2
    eps = np.finfo(float).eps
    energy = pspec.sum(axis=1)
    energy = np.where(energy == 0, eps, energy)
    fb = _psf_filterbank(nfilt, nfft, sample_rate, 0.0, sample_rate / 2)
    feat = pspec @ fb.T
    feat = np.where(feat == 0, eps, feat)
    feat = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :numcep]
    lift = 1 + (ceplifter / 2.0) * np.sin(np.pi * np.arange(numcep) / ceplifter)
    feat = feat * lift
    feat[:, 0] = np.log(energy)
    return feat
