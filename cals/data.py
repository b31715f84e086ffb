"""Training sequences from any dataset the suite reads: cached protocol crops + audio.

The paper's Audio-to-Lip module uses "the entire audio stream". A training sequence is the whole
utterance when it has at most ``window`` frames, otherwise a ``window``-frame cut at a random start
whose absolute frame index is the sequence's position offset (as at inference, where positions count
from the start of the clip); a batch pads its sequences to the longest and carries a padding mask.

The generator's loss-carrying (rendered) frames are chosen here too, so that the reference frame is
never among them (Wav2Lip draws its reference window away from the target window): with
``render_segments``, whole ``t_s``-frame segments are rendered and the reference comes from the clip's
frames more than ``t_s // 2`` away from every one of them; with every frame rendered (0), the
reference is taken outside the sequence when the clip is longer, else the reference frame and its
``t_s // 2`` neighbours carry no loss.
"""

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
        for s, c in protocol_clips(cfg.dataset, cfg.root, split or cfg.split, limit, min_frames=cfg.min_frames):
            frames = c.frames
            if size != 128:
                frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
            clips.append((s.sample_id, frames, c.audio))
        return cls(clips)


def segment_centres(allowed: np.ndarray, n: int, t_s: int, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` sorted centres of ``t_s``-frame segments at least ``t_s`` apart (a grid of step
    ``t_s``: distinct lip motions of one context) whose frames are all ``allowed``."""
    h = t_s // 2
    cands = [c for c in range(h, len(allowed) - h, t_s) if allowed[c - h : c + h + 1].all()]
    if not cands:
        return np.zeros(0, dtype=np.int64)
    return np.sort(rng.choice(cands, min(n, len(cands)), replace=False)).astype(np.int64)


def reference_frame(num_frames: int, targets: np.ndarray, t_s: int, rng: np.random.Generator) -> int:
    """A random clip frame more than ``t_s // 2`` frames from every target frame (absolute indices);
    the farthest frame when there is none."""
    dist = np.abs(np.arange(num_frames)[:, None] - targets[None, :]).min(axis=1)
    ok = np.flatnonzero(dist > t_s // 2)
    return int(rng.choice(ok)) if len(ok) else int(dist.argmax())


def sample_batch(bank: ClipBank, cfg: TrainConfig, rng: np.random.Generator, noise: NoiseBank | None,
                 augment: bool = True, t_s: int = 5, render_segments: int = 0, segments: int = 4) -> dict[str, torch.Tensor]:
    """A padded batch of sequences (see the module docstring). Keys: ``units`` (B, T, 80, 4),
    ``frames`` / ``pose`` (B, T, 3, S, S) and ``reference`` (B, 3, S, S) in [0, 1]; ``valid`` (B, T)
    (False on padding); ``offset`` (B,) absolute frame index of each sequence's first frame; ``render``
    (B, F) the frames the generator renders and ``render_valid`` (B, F) those that carry its losses;
    ``seg`` (B, N) centres of the d_av / d_vv segments as indices into ``render``, ``seg_abs`` the same
    centres as indices into the sequence; ``ref_index`` (B,) the reference's frame index in its clip."""
    seqs = []
    others = [a for _, _, a in bank.clips[:32]]
    h = t_s // 2
    for _ in range(cfg.batch_size):
        _, f, a = bank.clips[int(rng.integers(len(bank.clips)))]
        n = min(len(f), cfg.window)
        start = int(rng.integers(0, len(f) - n + 1))
        win = f[start : start + n]
        audio = a[start * SAMPLES_PER_FRAME : (start + n) * SAMPLES_PER_FRAME]
        if augment and noise is not None and rng.random() < cfg.noise_prob:
            audio = add_noise(audio, noise.sample(len(audio), rng, others), float(rng.uniform(*cfg.noise_snr)))
        u = units_for(audio, n)
        if augment:
            u = spec_augment(u, cfg.specaug_time, cfg.specaug_freq)
        loss_ok = np.ones(n, bool)
        if render_segments:
            centres = segment_centres(loss_ok, render_segments, t_s, rng)
            render = (centres[:, None] + np.arange(-h, h + 1)[None]).ravel()
            ref = reference_frame(len(f), start + render, t_s, rng)
            local = np.arange(len(centres)) * t_s + h
        else:
            outside = np.r_[0:start, start + n : len(f)]
            if len(outside):
                ref = int(rng.choice(outside))
            else:  # the whole utterance is the target: the reference's neighbourhood carries no loss
                ref = int(rng.integers(len(f)))
                loss_ok[max(0, ref - h) : ref + h + 1] = False
            render = np.arange(n)
            centres = segment_centres(loss_ok, segments, t_s, rng)
            local = centres
        seqs.append((u.numpy(), win, f[ref], start, render, loss_ok[render], centres, local, ref))

    tmax = max(len(q[1]) for q in seqs)
    fmax = max(len(q[4]) for q in seqs)
    nseg = min(len(q[6]) for q in seqs)

    def pad(x: np.ndarray, size: int) -> np.ndarray:
        return np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), x.dtype)]) if len(x) < size else x

    def img(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x).float() / 255.0
        return t.permute(0, 1, 4, 2, 3) if t.dim() == 5 else t.permute(0, 3, 1, 2)

    return {
        "units": torch.from_numpy(np.stack([pad(q[0], tmax) for q in seqs])),
        "frames": img(np.stack([pad(q[1], tmax) for q in seqs])),
        "pose": img(np.stack([pad(lower_half_masked(q[1]), tmax) for q in seqs])),
        "reference": img(np.stack([q[2] for q in seqs])),
        "valid": torch.from_numpy(np.stack([np.arange(tmax) < len(q[1]) for q in seqs])),
        "offset": torch.tensor([q[3] for q in seqs], dtype=torch.long),
        "render": torch.from_numpy(np.stack([pad(q[4], fmax) for q in seqs])),
        "render_valid": torch.from_numpy(np.stack([pad(q[5], fmax) for q in seqs])),
        "seg": torch.from_numpy(np.stack([q[7][:nseg] for q in seqs])),
        "seg_abs": torch.from_numpy(np.stack([q[6][:nseg] for q in seqs])),
        "ref_index": torch.tensor([q[8] for q in seqs], dtype=torch.long),  # in the clip
    }
