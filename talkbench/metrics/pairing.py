"""Pairing generated and reference frames before a paired metric."""

from __future__ import annotations

import numpy as np

from talkbench.errors import MetricError


def pair_frames(generated: np.ndarray, reference: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Trim both clips to the shorter length (recorded as a warning); sizes must match."""
    if reference is None:
        raise MetricError("this metric compares with the ground truth, but no reference frames were given")
    if len(generated) == 0 or len(reference) == 0:
        raise MetricError(f"empty clip: {len(generated)} generated and {len(reference)} reference frames")
    if generated.shape[1:] != reference.shape[1:]:
        raise MetricError(f"frame sizes differ: generated {generated.shape[1:]} vs reference {reference.shape[1:]}")
    warnings = []
    n = min(len(generated), len(reference))
    if len(generated) != len(reference):
        warnings.append(f"frame counts differ ({len(generated)} generated vs {len(reference)} reference): trimmed to {n}")
    return generated[:n], reference[:n], warnings
