"""The synthetic critic's training pieces: window sampling and the card's ``view`` box, applied by the
LSE scorer exactly as a manual crop would be."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from talkbench.critics.syncnet import SyncNetS
from talkbench.critics.train_syncnet import _starts
from talkbench.metrics import METRICS
from talkbench.metrics.base import ScoreInput
from talkbench.metrics.functional.sync import lse
from talkbench.metrics.sync import to_syncnet_frames
from talkbench.weights import save_weights


@pytest.mark.parametrize("n,k,gap", [(40, 4, 5), (16, 4, 5), (6, 4, 5), (1, 3, 5), (100, 6, 9)])
def test_window_starts_are_spaced_and_in_range(n: int, k: int, gap: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = _starts(n, k, gap, rng)
        assert s and all(0 <= x < n for x in s)
        assert all(b - a >= gap for a, b in itertools.pairwise(s))
        assert len(s) == min(k, (n - 1) // gap + 1)


def test_view_crops_the_box_before_resizing() -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (3, 128, 128, 3), dtype=np.uint8)
    out = to_syncnet_frames(frames, (0.25, 0.25, 0.75, 0.75))
    import cv2

    ref = cv2.resize(frames[1, 32:96, 32:96], (224, 224), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    np.testing.assert_array_equal(out[1], ref)
    np.testing.assert_array_equal(to_syncnet_frames(frames)[0],
                                  cv2.resize(frames[0], (224, 224), interpolation=cv2.INTER_LINEAR)[..., ::-1])


def test_scorer_applies_the_cards_view(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    model = SyncNetS(width=0.1).eval()
    view = (0.2, 0.3, 0.8, 0.9)
    path = tmp_path / "critic.safetensors"
    save_weights(path, model.state_dict(), {"config": {"width": 0.1, "view": list(view)}, "command": "test"})
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 255, (14, 64, 64, 3), dtype=np.uint8)
    audio = rng.standard_normal(14 * 640).astype(np.float32) * 0.1
    scorer = METRICS.get("lse")(weights=path)
    got = scorer.score(ScoreInput("s", frames, audio))
    # The shipped file is fp16: reference with the same rounded weights.
    from talkbench.critics.syncnet import load_syncnet

    ref = lse(load_syncnet(path), to_syncnet_frames(frames, view), audio)
    full = lse(load_syncnet(path), to_syncnet_frames(frames), audio)
    assert got["lse_d"] == pytest.approx(ref.lse_d, abs=1e-5)
    assert got["lse_d"] != pytest.approx(full.lse_d, abs=1e-5)
    assert scorer.provenance()["view"] == list(view)
