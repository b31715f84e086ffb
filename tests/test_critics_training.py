"""The synthetic critic's training pieces: window sampling and the card's ``view`` box, applied by the
LSE scorer exactly as a manual crop would be."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from talkbench.critics.sync_eval import lse, to_syncnet_frames
from talkbench.critics.syncnet import SyncNetS
from talkbench.datasets.clips import spaced_starts
from talkbench.metrics import METRICS
from talkbench.metrics.base import ScoreInput
from talkbench.weights import save_weights


@pytest.mark.parametrize("n,k,gap", [(40, 4, 5), (16, 4, 5), (6, 4, 5), (1, 3, 5), (100, 6, 9)])
def test_window_starts_are_spaced_and_in_range(n: int, k: int, gap: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = spaced_starts(n, k, gap, rng)
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


def test_resample_goes_through_the_smaller_side_and_back() -> None:
    import cv2

    from talkbench.critics.train_syncnet import resample

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (2, 96, 96, 3), dtype=np.uint8)
    assert resample(frames, 96) is frames
    small = cv2.resize(frames[1], (40, 40), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(resample(frames, 40)[1], cv2.resize(small, (96, 96), interpolation=cv2.INTER_LINEAR))


def test_cli_fine_tunes_from_init_with_resolution_augmentation(tmp_path: Path) -> None:
    """`--init` starts from the given weights (0 steps: the export equals them) and is recorded on the
    card with `res_aug`; the card carries the 64-px ground-truth confidence check."""
    import torch
    from click.testing import CliRunner

    from talkbench.cli import cli as cli_main
    from talkbench.critics.syncnet import load_syncnet
    from talkbench.datasets.synth.corpus import build_corpus
    from talkbench.weights import read_card

    root = build_corpus("synth-lrw", tmp_path / "corpus", clips={"train": 6, "val": 1}, splits=("train", "val"),
                        progress=False, workers=1)
    torch.manual_seed(0)
    init = tmp_path / "init.safetensors"
    save_weights(init, SyncNetS(width=0.1).state_dict(), {"config": {"width": 0.1}, "command": "test"})
    export = tmp_path / "out.safetensors"
    args = ["train", "syncnet", "--dataset", "synth-lrw", "--root", str(root), "--width", "0.1", "--steps", "0",
            "--res-aug", "32", "--init", str(init), "--threads", "1", "--out", str(tmp_path / "run"), "--export", str(export)]
    r = CliRunner().invoke(cli_main, args)
    assert r.exit_code == 0, r.output
    card = read_card(export)
    assert card["init"]["sha256"] == read_card(init)["sha256"] and card["config"]["res_aug"] == 32
    assert card["init"]["file"] == "init.safetensors" and "path" not in card["init"]  # no machine path on a card
    assert {"val_gt_lse_c_mean", "val_gt64_lse_c_mean"} <= set(card["metrics"])
    a, b = load_syncnet(init).state_dict(), load_syncnet(export).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    r = CliRunner().invoke(cli_main, [*args[:-2], "--steps", "2", "--out", str(tmp_path / "run2")])
    assert r.exit_code == 0, r.output
