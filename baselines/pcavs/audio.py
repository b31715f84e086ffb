"""PC-AVS's audio front-end (``config/AudioConfig.py`` + ``data/voxtest_dataset.py``), reimplemented
without lws or librosa at run time:

- waveform scaled to RMS 0.1 (RMS floored at 1e-4, so silence stays silence);
- STFT as ``lws.lws(1280, 160, mode="speech").stft`` computes it: analysis window
  sqrt(sqrt(hann_sym) * synthwin(sqrt(hann_sym))) (lws's perfect-reconstruction window), the signal
  padded with 1120 zeros in front and to a multiple of 160 at the end, one frame per 160 samples;
- 80 slaney mel bands 125-7600 Hz on the magnitude, 20 log10(max(1e-5, .)) - 20 dB, then
  clip((S + 100) / 100, 0, 1); rows = 100 per second, 4 per video frame at 25 fps;
- the window of video frame t is rows (t-2)*4 .. (t+3)*4 (20 rows, 5 frames centred on t).

Edge frames: the official loader generates frames 2 .. N/4-3 only (and reads zeros for a window
that starts before row 0). Here every frame gets a window: the mel is padded with zero rows (the
silence value, as the official loader's out-of-range fallback) - 8 before and as many as needed
after - so frame t always uses rows (t-2)*4 .. (t+3)*4 of the unpadded mel. Audio shorter than the
video is covered by the same padding.
"""

from __future__ import annotations

import numpy as np

from talkbench.io.audio import mel_filterbank

SAMPLE_RATE = 16000
FFT, HOP = 1280, 160
ROWS_PER_FRAME = 4
WINDOW_ROWS = 20
EDGE_POLICY = "mel padded with zero (silence) rows so every frame t has rows (t-2)*4..(t+3)*4"


def normalize_rms(wav: np.ndarray, rms: float = 0.1, eps: float = 1e-4) -> np.ndarray:
    return wav * (rms / max(eps, float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))))


def _hann_symmetric(n: int) -> np.ndarray:
    return 0.5 * (1 - np.cos(2 * np.pi * np.arange(1, 2 * n, 2) / (2 * n)))


def lws_window(fsize: int = FFT, fshift: int = HOP) -> np.ndarray:
    """lws's default analysis window for ``lws.lws(fsize, fshift)``."""
    a = np.sqrt(_hann_symmetric(fsize))
    q = -(-fsize // fshift)
    w = np.concatenate([a * a, np.zeros(q * fshift - fsize)]).reshape(q, fshift).sum(0)
    norm = np.tile(w, q)[:fsize]
    return np.sqrt(a * (a / norm))


def lws_stft_magnitude(x: np.ndarray, fsize: int = FFT, fshift: int = HOP) -> np.ndarray:
    """|STFT| ``(frames, fsize // 2 + 1)`` with lws's ``perfectrec`` framing."""
    x = np.asarray(x, np.float64)
    res = fsize % fshift
    pre = fsize - fshift if res == 0 else fsize - res
    post = 0 if len(x) % fshift == 0 else fshift - len(x) % fshift
    x = np.concatenate([np.zeros(pre), x, np.zeros(post)])
    m = len(x) // fshift
    x = np.concatenate([x, np.zeros((m - 1) * fshift + fsize - len(x))])
    frames = np.lib.stride_tricks.sliding_window_view(x, fsize)[::fshift][:m]
    return np.abs(np.fft.rfft(frames * lws_window(fsize, fshift), axis=1))


_MEL = None


def melspectrogram(wav: np.ndarray, normalize: bool = True) -> np.ndarray:
    """``(N, 80)`` float32 in [0, 1], the official ``audio_to_spectrogram(read_audio(.))``."""
    global _MEL
    if _MEL is None:
        _MEL = mel_filterbank(SAMPLE_RATE, FFT, 80, 125.0, 7600.0)
    if normalize:
        wav = normalize_rms(wav)
    mag = lws_stft_magnitude(wav)
    db = 20 * np.log10(np.maximum(1e-5, mag @ _MEL.T)) - 20
    return np.clip((db + 100) / 100, 0, 1).astype(np.float32)


def frame_windows(mel: np.ndarray, num_frames: int) -> np.ndarray:
    """``(num_frames, 1, 80, 20)`` windows, frame t = mel rows (t-2)*4 .. (t+3)*4 (zero rows past
    either end), transposed to (mel bins, time) as the loader does."""
    need = (num_frames + 3) * ROWS_PER_FRAME
    front = 2 * ROWS_PER_FRAME
    pad = np.zeros((front + max(need, len(mel)) - len(mel) + 0, mel.shape[1]), np.float32)
    padded = np.concatenate([pad[:front], mel, pad[front:]])
    starts = np.arange(num_frames) * ROWS_PER_FRAME
    out = np.stack([padded[s : s + WINDOW_ROWS] for s in starts])
    return np.ascontiguousarray(out.transpose(0, 2, 1)[:, None]).astype(np.float32)
