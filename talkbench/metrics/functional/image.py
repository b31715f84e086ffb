"""Batched PSNR and SSIM in torch, defined to equal scikit-image's per-frame results.

SSIM follows ``skimage.metrics.structural_similarity(..., channel_axis=-1, gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=255)``: a Gaussian window truncated at 3.5 sigma
(11 taps), local statistics filtered with scipy's ``mode="reflect"`` (half-sample symmetric) padding,
C1 = (0.01 L)^2, C2 = (0.03 L)^2, the SSIM map cropped by 5 pixels on every side before the mean, and
the mean over channels. Filtering plus cropping is computed as a 'valid' separable filter (see
``_valid_filter``), in float32 by default (values agree with skimage to ~1e-8).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from talkbench.errors import MetricError


@contextmanager
def _intra_op_threads(n: int | None, device: torch.device) -> Iterator[None]:
    """Temporarily run torch CPU ops on ``n`` threads (None: leave torch's setting)."""
    if n is None or device.type != "cpu" or n == torch.get_num_threads():
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


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
    threads: int | None = 1,
) -> torch.Tensor:
    """Per-frame PSNR ``(T,)`` in dB of (T, H, W, C) frames; ``inf`` where a frame is identical.

    Computed in float64 as ``10 log10(L^2 / MSE)`` (skimage's formula); ``threads`` as in
    :func:`structural_similarity`.
    """
    _check_pair(preds, target)
    with _intra_op_threads(threads, torch.device(device or "cpu")):
        p, t = _to_tensor(preds, device), _to_tensor(target, device)
        mse = ((p - t) ** 2).flatten(1).mean(dim=1)
        return 10.0 * torch.log10(data_range**2 / mse)


def gaussian_taps(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    """scipy.ndimage's normalised 1-D Gaussian: radius ``int(truncate * sigma + 0.5)`` (11 taps at
    sigma 1.5), the window skimage's ``gaussian_weights=True`` uses."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _valid_filter(maps: torch.Tensor, taps: np.ndarray) -> torch.Tensor:
    """Separable 'valid' filtering of (..., H, W) as weighted sums of shifted views.

    skimage filters with scipy's ``mode="reflect"`` and then drops ``radius`` pixels on every side
    before the mean; every kept output reads only in-image samples, so padding never matters and
    the valid part of the convolution is exactly what survives the crop. Shifted-view
    multiply-adds touch 11x fewer numbers than a dense matrix and beat single-channel conv2d on CPU.
    """
    k = len(taps)
    h, w = maps.shape[-2] - k + 1, maps.shape[-1] - k + 1
    rows = maps[..., 0:h, :] * float(taps[0])
    for j in range(1, k):
        rows.add_(maps[..., j : j + h, :], alpha=float(taps[j]))
    out = rows[..., 0:w] * float(taps[0])
    for j in range(1, k):
        out.add_(rows[..., j : j + w], alpha=float(taps[j]))
    return out


def structural_similarity(
    preds: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    data_range: float = 255.0,
    sigma: float = 1.5,
    truncate: float = 3.5,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    precision: str = "float32",
    threads: int | None = 1,
) -> torch.Tensor:
    """Per-frame SSIM ``(T,)`` of (T, H, W, C) frames, equal to skimage's (see module doc).

    Args:
        preds: generated frames (T, H, W, C), uint8 or float in ``[0, data_range]``.
        target: ground-truth frames of the same shape.
        data_range: L in C1 = (0.01 L)^2, C2 = (0.03 L)^2.
        sigma: Gaussian window sigma.
        truncate: window radius in sigmas (skimage/scipy default 3.5 -> 11 taps).
        device: torch device to compute on.
        batch_size: frames per step; default 2 on CPU (the maps then stay in cache) and 256 on CUDA.
        precision: ``"float32"`` (agrees with skimage to ~1e-8) or ``"float64"`` (~1e-15).
        threads: torch intra-op threads on CPU while computing (None: torch's setting). The
            per-step maps are small, so thread synchronisation costs more than it saves (1 thread
            measured 5-10x faster than 2 on a loaded 2-core CPU; ``benchmarks/bench_metrics.py``);
            parallelise over samples instead.

    Raises:
        MetricError: shapes differ, clip empty, or frames smaller than the window.
    """
    _check_pair(preds, target)
    n, h, w, c = preds.shape
    taps = gaussian_taps(sigma, truncate)
    if h < len(taps) or w < len(taps):
        raise MetricError(f"frames of {h}x{w} are smaller than the {len(taps)}-tap SSIM window")
    dev = torch.device(device or "cpu")
    if batch_size is None:
        batch_size = 2 if dev.type == "cpu" else 256
    dt = torch.float64 if precision == "float64" else torch.float32
    # Work in units of the data range, centred on 0.5: float32 then keeps E[x^2] - E[x]^2 accurate
    # to ~1e-7, far below C2 = 9e-4; the means are shifted back for the luminance term.
    c1, c2 = 0.01**2, 0.03**2
    out = []
    with _intra_op_threads(threads, dev):
        for i in range(0, n, batch_size):
            x = (_to_tensor(preds[i : i + batch_size], dev) / data_range - 0.5).to(dt).permute(0, 3, 1, 2)
            y = (_to_tensor(target[i : i + batch_size], dev) / data_range - 0.5).to(dt).permute(0, 3, 1, 2)
            b = x.shape[0]
            # x^2 and y^2 are filtered apart (not as x^2 + y^2) so identical frames give vx = vy = vxy
            # bit for bit, hence SSIM exactly 1 (the ground-truth row of a table).
            ux, uy, uxx, uyy, uxy = _valid_filter(torch.stack([x, y, x * x, y * y, x * y]), taps)
            vsum, vxy = (uxx - ux * ux) + (uyy - uy * uy), uxy - ux * uy  # shift-invariant
            mx, my = ux + 0.5, uy + 0.5  # the luminance term needs the uncentred means
            s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vsum + c2))
            out.append(s.reshape(b, c, -1).to(torch.float64).mean(dim=2).mean(dim=1))
    return torch.cat(out)
