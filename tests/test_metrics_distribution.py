"""Fréchet distance (FID/FVD) equals pytorch-fid's ``calculate_frechet_distance`` on the same features."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg

from talkbench.errors import MetricError
from talkbench.metrics.functional.distribution import (
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    frechet_with_bootstrap,
    rank_warning,
)
from tests._reference_impls import functions_from


@pytest.fixture(scope="module")
def pytorch_fid():
    return functions_from("pytorch_fid", "fid_score.py", ["calculate_frechet_distance"],
                          {"np": np, "linalg": scipy.linalg})


def _features(rng, n, d, shift=0.0, mix=True):
    x = rng.normal(size=(n, d))
    if mix:
        x = x @ rng.normal(size=(d, d)) * 0.3
    return x + shift


@pytest.mark.parametrize(("n1", "n2", "d"), [(400, 300, 64), (1200, 900, 256), (40, 30, 64), (50, 300, 64), (300, 50, 64)])
def test_frechet_equals_pytorch_fid(pytorch_fid, n1: int, n2: int, d: int) -> None:
    rng = np.random.default_rng(d + n1)
    x, y = _features(rng, n1, d), _features(rng, n2, d, 0.2)
    m1, s1 = feature_statistics(x)
    m2, s2 = feature_statistics(y)
    assert np.allclose(m1, x.mean(0)) and np.allclose(s1, np.cov(x, rowvar=False))  # pytorch-fid's statistics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's sqrtm(disp=) deprecation inside the reference
        ref = pytorch_fid.calculate_frechet_distance(m1, s1, m2, s2)
    ours = frechet_distance(m1, s1, m2, s2)
    assert abs(ours - ref) <= 1e-6 * max(1.0, abs(ref))
    # The sqrtm-free form used for bootstrapping agrees too (exactly in full rank; the rank-deficient
    # case differs only by pytorch-fid's eps retry).
    fast = frechet_distance_features(x, y)
    assert abs(fast - ref) <= (1e-6 if min(n1, n2) > d else 1e-5) * max(1.0, abs(ref))


def test_identical_sets_give_zero_and_shift_adds_its_square() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 16))
    assert abs(frechet_distance_features(x, x)) < 1e-9
    shift = np.full(16, 0.5)
    assert frechet_distance_features(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9)


def test_bootstrap_interval_brackets_the_value_and_warns_when_rank_deficient() -> None:
    rng = np.random.default_rng(1)
    gen = [rng.normal(size=(5, 8)) + 0.3 for _ in range(30)]
    ref = [rng.normal(size=(5, 8)) for _ in range(30)]
    r = frechet_with_bootstrap(gen, ref, resamples=100, seed=0)
    assert r.low <= r.value <= r.high and r.resamples == 100 and r.n_samples == 30
    assert r.warning is None and r.n_rows == (150, 150)
    assert frechet_with_bootstrap(gen, ref, resamples=100, seed=0) == r  # seeded
    small = frechet_with_bootstrap(gen[:1], ref[:1], resamples=10)
    assert small.warning and "rank-deficient" in small.warning and np.isnan(small.low)
    assert "needs more than 8 rows" in rank_warning(8, 8)


def test_too_few_rows_and_mismatched_sizes_are_errors() -> None:
    with pytest.raises(MetricError, match="at least 2"):
        feature_statistics(np.zeros((1, 4)))
    with pytest.raises(MetricError, match="differ"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(MetricError, match="at least 2 feature rows"):
        frechet_with_bootstrap([np.zeros((1, 4))], [np.zeros((1, 4))])
