"""Audio2Head as a registered method: `talkbench run --weights audio2head=FILE`, outputs in the
protocol crop, the pose offset recorded, bad audio as error rows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from baselines.audio2head.seeded import seeded_networks, synthetic_image, synthetic_speech
from talkbench.cli import cli
from talkbench.types import GenRequest, lower_half_masked

pytest.importorskip("pyworld")


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory) -> Path:
    from baselines.audio2head.checkpoint import flatten_state_dicts
    from talkbench.weights import save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("a2hw") / "a2h-small.safetensors"
    save_weights(path, flatten_state_dicts(seeded_networks(0.125)),
                 {"command": "test", "data": "seeded", "seed": 0, "metrics": {}, "config": {"width": 0.125}}, dtype=None)
    return path


@pytest.fixture(scope="module")
def method(small_weights):
    from talkbench.methods import METHODS

    torch.set_num_threads(1)
    m = METHODS.create("audio2head") if hasattr(METHODS, "create") else METHODS.get("audio2head")()
    m.load("cpu", small_weights)
    return m


def _request(sid: str, audio: np.ndarray, sr: int = 16000, frames: int = 10, size: int = 128) -> GenRequest:
    import cv2

    ref = cv2.resize(synthetic_image(3), (size, size))
    prior = lower_half_masked(np.repeat(ref[None], frames, 0))
    return GenRequest(sid, ref, prior, audio, sample_rate=sr)


def test_generates_every_frame_in_the_protocol_crop(method) -> None:
    speech = synthetic_speech(seconds=0.4).astype(np.float32) / 32768
    res = method.generate([_request("a", speech), _request("b", np.zeros(6400, np.float32))])
    a, b = res
    assert a.ok and a.frames.shape == (10, 128, 128, 3) and a.frames.dtype == np.uint8
    assert "row 0 comes from the image" in a.meta["pose_offset"] and a.meta["audio_pad_samples"] > 0
    assert len(a.meta["head_pose_std"]) == 6
    assert not b.ok and "silent" in b.error


def test_masked_frames_change_the_output(method) -> None:
    import dataclasses

    speech = synthetic_speech(seconds=0.4, seed=3).astype(np.float32) / 32768
    r = _request("m", speech)
    plain = method.generate([r])[0].frames
    masked = method.generate([dataclasses.replace(r, mask_frames=(2, 3, 4))])[0].frames
    assert plain.shape == masked.shape and not np.array_equal(plain, masked)


def test_run_cli_with_weights_records_sha(tmp_path: Path, small_weights) -> None:
    from conftest import talking_frames, tone

    from talkbench.io.video import write_video

    root = tmp_path / "ds"
    root.mkdir()
    write_video(root / "a.mp4", talking_frames(10), tone(0.4))
    res = CliRunner().invoke(cli, ["run", "--methods", "audio2head", "--dataset", "folder", "--root", str(root),
                                   "--split", "all", "--metrics", "psnr", "--weights", f"audio2head={small_weights}",
                                   "--run-dir", str(tmp_path / "r"), "--no-report"])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    from talkbench.cache import sha256_file

    assert record["methods"]["audio2head"]["weights"]["sha256"] == sha256_file(small_weights)
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as c:
        rows = c.execute("SELECT metric, value FROM results WHERE method='audio2head'").fetchall()
    assert rows and all(v is not None for _, v in rows)


@pytest.fixture(scope="module")
def oracle(small_weights):
    from talkbench.methods import METHODS

    m = METHODS.get("audio2head-kp-oracle")()
    m.load("cpu", small_weights)
    return m


def test_kp_oracle_drives_the_generator_with_the_ground_truths_keypoints(oracle) -> None:
    """Frame t is the generator on the reference with the detector's keypoints of ground-truth frame t:
    recomputed here from the networks, and a ground truth that repeats the reference gives the
    source keypoints on every frame (one image repeated)."""
    import cv2

    from baselines.audio2head.preprocess import reference_image

    ref = cv2.resize(synthetic_image(3), (128, 128))
    other = cv2.resize(synthetic_image(5), (128, 128))
    gt = np.stack([ref, other, ref])
    r = GenRequest("o", ref, lower_half_masked(gt), np.zeros(4800, np.float32), ground_truth=gt)
    got = oracle.generate([r])[0]
    assert got.ok and got.frames.shape == (3, 128, 128, 3)
    assert np.array_equal(got.frames[0], got.frames[2]) and not np.array_equal(got.frames[0], got.frames[1])
    nets = oracle.nets
    with torch.no_grad():
        img = torch.from_numpy(reference_image(ref))[None]
        src = nets["kp_detector"](img)
        drv = nets["kp_detector"](torch.from_numpy(reference_image(other))[None])
        pred = nets["generator"](img, {k: drv[k] for k in ("value", "jacobian")},
                                 {k: src[k] for k in ("value", "jacobian")})["prediction"][0]
    want = cv2.resize((pred.numpy().transpose(1, 2, 0) * 255).astype(np.uint8), (128, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(got.frames[1].astype(int) - want).max() <= 1  # batched vs single convolutions: float rounding
    assert not oracle.generate([GenRequest("n", ref, lower_half_masked(gt), np.zeros(4800, np.float32))])[0].ok


def test_kp_oracle_runs_from_the_cli_and_refuses_the_mask_condition(tmp_path: Path, small_weights) -> None:
    from conftest import talking_frames, tone

    from talkbench.io.video import write_video

    root = tmp_path / "ds"
    root.mkdir()
    write_video(root / "a.mp4", talking_frames(10), tone(0.4))
    res = CliRunner().invoke(cli, ["run", "--methods", "audio2head-kp-oracle,audio2head-kp-oracle@mask=3",
                                   "--dataset", "folder", "--root", str(root), "--split", "all", "--metrics", "psnr",
                                   "--weights", f"audio2head-kp-oracle={small_weights}",
                                   "--run-dir", str(tmp_path / "r"), "--no-report"])
    assert res.exit_code == 1, res.output  # the contract's "some items failed": the @mask one
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as c:
        rows = dict(c.execute("SELECT method, value FROM results WHERE metric='psnr'").fetchall())
        errors = c.execute("SELECT method, error FROM results WHERE error IS NOT NULL").fetchall()
    assert rows["audio2head-kp-oracle"] is not None and rows["audio2head-kp-oracle"] > 5
    assert [m for m, _ in errors] == ["audio2head-kp-oracle@mask=3"]
