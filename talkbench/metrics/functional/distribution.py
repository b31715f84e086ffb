"""Fréchet distance between feature distributions (FID, FVD), in float64.

``frechet_distance`` is the formula of pytorch-fid's ``calculate_frechet_distance`` (Heusel et al.
2017, "stable version" by D. Sutherland): ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrtm(S1 S2))``
with ``scipy.linalg.sqrtm``; if the product is singular enough that ``sqrtm`` returns non-finite
values, ``eps`` is added to both diagonals and it is recomputed; an imaginary part above 1e-3 on the
diagonal is an error, a smaller one is dropped. Statistics are ``mean`` and ``np.cov(rowvar=False)``
(unbiased, ddof 1), as pytorch-fid.

``frechet_distance_features`` computes the same number straight from two feature matrices without a
d x d ``sqrtm``: with ``S1 = A A^T`` and ``S2 = B B^T``, the eigenvalues of ``S1 S2`` equal the squared
singular values of ``A^T B``, so ``tr(sqrtm(S1 S2))`` is the nuclear norm of ``A^T B`` (equivalently the
sum of square roots of the eigenvalues of ``A^T S2 A``). ``A`` is the centred features / sqrt(n - 1)
when n <= d, else a symmetric square root of ``S1``. It is exact (no eps), needs at most two symmetric
eigendecompositions, and is what the bootstrap over samples uses.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from talkbench.errors import MetricError


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, covariance)`` of (N, D) features in float64 (covariance with ddof 1, as pytorch-fid)."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise MetricError(f"Fréchet distance needs at least 2 feature rows of shape (N, D), got {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (pytorch-fid's formula)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricError(f"feature sizes differ: means {mu1.shape} vs {mu2.shape}, "
                          f"covariances {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sqrtm warns on singular products; handled by the eps retry below
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(sigma1)) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise MetricError(f"Fréchet distance: sqrtm has an imaginary part of {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _cov_factor(x: np.ndarray) -> np.ndarray:
    """A matrix F (k x D) with F^T F = cov(x) (ddof 1)."""
    n, d = x.shape
    xc = x - x.mean(axis=0)
    if n <= d:
        return xc / np.sqrt(n - 1)
    w, v = np.linalg.eigh(xc.T @ xc / (n - 1))
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance_features(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance of the Gaussians fitted to (N1, D) and (N2, D) features (no d x d sqrtm)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise MetricError(f"Fréchet distance needs two (N>=2, D) feature matrices, got {x.shape} and {y.shape}")
    if len(y) < len(x):
        x, y = y, x  # the distance is symmetric; factor the side with fewer rows
    d = x.shape[1]
    diff = x.mean(axis=0) - y.mean(axis=0)
    fx = _cov_factor(x)  # k x d with fx^T fx = S1, k = min(n1, d)
    if len(y) <= d:
        fy = (y - y.mean(axis=0)) / np.sqrt(len(y) - 1)
        tr_covmean = np.linalg.svd(fx @ fy.T, compute_uv=False).sum()
        tr_y = float((fy * fy).sum())
    else:
        sy = np.cov(y, rowvar=False)
        # tr sqrtm(S1 S2) = sum of sqrt eigenvalues of fx S2 fx^T (symmetric PSD, k x k)
        tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(fx @ sy @ fx.T), 0, None)).sum()
        tr_y = float(np.trace(sy))
    return float(diff @ diff + (fx * fx).sum() + tr_y - 2 * tr_covmean)


@dataclass(frozen=True)
class FrechetResult:
    value: float
    low: float
    high: float
    n_samples: int
    n_rows: tuple[int, int]
    dim: int
    resamples: int
    warning: str | None = None


def rank_warning(n_rows: int, dim: int) -> str | None:
    """Why a covariance from ``n_rows`` rows of ``dim`` features is not full rank (None if it can be)."""
    if n_rows <= dim:
        return (f"{n_rows} feature rows for {dim} dimensions: the covariance is rank-deficient (needs more than "
                f"{dim} rows), so the distance is biased and only comparable at the same row count")
    return None


def frechet_with_bootstrap(gen: list[np.ndarray], ref: list[np.ndarray], resamples: int = 200, seed: int = 0,
                           confidence: float = 0.95) -> FrechetResult:
    """Fréchet distance between pooled per-sample features ``gen[i]`` (rows of sample i) and ``ref[i]``,
    with a percentile bootstrap over samples: each resample draws sample indices with replacement and
    pools the same indices on both sides (generated and ground truth stay paired). The interval is the
    percentile interval shifted by the bootstrap bias estimate."""
    if len(gen) != len(ref):
        raise MetricError(f"{len(gen)} generated vs {len(ref)} reference samples")
    keep = [i for i in range(len(gen)) if len(gen[i]) and len(ref[i])]
    if len(keep) < 1:
        raise MetricError("no sample has features on both sides")
    gx, rx = np.concatenate([gen[i] for i in keep]), np.concatenate([ref[i] for i in keep])
    if len(gx) < 2 or len(rx) < 2:
        raise MetricError(f"Fréchet distance needs at least 2 feature rows per side, got {len(gx)} and {len(rx)}")
    value = frechet_distance_features(gx, rx)
    low = high = float("nan")
    done = 0
    if resamples > 0 and len(keep) >= 2:
        rng = np.random.default_rng(seed)
        vals = []
        for _ in range(resamples):
            idx = rng.integers(0, len(keep), len(keep))
            g = np.concatenate([gen[keep[i]] for i in idx])
            r = np.concatenate([ref[keep[i]] for i in idx])
            if len(g) >= 2 and len(r) >= 2:
                vals.append(frechet_distance_features(g, r))
        done = len(vals)
        if vals:
            # Resampling with replacement duplicates samples, which biases a Fréchet distance upward;
            # the percentile interval is shifted back by that bias (mean of resamples - full value).
            a = (1 - confidence) / 2
            bias = float(np.mean(vals)) - value
            low, high = (float(v) - bias for v in np.quantile(vals, [a, 1 - a]))
            low = max(low, 0.0)  # a distance: the shift must not push the bound below zero
    return FrechetResult(value, low, high, len(keep), (len(gx), len(rx)), gx.shape[1], done,
                         rank_warning(min(len(gx), len(rx)), gx.shape[1]))
