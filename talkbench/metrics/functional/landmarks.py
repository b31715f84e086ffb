"""Landmark distance (LMD) in its published variants, and a landmark-velocity error.

Landmarks are ``(T, 68, 2)`` arrays in iBUG order; frames where either side is NaN are excluded and
counted, never zero-filled. Distances are in pixels of the crop the landmarks were taken on, scaled
to a declared canonical size (``scale = canonical / actual``).

Variants (name -> definition, source):

- ``mean-centred`` (default): mouth points 48-67, each set centred on its own centroid, mean
  Euclidean distance per point, mean over frames (RAD-NeRF ``LMDMeter``; EAT protocol; the CALS
  paper's ~1-3 px values read as per-point means).
- ``sum-centred``: as above but the per-frame value is the **sum** over the 20 points (ATVGnet
  ``evaluation_matrix.py``).
- ``l1-raw``: no centring, mean absolute coordinate difference (L1 over x and y), pooled over frames
  (ViCo challenge ``compute_lmd.py``).
- ``m-lmd-68``: no centring, Euclidean distances summed over the 20 mouth points and divided by
  T x 68 (talking-head-metrics ``lmd_score`` M-LMD).
- ``face-mean-centred``: all 68 points, centred, mean Euclidean (RAD-NeRF region='face').
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkbench.errors import MetricError

MOUTH = slice(48, 68)


@dataclass(frozen=True)
class LMDVariant:
    name: str
    points: slice
    centred: bool
    per_frame: str  # "mean-l2" | "sum-l2" | "mean-l1"
    pooling: str  # "frames" | "points68"
    source: str


LMD_VARIANTS = {
    v.name: v
    for v in (
        LMDVariant("mean-centred", MOUTH, True, "mean-l2", "frames", "RAD-NeRF LMDMeter / EAT; talkbench default"),
        LMDVariant("sum-centred", MOUTH, True, "sum-l2", "frames", "ATVGnet evaluation_matrix.py"),
        LMDVariant("l1-raw", MOUTH, False, "mean-l1", "frames", "ViCo challenge compute_lmd.py"),
        LMDVariant("m-lmd-68", MOUTH, False, "sum-l2", "points68", "talking-head-metrics lmd_score (M-LMD)"),
        LMDVariant("face-mean-centred", slice(0, 68), True, "mean-l2", "frames", "RAD-NeRF LMDMeter region='face'"),
    )
}


def _valid(gen: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gen = np.asarray(gen, np.float64)
    ref = np.asarray(ref, np.float64)
    if gen.shape != ref.shape or gen.ndim != 3 or gen.shape[1:] != (68, 2):
        raise MetricError(f"landmarks must both be (T, 68, 2), got {gen.shape} and {ref.shape}")
    ok = ~(np.isnan(gen).any(axis=(1, 2)) | np.isnan(ref).any(axis=(1, 2)))
    return gen, ref, ok


def per_frame_distance(gen: np.ndarray, ref: np.ndarray, variant: str = "mean-centred", scale: float = 1.0) -> np.ndarray:
    """Per-frame values ``(T,)`` of an LMD variant (NaN where either side has no landmarks)."""
    v = LMD_VARIANTS[variant]
    gen, ref, ok = _valid(gen, ref)
    g, r = gen[:, v.points] * scale, ref[:, v.points] * scale
    if v.centred:
        g = g - g.mean(axis=1, keepdims=True)
        r = r - r.mean(axis=1, keepdims=True)
    if v.per_frame == "mean-l1":
        d = np.abs(g - r).mean(axis=(1, 2))
    else:
        e = np.linalg.norm(g - r, axis=2)
        d = e.sum(axis=1) if v.per_frame == "sum-l2" else e.mean(axis=1)
    if v.pooling == "points68":
        d = d / 68.0
    d[~ok] = np.nan
    return d


def landmark_distance(
    gen: np.ndarray, ref: np.ndarray, variant: str = "mean-centred", scale: float = 1.0
) -> tuple[float, int, int]:
    """Clip LMD: ``(value, frames_scored, frames_missing)``; raises when no frame has both sides."""
    if variant not in LMD_VARIANTS:
        raise MetricError(f"unknown LMD variant {variant!r}; known: {', '.join(LMD_VARIANTS)}")
    d = per_frame_distance(gen, ref, variant, scale)
    ok = ~np.isnan(d)
    if not ok.any():
        raise MetricError("no frame has landmarks on both the generated and the reference side")
    return float(d[ok].mean()), int(ok.sum()), int((~ok).sum())


def landmark_velocity_error(gen: np.ndarray, ref: np.ndarray, scale: float = 1.0) -> tuple[float, int]:
    """Temporal stability (LVD): mean over consecutive frame pairs and mouth points of
    ``|| (g_t - g_{t-1}) - (r_t - r_{t-1}) ||`` on centroid-centred mouth landmarks, in pixels.

    Zero for a copy that is offset or deformed by a constant amount (same LMD), large for jitter.
    Returns ``(value, pairs_scored)``; pairs with a NaN on either side are skipped.
    """
    gen, ref, ok = _valid(gen, ref)
    g = gen[:, MOUTH] * scale
    r = ref[:, MOUTH] * scale
    g = g - g.mean(axis=1, keepdims=True)
    r = r - r.mean(axis=1, keepdims=True)
    pair_ok = ok[1:] & ok[:-1]
    if not pair_ok.any():
        raise MetricError("need two consecutive frames with landmarks on both sides")
    dv = (g[1:] - g[:-1]) - (r[1:] - r[:-1])
    e = np.linalg.norm(dv, axis=2).mean(axis=1)
    return float(e[pair_ok].mean()), int(pair_ok.sum())
