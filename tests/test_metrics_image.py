"""PSNR/SSIM against scikit-image on real crops and random frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from talkbench.errors import MetricError
from talkbench.metrics import METRICS
from talkbench.metrics.accumulators import PSNRAccumulator, SSIMAccumulator
from talkbench.metrics.base import ScoreInput
from talkbench.metrics.functional.image import peak_signal_noise_ratio, structural_similarity


def _sk(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ssim = [sk_ssim(x, y, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                    data_range=255) for x, y in zip(a, b)]
    psnr = [sk_psnr(y, x, data_range=255) for x, y in zip(a, b)]
    return np.array(psnr), np.array(ssim)


@pytest.fixture(scope="module")
def random_pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (6, 37, 45, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_random_frames_match_skimage(random_pair) -> None:
    a, b = random_pair
    psnr, ssim = _sk(a, b)
    np.testing.assert_allclose(peak_signal_noise_ratio(a, b).numpy(), psnr, atol=1e-4)
    np.testing.assert_allclose(structural_similarity(a, b).numpy(), ssim, atol=1e-4)


def test_real_crops_match_skimage(real_data: Path) -> None:
    from talkbench.io.video import read_video

    frames = read_video(real_data / "videos" / "vox_00086.mp4")[:12]
    a, b = frames[:6, 48:176, 48:176], frames[6:12, 48:176, 48:176]  # 128 px crops, different frames
    psnr, ssim = _sk(a, b)
    np.testing.assert_allclose(peak_signal_noise_ratio(a, b).numpy(), psnr, atol=1e-4)
    np.testing.assert_allclose(structural_similarity(a, b, batch_size=4).numpy(), ssim, atol=1e-4)


def test_identical_inputs() -> None:
    a = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert np.isinf(peak_signal_noise_ratio(a, a).numpy()).all()
    np.testing.assert_allclose(structural_similarity(a, a).numpy(), 1.0, atol=1e-12)
    acc = PSNRAccumulator()
    acc.update(a, a)
    assert acc.compute() == np.inf and acc.skipped == 3


def test_chunked_equals_one_shot(random_pair) -> None:
    a, b = random_pair
    for acc_cls, fn in ((PSNRAccumulator, peak_signal_noise_ratio), (SSIMAccumulator, structural_similarity)):
        acc = acc_cls()
        for i in range(0, 6, 4):
            acc.update(a[i : i + 4], b[i : i + 4])
        assert acc.compute() == pytest.approx(float(fn(a, b).mean()), abs=1e-12)
        acc.reset()
        assert acc.count == 0


def test_psnr_scorer_skips_identical_frames(random_pair) -> None:
    a, b = random_pair
    gen = b.copy()
    gen[0] = a[0]  # e.g. the static method's first frame equals the ground truth
    out = METRICS.get("psnr")().score(ScoreInput("x", gen, np.zeros(1), reference=a))
    assert out["psnr_identical_frames"] == 1
    assert out["psnr"] == pytest.approx(float(peak_signal_noise_ratio(gen[1:], a[1:]).mean()))


def test_bad_inputs() -> None:
    a = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(MetricError, match="same shape"):
        structural_similarity(a, np.zeros((2, 32, 30, 3), np.uint8))
    with pytest.raises(MetricError, match="empty"):
        peak_signal_noise_ratio(a[:0], a[:0])
    with pytest.raises(MetricError, match="smaller than"):
        structural_similarity(a[:, :8, :8], a[:, :8, :8])
    scorer = METRICS.get("ssim")()
    with pytest.raises(MetricError, match="sizes differ"):
        scorer.score(ScoreInput("x", a, np.zeros(1), reference=np.zeros((2, 30, 30, 3), np.uint8)))
    out = scorer.score(ScoreInput("x", np.zeros((3, 32, 32, 3), np.uint8), np.zeros(1), reference=a))
    assert out["ssim"] == pytest.approx(1.0)  # trimmed to the shorter clip


def test_float64_path_and_batching_match_skimage(random_pair) -> None:
    a, b = random_pair
    _, ssim = _sk(a, b)
    np.testing.assert_allclose(structural_similarity(a, b, precision="float64").numpy(), ssim, atol=1e-12)
    one = structural_similarity(a, b, batch_size=1).numpy()
    np.testing.assert_allclose(structural_similarity(a, b, batch_size=len(a)).numpy(), one, atol=1e-12)


def test_gaussian_window_is_scipys() -> None:
    from scipy.ndimage import gaussian_filter1d

    from talkbench.metrics.functional.image import gaussian_taps

    delta = np.zeros(31)
    delta[15] = 1.0
    taps = gaussian_taps(1.5, 3.5)
    assert len(taps) == 11  # skimage's win_size for sigma 1.5
    np.testing.assert_allclose(gaussian_filter1d(delta, 1.5, truncate=3.5)[10:21], taps, atol=1e-15)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(random_pair) -> None:
    a, b = random_pair
    np.testing.assert_allclose(structural_similarity(a, b, device="cuda").cpu().numpy(),
                               structural_similarity(a, b).numpy(), atol=1e-6)
    np.testing.assert_allclose(peak_signal_noise_ratio(a, b, device="cuda").cpu().numpy(),
                               peak_signal_noise_ratio(a, b).numpy(), atol=1e-9)
