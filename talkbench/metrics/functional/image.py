"""Batched PSNR and SSIM in torch, defined to equal scikit-image's per-frame results.

SSIM follows ``skimage.metrics.structural_similarity(..., channel_axis=-1, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``: a Gaussian window truncated at 3.5 sigma
(11 taps), local statistics filtered with scipy's ``mode="reflect"`` (half-sample symmetric) padding,
C1 = (0.01 L)^2, C2 = (0.03 L)^2, the SSIM map cropped by 5 pixels on every side before the mean, and
the mean over channels. Everything is computed as two dense
matrix products per map (filter + crop), in float32 by default (values agree with skimage to ~1e-6).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from talkbench.errors import MetricError


def _to_tensor(x: np.ndarray | torch.Tensor, device: str | torch.device | None) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
    return t.to(device=device, dtype=torch.float64)


def _check_pair(preds: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> None:
    if tuple(preds.shape) != tuple(target.shape):
        raise MetricError(f"preds and target must have the same shape, got {tuple(preds.shape)} and {tuple(target.shape)}")
    if preds.ndim != 4 or preds.shape[-1] not in (1, 3):
        raise MetricError(f"expected (T, H, W, C) frames with C in (1, 3), got {tuple(preds.shape)}")
    if preds.shape[0] == 0:
        raise MetricError("empty clip: no frames to compare")


def peak_signal_noise_ratio(
    preds: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    data_range: float = 255.0,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Per-frame PSNR ``(T,)`` in dB of (T, H, W, C) frames; ``inf`` where a frame is identical."""
    _check_pair(preds, target)
    p, t = _to_tensor(preds, device), _to_tensor(target, device)
    mse = ((p - t) ** 2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def _reflect_index(i: int, n: int) -> int:
    """scipy.ndimage ``mode='reflect'`` index (edge sample repeated: d c b a | a b c d | d c b a)."""
    period = 2 * n
    i %= period
    return i if i < n else period - 1 - i


@lru_cache(maxsize=32)
def _filter_matrix(n: int, sigma: float, truncate: float) -> np.ndarray:
    """Gaussian filtering of a length-``n`` signal with reflect boundaries, as an ``(n - 2r, n)``
    matrix already cropped to the rows skimage keeps: filtering becomes two BLAS matmuls."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    m = np.zeros((n, n))
    for i in range(n):
        for k, w in enumerate(g):
            m[i, _reflect_index(i + k - radius, n)] += w
    out = m[radius : n - radius]
    out.setflags(write=False)
    return out


def structural_similarity(
    preds: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    data_range: float = 255.0,
    sigma: float = 1.5,
    truncate: float = 3.5,
    device: str | torch.device | None = None,
    batch_size: int = 32,
    precision: str = "float32",
) -> torch.Tensor:
    """Per-frame SSIM ``(T,)`` of (T, H, W, C) frames, equal to skimage's (see module doc) to ~1e-6
    in the default float32 arithmetic (``precision="float64"``: ~1e-15, about 3x slower on CPU)."""
    _check_pair(preds, target)
    n, h, w, c = preds.shape
    win = 2 * int(truncate * sigma + 0.5) + 1
    if h < win or w < win:
        raise MetricError(f"frames of {h}x{w} are smaller than the {win}-tap SSIM window")
    dev = torch.device(device or "cpu")
    dt = torch.float64 if precision == "float64" else torch.float32
    mh = torch.tensor(_filter_matrix(h, sigma, truncate), device=dev, dtype=dt)
    mw = torch.tensor(_filter_matrix(w, sigma, truncate), device=dev, dtype=dt).T.contiguous()
    # Work in units of the data range, centred on 0.5: float32 then keeps E[x^2] - E[x]^2 accurate
    # to ~1e-7, far below C2 = 9e-4; the means are shifted back for the luminance term.
    c1, c2 = 0.01**2, 0.03**2
    out = []
    for i in range(0, n, batch_size):
        x = (_to_tensor(preds[i : i + batch_size], dev) / data_range - 0.5).to(dt).permute(0, 3, 1, 2)
        y = (_to_tensor(target[i : i + batch_size], dev) / data_range - 0.5).to(dt).permute(0, 3, 1, 2)
        b = x.shape[0]
        stack = torch.stack([x, y, x * x, y * y, x * y])  # (5, B, C, H, W)
        f = mh @ stack @ mw  # separable Gaussian filter + border crop, as matmuls
        ux, uy, uxx, uyy, uxy = f
        vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy  # shift-invariant
        mx, my = ux + 0.5, uy + 0.5  # the luminance term needs the uncentred means
        s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out.append(s.reshape(b, c, -1).to(torch.float64).mean(dim=2).mean(dim=1))
    return torch.cat(out)
