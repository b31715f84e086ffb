"""Audio units and their augmentation.

Units: the 80x4 log-mel of each video frame (``talkbench.io.audio.audio_units``: 16 kHz, window
400, hop 160). Augmentation (training only): additive noise at a random SNR - coloured noise (white,
pink, brown) and babble made from other utterances in the batch, or files from a DEMAND folder when
the user has one (the paper used DEMAND, which cannot be downloaded here) - then SpecAugment with up
to 10 time steps and 20 mel bins masked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talkbench.io.audio import audio_units, load_audio


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """White (flat), pink (1/f) or brown (1/f^2) noise of unit RMS."""
    white = rng.standard_normal(n)
    if colour == "white":
        x = white
    else:
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= np.sqrt(f) if colour == "pink" else f
        x = np.fft.irfft(spec, n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def add_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix ``noise`` into ``audio`` at ``snr_db`` (silent audio stays silent + noise at unit scale)."""
    noise = np.resize(noise, len(audio)).astype(np.float32)
    p_sig = float(np.mean(audio**2)) or 1e-8
    p_noise = float(np.mean(noise**2)) or 1e-8
    scale = np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10)))
    return (audio + scale * noise).astype(np.float32)


class NoiseBank:
    """Noise sources: coloured noise, babble (other utterances) and an optional DEMAND folder."""

    def __init__(self, demand_dir: str | Path | None = None, sample_rate: int = 16000) -> None:
        self.demand: list[np.ndarray] = []
        if demand_dir:
            for p in sorted(Path(demand_dir).rglob("*.wav"))[:64]:
                self.demand.append(load_audio(p, sample_rate))

    def sample(self, n: int, rng: np.random.Generator, others: list[np.ndarray]) -> np.ndarray:
        kinds = ["white", "pink", "brown"] + (["babble"] if len(others) >= 2 else []) + (["demand"] if self.demand else [])
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "babble":
            picks = rng.choice(len(others), size=min(3, len(others)), replace=False)
            mix = sum(np.resize(others[i], n) for i in picks)
            return mix.astype(np.float32)
        if kind == "demand":
            src = self.demand[int(rng.integers(len(self.demand)))]
            start = int(rng.integers(max(1, len(src) - n)))
            return np.resize(src[start : start + n], n)
        return coloured_noise(n, kind, rng)


def spec_augment(units: torch.Tensor, max_time: int = 10, max_freq: int = 20,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one random span of up to ``max_time`` mel steps and one of up to ``max_freq`` mel bins.
    ``units``: (T, 80, 4) -> same shape (mel steps are T*4)."""
    t, f, k = units.shape
    mel = units.permute(1, 0, 2).reshape(f, t * k).clone()
    w = int(torch.randint(0, max_time + 1, (1,), generator=generator))
    if w:
        s = int(torch.randint(0, max(1, t * k - w), (1,), generator=generator))
        mel[:, s : s + w] = mel.min()
    h = int(torch.randint(0, max_freq + 1, (1,), generator=generator))
    if h:
        s = int(torch.randint(0, max(1, f - h), (1,), generator=generator))
        mel[s : s + h] = mel.min()
    return mel.reshape(f, t, k).permute(1, 0, 2)


def units_for(audio: np.ndarray, num_frames: int) -> torch.Tensor:
    return torch.from_numpy(audio_units(audio, num_frames))
