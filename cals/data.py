"""Training windows from any dataset the suite reads: cached protocol crops + audio, sampled as
fixed-length windows with augmented audio units."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from cals.audio import NoiseBank, add_noise, spec_augment, units_for
from cals.config import TrainConfig
from talkbench.errors import ConfigError
from talkbench.types import lower_half_masked

SAMPLES_PER_FRAME = 640


class ClipBank:
    """Decoded clips (frames at ``size``, 16 kHz audio) held in memory."""

    def __init__(self, clips: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
        if not clips:
            raise ConfigError("no usable training clips")
        self.clips = clips

    @classmethod
    def from_dataset(cls, cfg: TrainConfig, size: int, split: str | None = None, limit: int | None = None) -> ClipBank:
        from talkbench.datasets.clips import protocol_clips

        clips = []
        limit = limit if limit is not None else cfg.max_clips
        # Protocol crops (128, cached once for every trainer), resized to the model's size.
        for s, c in protocol_clips(cfg.dataset, cfg.root, split or cfg.split, limit, min_frames=cfg.window):
            frames = c.frames
            if size != 128:
                frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
            clips.append((s.sample_id, frames, c.audio))
        return cls(clips)


def sample_batch(bank: ClipBank, cfg: TrainConfig, rng: np.random.Generator, noise: NoiseBank | None,
                 augment: bool = True) -> dict[str, torch.Tensor]:
    """A batch of windows: units (B, T, 80, 4), frames / pose prior (B, T, 3, S, S) and reference
    (B, 3, S, S) in [0, 1]. The reference is a random frame of the same clip (paper 3.1.2)."""
    units, frames, poses, refs = [], [], [], []
    others = [a for _, _, a in bank.clips[:32]]
    for _ in range(cfg.batch_size):
        _, f, a = bank.clips[int(rng.integers(len(bank.clips)))]
        start = int(rng.integers(0, len(f) - cfg.window + 1))
        win = f[start : start + cfg.window]
        seg = a[start * SAMPLES_PER_FRAME : (start + cfg.window) * SAMPLES_PER_FRAME]
        if augment and noise is not None and rng.random() < cfg.noise_prob:
            seg = add_noise(seg, noise.sample(len(seg), rng, others), float(rng.uniform(*cfg.noise_snr)))
        u = units_for(seg, cfg.window)
        if augment:
            u = spec_augment(u, cfg.specaug_time, cfg.specaug_freq)
        units.append(u)
        frames.append(win)
        poses.append(lower_half_masked(win))
        refs.append(f[int(rng.integers(len(f)))])

    def img(x: list[np.ndarray]) -> torch.Tensor:
        t = torch.from_numpy(np.stack(x)).float() / 255.0
        return t.permute(0, 1, 4, 2, 3) if t.dim() == 5 else t.permute(0, 3, 1, 2)

    return {"units": torch.stack(units), "frames": img(frames), "pose": img(poses), "reference": img(refs)}
