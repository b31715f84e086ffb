"""Inter-rater agreement: Krippendorff's alpha for any number of raters, missing ratings allowed.

Written from Krippendorff's definition (K. Krippendorff, "Computing Krippendorff's Alpha-Reliability",
2011): the coincidence matrix ``o_ck`` counts, within every unit rated by ``m_u >= 2`` raters, each
ordered pair of values from two different raters with weight ``1 / (m_u - 1)``; with ``n_c`` its
margins and ``n`` the number of pairable values,

    alpha = 1 - (n - 1) * sum_ck o_ck d2_ck / sum_ck n_c n_k d2_ck

where ``d2`` is the metric's squared difference: interval ``(c - k)^2``; ordinal
``(sum_{g=c..k} n_g - (n_c + n_k) / 2)^2``; nominal ``[c != k]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

Level = Literal["nominal", "ordinal", "interval"]


def _distance(values: np.ndarray, margins: np.ndarray, level: Level) -> np.ndarray:
    if level == "interval":
        return (values[:, None] - values[None, :]) ** 2
    if level == "nominal":
        return (values[:, None] != values[None, :]).astype(np.float64)
    if level == "ordinal":
        # Ranks of the sorted distinct values, with their margins: sum of n_g between c and k inclusive,
        # minus half of the two ends.
        cum = np.concatenate([[0.0], np.cumsum(margins)])
        i = np.arange(len(values))
        lo, hi = np.minimum(i[:, None], i[None, :]), np.maximum(i[:, None], i[None, :])
        span = cum[hi + 1] - cum[lo]
        return (span - (margins[:, None] + margins[None, :]) / 2.0) ** 2
    raise ValueError(f"unknown level of measurement {level!r} (nominal, ordinal or interval)")


def krippendorff_alpha(data: Sequence[Sequence[float | None]] | np.ndarray, level: Level = "ordinal") -> float:
    """Krippendorff's alpha of a ``raters x units`` table (NaN or None = not rated).

    Units rated by fewer than two raters carry no pairs and are left out. Returns NaN when fewer than
    two pairable values remain or when all pairable values are equal (no variation to agree on).
    """
    table = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=np.float64)
    if table.ndim != 2:
        raise ValueError("reliability data must be a 2-D table: raters x units")
    values = np.unique(table[np.isfinite(table)])
    if len(values) == 0:
        return math.nan
    index = {v: i for i, v in enumerate(values)}
    o = np.zeros((len(values), len(values)))
    for unit in table.T:
        rated = unit[np.isfinite(unit)]
        m = len(rated)
        if m < 2:
            continue
        counts = np.zeros(len(values))
        for v in rated:
            counts[index[v]] += 1
        # Ordered pairs of values from different raters: counts_c * counts_k, minus self-pairs on the diagonal.
        o += (np.outer(counts, counts) - np.diag(counts)) / (m - 1)
    margins = o.sum(axis=1)
    n = margins.sum()
    if n < 2:
        return math.nan
    d2 = _distance(values, margins, level)
    expected = float((np.outer(margins, margins) * d2).sum())
    if expected == 0.0:
        return math.nan
    return 1.0 - (n - 1) * float((o * d2).sum()) / expected
