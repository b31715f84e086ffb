"""CPBD equals the independent ``cpbd`` package on real frames, and ranks every real clip above its
blurred copy."""

from __future__ import annotations

import importlib
import sys

import cv2
import numpy as np
import pytest

from talkbench.metrics.functional.sharpness import cpbd, to_gray


def _middle_frames(path, k: int = 3, side: int = 256) -> np.ndarray:
    from talkbench.io.video import iter_video

    frames = next(iter(iter_video(path, chunk_frames=60)))
    pick = frames[np.linspace(0, len(frames) - 1, k).round().astype(int)]
    if pick.shape[1] > side:  # the 590-844 px clips: keep the test fast
        pick = np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in pick])
    return pick


@pytest.fixture(scope="module")
def cpbd_package():
    """``cpbd`` 1.0.7 imports ``scipy.ndimage.imread`` (removed from SciPy) for its command line only;
    a placeholder lets the module import. Its ``compute`` is the code under comparison, unchanged."""
    if importlib.util.find_spec("cpbd") is None:
        pytest.skip("cpbd is not installed (pip install --no-deps cpbd)")
    import scipy.ndimage

    had = hasattr(scipy.ndimage, "imread")
    if not had:
        scipy.ndimage.imread = None
    try:
        sys.modules.pop("cpbd.compute", None)
        return importlib.import_module("cpbd.compute")
    finally:
        if not had:
            del scipy.ndimage.imread


@pytest.mark.real
def test_cpbd_equals_the_cpbd_package_on_real_frames(real_data, cpbd_package) -> None:
    for name in ("vox_00015.mp4", "retalking_3.mp4", "vox_input_00010.mp4"):
        frame = _middle_frames(real_data / "videos" / name, k=1)[0]
        gray = to_gray(frame)
        want = cpbd_package.compute(gray)
        assert abs(cpbd(frame) - want) < 1e-9, name
        blurred = to_gray(cv2.GaussianBlur(frame, (0, 0), 1.0))
        assert abs(cpbd(blurred) - cpbd_package.compute(blurred)) < 1e-9, name


@pytest.mark.real
def test_every_real_clip_is_sharper_than_its_blurred_copy(real_data) -> None:
    videos = sorted((real_data / "videos").glob("*.mp4"))
    assert len(videos) >= 10
    for path in videos:
        frames = _middle_frames(path)
        sharp = np.mean([cpbd(f) for f in frames])
        blurred = np.mean([cpbd(cv2.GaussianBlur(f, (0, 0), 1.0)) for f in frames])
        assert sharp > blurred + 0.02, f"{path.name}: CPBD sharp {sharp:.4f} vs blurred {blurred:.4f}"


def test_flat_or_tiny_frames_have_no_edge_blocks() -> None:
    assert np.isnan(cpbd(np.full((128, 128, 3), 90, np.uint8)))
    assert np.isnan(cpbd(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)))
