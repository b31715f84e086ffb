"""Presentation orders: every participant rates every (sample, method) video once, in an order that is
randomised per participant (seeded) and counter-balanced across participants.

The sequence is cut into rounds of one video per method, each round showing different samples
(when there are at least as many samples as methods). Within a round the methods come in the order of
one row of a Williams balanced Latin square; participant ``p`` uses row ``p + r`` in round ``r``. So over
any block of ``len(square)`` consecutive participants, every method takes every within-round position
equally often in every round, and (Williams) within a round every method follows every other method
equally often. Which sample a method shows in which round comes from a seeded per-participant
permutation of the samples; method ``m`` takes sample ``r + m * (n // k)`` of it in round ``r``, so the
``k`` showings of one sample are spread about ``n / k`` rounds apart rather than bunched together.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=32)
def williams_square(k: int) -> tuple[tuple[int, ...], ...]:
    """Rows of a Williams (1949) balanced Latin square of ``k`` conditions: each condition once per row
    and column, and each ordered pair of neighbours once (``k`` even; for odd ``k`` the square is
    followed by its mirror image, 2k rows, which restores the neighbour balance)."""
    if k < 1:
        raise ValueError("a Latin square needs at least one condition")
    first, lo, hi = [0], 1, k - 1
    while len(first) < k:
        first.append(lo)
        lo += 1
        if len(first) < k:
            first.append(hi)
            hi -= 1
    rows = [tuple((c + r) % k for c in first) for r in range(k)]
    if k % 2:
        rows += [tuple(reversed(row)) for row in rows]
    return tuple(rows)


def participant_order(n_samples: int, n_methods: int, n_checks: int, participant: int,
                      seed: int) -> list[tuple[str, int, int]]:
    """The presentation order of participant ``participant`` (0-based): a list of
    ``("video", sample, method)`` and ``("check", c, -1)`` entries. Deterministic in its arguments."""
    if n_samples < 1 or n_methods < 1:
        raise ValueError("a study needs at least one sample and one method")
    rng = np.random.default_rng([seed, participant])
    samples = rng.permutation(n_samples)
    square = williams_square(n_methods)
    stride = max(1, n_samples // n_methods)
    order: list[tuple[str, int, int]] = []
    for r in range(n_samples):
        row = square[(participant + r) % len(square)]
        order += [("video", int(samples[(r + m * stride) % n_samples]), m) for m in row]
    # Attention checks: one in each of n_checks equal stretches of the sequence, at a seeded place.
    total = len(order)
    places = []
    for c in range(n_checks):
        lo, hi = max(1, c * total // n_checks), (c + 1) * total // n_checks  # never first: warm up on a video
        places.append(int(rng.integers(lo, hi + 1)) if hi >= lo else total)
    for c, at in sorted(enumerate(places), key=lambda x: x[1], reverse=True):
        order.insert(at, ("check", c, -1))
    return order
