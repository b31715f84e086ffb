"""A SyncNet critic's own evaluation procedure: its input formats (224x224 BGR frames of a view of the
crop, 13x20 MFCC windows) and LSE-D / LSE-C / AV offset exactly as syncnet_python's
``SyncNetInstance.evaluate`` computes them, batched: all window embeddings in one pass and all
2*vshift+1 offsets as one tensor operation. The ``lse`` metric and the critic trainer both use it.

Reproduced quirks (default, metric names ``lse_d``/``lse_c``/``av_offset``):
- ``min_len - 5`` windows: the last possible 5-frame window is dropped;
- audio embeddings are zero-padded by ``vshift`` rows, so edge windows are compared against the zero
  vector and those distances enter the mean;
- distances are ``||v - a + 1e-6||`` (``F.pairwise_distance``'s eps);
- LSE-C uses ``torch.median`` (the lower middle value; 31 offsets make it the exact median).
The ``valid`` variant (``lse_d_valid``/``lse_c_valid``) keeps every window and averages each offset
only over windows whose shifted audio exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from talkbench.errors import MetricError
from talkbench.io.audio import mfcc
from talkbench.types import PROTOCOL_SAMPLES_PER_FRAME, PROTOCOL_SR

FULL_VIEW = (0.0, 0.0, 1.0, 1.0)


def to_syncnet_frames(frames_rgb: np.ndarray, view: tuple[float, float, float, float] = FULL_VIEW) -> np.ndarray:
    """(T, S, S, 3) RGB crops -> (T, 224, 224, 3) BGR of the ``view`` box (x0, y0, x1, y1 in fractions)."""
    if tuple(view) != FULL_VIEW:
        h, w = frames_rgb.shape[1:3]
        x0, y0, x1, y1 = view
        frames_rgb = frames_rgb[:, round(y0 * h) : round(y1 * h), round(x0 * w) : round(x1 * w)]
    if frames_rgb.shape[1:3] == (224, 224):
        return np.ascontiguousarray(frames_rgb[..., ::-1])
    return np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_LINEAR)[..., ::-1] for f in frames_rgb])


@dataclass(frozen=True)
class LSEResult:
    lse_d: float
    lse_c: float
    av_offset: int
    windows: int
    mean_dists: np.ndarray  # (2*vshift+1,), offsets -vshift..vshift in index order as syncnet_python


def num_frames_scored(num_frames: int, audio_samples: int, quirks: bool = True) -> int:
    min_len = min(num_frames, audio_samples // PROTOCOL_SAMPLES_PER_FRAME)
    return max(0, min_len - (5 if quirks else 4))


def mfcc_windows(audio_16k: np.ndarray, windows: int) -> torch.Tensor:
    """(windows, 1, 13, 20) MFCC windows: columns [4i, 4i+20) of the int16-scale MFCC."""
    x = np.asarray(audio_16k, np.float64)
    if np.abs(x).max(initial=0) <= 1.0:
        x = x * 32768.0  # float audio in [-1, 1] -> the int16 scale syncnet_python feeds
    cc = torch.from_numpy(mfcc(x, PROTOCOL_SR).T.astype(np.float32))  # (13, M)
    need = 4 * (windows - 1) + 20
    if cc.shape[1] < need:
        cc = torch.nn.functional.pad(cc, (0, need - cc.shape[1]))
    idx = 4 * torch.arange(windows)[:, None] + torch.arange(20)[None, :]
    return cc[:, idx].permute(1, 0, 2)[:, None]


def offset_distances(vid: torch.Tensor, aud: torch.Tensor, vshift: int = 15) -> torch.Tensor:
    """(N, 2*vshift+1) distances; entry j pairs video window i with audio window i + j - vshift
    (a zero vector outside the clip), as ``calc_pdist``."""
    n = vid.shape[0]
    padded = torch.nn.functional.pad(aud, (0, 0, vshift, vshift))
    idx = torch.arange(n)[:, None] + torch.arange(2 * vshift + 1)[None, :]
    return torch.linalg.vector_norm(vid[:, None, :] - padded[idx] + 1e-6, dim=-1)


def lse_from_embeddings(vid: torch.Tensor, aud: torch.Tensor, vshift: int = 15, quirks: bool = True) -> LSEResult:
    dists = offset_distances(vid.float(), aud.float(), vshift)
    if quirks:
        mdist = dists.mean(dim=0)
    else:
        n = vid.shape[0]
        j = torch.arange(n)[:, None] + torch.arange(2 * vshift + 1)[None, :] - vshift
        valid = (j >= 0) & (j < n)
        mdist = (dists * valid).sum(0) / valid.sum(0).clamp(min=1)
    minval, minidx = torch.min(mdist, 0)
    conf = torch.median(mdist) - minval
    return LSEResult(float(minval), float(conf), int(vshift - minidx), int(vid.shape[0]), mdist.numpy())


@torch.no_grad()
def lse(model, frames_bgr224: np.ndarray, audio_16k: np.ndarray, vshift: int = 15, quirks: bool = True,
        device: str = "cpu") -> LSEResult:
    """LSE of (T, 224, 224, 3) BGR uint8/float frames and 16 kHz audio with a SyncNet ``model``."""
    if frames_bgr224.shape[1:3] != (224, 224):
        raise MetricError(f"SyncNet needs 224x224 frames, got {frames_bgr224.shape[1:3]}")
    n = num_frames_scored(len(frames_bgr224), len(audio_16k), quirks)
    if n < 1:
        raise MetricError(f"clip too short for one 5-frame SyncNet window ({len(frames_bgr224)} frames, "
                          f"{len(audio_16k) / PROTOCOL_SR:.2f} s audio)")
    if np.abs(audio_16k).max(initial=0) == 0:
        raise MetricError("silent audio: LSE is undefined")
    model = model.to(device).eval()
    clip = torch.from_numpy(np.ascontiguousarray(frames_bgr224[: n + 4])).to(device=device, dtype=torch.float32)
    clip = clip.permute(3, 0, 1, 2)  # (3, T, H, W)
    vid = model.lip_embeddings(clip).cpu()[:n]
    aud = model.forward_aud(mfcc_windows(audio_16k, n).to(device)).cpu()
    return lse_from_embeddings(vid, aud, vshift, quirks)
