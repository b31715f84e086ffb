"""CALS inference: whole-sequence generation (long audio in overlapping windows that keep full
context), generation with chosen audio steps masked (paper Fig. 5), and generation with the audio
context limited to +-k frames around each frame (paper Fig. 6)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from cals.audio import units_for
from cals.model import CALS
from talkbench.errors import MetricError


@torch.no_grad()
def lip_units_long(model: CALS, units: torch.Tensor, max_len: int = 750, overlap: int = 125,
                   unit_mask: torch.Tensor | None = None, context_k: int | None = None) -> torch.Tensor:
    """(T, 80, 4) -> (T, D). Streams longer than ``max_len`` frames (30 s) are processed in windows
    overlapping by ``overlap`` frames on each side; every frame takes its output from the window
    where it is farthest from an edge, so it always sees at least ``overlap`` frames of context.
    With ``context_k`` the zeroed stream of each target frame is that window (``CALS.lip_units``): for
    ``k <= overlap`` its +-k frames of audio are always inside it."""
    t = units.shape[0]
    mask = unit_mask[None] if unit_mask is not None else None
    if t <= max_len:
        return model.lip_units(units[None], mask, context_k)[0]
    step = max_len - 2 * overlap
    out = torch.empty(t, model.cfg.unit_dim, device=units.device)
    start = 0
    while True:
        lo = max(0, start - overlap)
        hi = min(t, lo + max_len)
        lo = max(0, hi - max_len)
        m = mask[:, lo:hi] if mask is not None else None
        y = model.lip_units(units[None, lo:hi], m, context_k, offset=lo)[0]
        keep_lo, keep_hi = start, min(t, start + step)
        out[keep_lo:keep_hi] = y[keep_lo - lo : keep_hi - lo]
        if keep_hi >= t:
            return out
        start = keep_hi


@torch.no_grad()
def generate(model: CALS, audio: np.ndarray, reference: np.ndarray, pose_prior: np.ndarray,
             mask_frames: Sequence[int] = (), context_k: int | None = None, device: str = "cpu",
             batch_frames: int = 64) -> np.ndarray:
    """Frames (T, S, S, 3) uint8 RGB for ``audio`` (16 kHz) given a reference frame and the pose prior
    (T, S, S, 3), both at any size S (resized to the model's and back)."""
    t, size = len(pose_prior), pose_prior.shape[1]
    if len(audio) < 640 * 5:
        raise MetricError(f"audio of {len(audio) / 16000:.2f} s is shorter than one 5-frame window")
    if not np.any(audio):
        raise MetricError("silent audio: no lip motion to generate")
    # channels_last: oneDNN's convolutions run the U-Net about 1.5x faster on x86 CPUs (paper 128-px
    # config, 9.5 -> 14.9 frames/s in benchmarks/bench_cals.py); outputs differ from the default layout by at most 1 grey level.
    model = model.to(device, memory_format=torch.channels_last).eval()
    s = model.cfg.img_size

    def prep(x: np.ndarray) -> torch.Tensor:
        if x.shape[-2] != s:
            x = np.stack([cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA) for f in x.reshape(-1, *x.shape[-3:])])
        return torch.from_numpy(np.ascontiguousarray(x)).float().div(255).permute(0, 3, 1, 2).to(device)

    units = units_for(audio, t).to(device)
    mask = None
    if mask_frames:
        mask = torch.zeros(t, dtype=torch.bool, device=device)
        mask[list(mask_frames)] = True
    lips = lip_units_long(model, units, unit_mask=mask, context_k=context_k)
    ref = prep(reference[None])
    pose = prep(pose_prior)
    out = []
    for i in range(0, t, batch_frames):
        sl = slice(i, i + batch_frames)
        y = model.render(lips[None, sl], ref, pose[None, sl])[0]
        out.append((y.permute(0, 2, 3, 1).clamp(0, 1) * 255).round().byte().cpu().numpy())
    frames = np.concatenate(out)
    if s != size:
        frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR) for f in frames])
    return frames
