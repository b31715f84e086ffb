"""Wav2Lip training: the official recipe's pieces on a small in-memory clip bank."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from baselines.wav2lip.checkpoint import load_wav2lip
from baselines.wav2lip.preprocess import to_faces as to_wav2lip_faces
from baselines.wav2lip.train import (
    SYNC_THRESHOLD,
    Wav2LipClips,
    Wav2LipTrainConfig,
    Wav2LipTrainer,
    cosine_loss,
    expert_batch,
    generator_batch,
    lower_halves,
)
from talkbench.io.audio import wav2lip_mel
from tests.conftest import smooth_noise_clips

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clips() -> Wav2LipClips:
    return smooth_noise_clips(frames=20, face_size=96)


CFG = Wav2LipTrainConfig(width=0.0625, batch_size=4, expert_batch_size=8, eval_batches=1, eval_every=2)


def test_batches_have_the_official_shapes_and_masking(clips: Wav2LipClips) -> None:
    rng = np.random.default_rng(1)
    g = generator_batch(clips, 3, rng)
    assert g["x"].shape == (3, 6, 5, 96, 96) and g["indiv_mels"].shape == (3, 5, 1, 80, 16)
    assert g["mel"].shape == (3, 1, 80, 16) and g["gt"].shape == (3, 3, 5, 96, 96)
    assert torch.all(g["x"][:, :3, :, 48:] == 0) and torch.equal(g["x"][:, :3, :, :48], g["gt"][:, :, :, :48])
    e = expert_batch(clips, 8, rng)
    assert e["face"].shape == (8, 15, 48, 96) and set(e["y"].tolist()) <= {0.0, 1.0}
    w = torch.rand(2, 3, 5, 96, 96)
    assert torch.equal(lower_halves(w)[:, 3:6], w[:, :, 1, 48:])


def test_cosine_loss_is_bce_on_the_cosine() -> None:
    a = torch.nn.functional.normalize(torch.rand(4, 8), dim=1)
    v = torch.nn.functional.normalize(torch.rand(4, 8), dim=1)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    d = (a * v).sum(1)
    ref = -(y * torch.log(d) + (1 - y) * torch.log(1 - d)).mean()
    assert float(cosine_loss(a, v, y)) == pytest.approx(float(ref), rel=1e-5)


def test_expert_and_generator_losses_fall_on_a_fixed_batch(tmp_path: Path, clips: Wav2LipClips) -> None:
    torch.manual_seed(0)
    tr = Wav2LipTrainer(replace(CFG, expert_lr=1e-3, lr=1e-3), tmp_path, train=clips)
    rng = np.random.default_rng(2)
    eb, gb = expert_batch(clips, 8, rng), generator_batch(clips, 4, rng)
    e = [tr.expert_step(eb) for _ in range(15)]
    g = [tr.generator_step(gb)["l1"] for _ in range(25)]
    assert e[-1] < e[0] * 0.8 and np.mean(g[-5:]) < g[0] * 0.9


def test_sync_weight_switches_on_below_threshold(tmp_path: Path, clips: Wav2LipClips) -> None:
    tr = Wav2LipTrainer(CFG, tmp_path, train=clips)
    tr.maybe_switch_sync(SYNC_THRESHOLD + 0.01)
    assert tr.sync_wt == 0.0
    tr.maybe_switch_sync(SYNC_THRESHOLD - 0.01)
    assert tr.sync_wt == 0.01
    gan = Wav2LipTrainer(replace(CFG, gan=True), tmp_path / "gan", train=clips)
    gan.maybe_switch_sync(0.5)
    assert gan.sync_wt == 0.03
    row = gan.generator_step()
    assert {"perceptual", "disc", "sync"} <= set(row) and row["sync"] > 0
    for gan_on in (False, True):  # the deviations: another threshold and weight, with and without the GAN
        own = Wav2LipTrainer(replace(CFG, sync_threshold=2.0, sync_weight=0.05, gan=gan_on), tmp_path / f"o{gan_on}", train=clips)
        own.maybe_switch_sync(2.01)
        assert own.sync_wt == 0.0
        own.maybe_switch_sync(1.5)
        assert own.sync_wt == 0.05


def test_checkpoints_load_officially_and_resume(tmp_path: Path, clips: Wav2LipClips) -> None:
    cfg = replace(CFG, expert_steps=2, generator_steps=2)
    tr = Wav2LipTrainer(cfg, tmp_path, train=clips, val=clips)
    tr.fit(progress=False)
    ck = torch.load(tmp_path / "generator.pth", weights_only=True)
    assert set(ck) == {"state_dict", "optimizer", "global_step", "global_epoch"} and ck["global_step"] == 2
    gen = load_wav2lip(tmp_path / "generator.pth", "generator", width=cfg.width)
    for k, v in tr.gen.state_dict().items():
        assert torch.equal(gen.state_dict()[k], v)
    load_wav2lip(tmp_path / "expert.pth", "expert", width=cfg.width)
    more = Wav2LipTrainer(replace(cfg, generator_steps=3), tmp_path, train=clips, val=clips)
    assert more.resume() and more.step == {"expert": 2, "generator": 2}
    more.fit(progress=False)
    assert more.step["generator"] == 3
    rows = [r for r in more.history if r["stage"] == "generator"]
    assert [r["step"] for r in rows] == [3]  # only the missing step ran


def test_exported_generator_runs_through_the_adapter(tmp_path: Path, clips: Wav2LipClips) -> None:
    from baselines.wav2lip.adapter import Wav2LipMethod
    from talkbench.types import GenRequest
    from talkbench.weights import save_weights

    tr = Wav2LipTrainer(CFG, tmp_path, train=clips)
    path = tmp_path / "w.safetensors"
    save_weights(path, tr.gen.state_dict(), {"config": {"width": CFG.width}, "command": "test"})
    m = Wav2LipMethod()
    m.load(weights=path)
    rng = np.random.default_rng(3)
    pose = rng.integers(0, 255, (6, 128, 128, 3), dtype=np.uint8)
    req = GenRequest("s", pose[0], pose, (rng.standard_normal(6 * 640) * 0.1).astype(np.float32))
    res = m.generate([req])[0]
    assert res.error is None and res.frames.shape == (6, 128, 128, 3)


def test_cli_trains_on_a_suite_dataset_and_exports(tmp_path: Path) -> None:
    """`talkbench train wav2lip` end to end on a tiny synth-lrw corpus: both stages, log.jsonl with
    every loss, official-layout checkpoints, --resume, and an exported file the adapter loads."""
    import json

    from click.testing import CliRunner

    from talkbench.cli import cli as cli_main
    from talkbench.datasets.synth.corpus import build_corpus
    from talkbench.weights import read_card

    root = build_corpus("synth-lrw", tmp_path / "corpus", clips={"train": 2, "val": 1}, splits=("train", "val"),
                        progress=False, workers=1)
    out, export = tmp_path / "run", tmp_path / "w.safetensors"
    args = ["train", "wav2lip", "--dataset", "synth-lrw", "--root", str(root), "--width", "0.0625",
            "--expert-steps", "2", "--steps", "2", "--batch-size", "2", "--expert-batch-size", "4",
            "--eval-every", "2", "--device", "cpu", "--threads", "1", "--out", str(out)]
    r = CliRunner().invoke(cli_main, [*args, "--export", str(export)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["step"]) for x in rows] == [("expert", 1), ("expert", 2), ("generator", 1), ("generator", 2)]
    assert "val_loss" in rows[1] and {"l1", "sync", "val_l1", "val_sync"} <= set(rows[3])
    assert read_card(export)["config"]["width"] == 0.0625
    assert load_wav2lip(export).state_dict().keys() == load_wav2lip(out / "generator.pth", width=0.0625).state_dict().keys()
    r = CliRunner().invoke(cli_main, [*args, "--steps", "3", "--resume"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["step"]) for x in rows[4:]] == [("generator", 3)]
    commands = json.loads((out / "state.json").read_text())["commands"]
    assert len(commands) == 2 and "--resume" in commands[1] and "--resume" not in commands[0]


def test_multiway_batch_pairs_each_window_with_its_own_mel() -> None:
    """Faces whose pixels hold the frame index and mels whose columns hold the mel step: every row's mel
    must start at int(80 k / 25) of its window's first frame k, and a clip's windows are >= T apart."""
    from baselines.wav2lip.train import T, multiway_batch

    bank = []
    for i in range(3):
        n = 30 + i
        faces = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 96, 96, 3)).copy()
        mel = np.broadcast_to(np.arange(int(80 * n / 25) + 20, dtype=np.float32), (80, int(80 * n / 25) + 20)).copy()
        bank.append((f"c{i}", faces, mel))
    b = multiway_batch(Wav2LipClips(bank), 12, 4, np.random.default_rng(0))
    assert b["face"].shape == (12, 15, 48, 96) and b["mel"].shape == (12, 1, 80, 16)
    first = (b["face"][:, 0, 0, 0] * 255).round().long().tolist()  # frame index of each window's first frame
    assert [int(b["mel"][i, 0, 0, 0]) for i in range(12)] == [int(80 * k / 25) for k in first]
    for c in range(3):  # 3 clips x 4 windows, in order
        ks = first[4 * c : 4 * c + 4]
        assert all(b - a >= T for a, b in itertools.pairwise(ks))


def test_multiway_loss_is_two_way_cross_entropy_on_scaled_cosines() -> None:
    from baselines.wav2lip.train import multiway_loss

    torch.manual_seed(0)
    a, v = torch.rand(6, 8), torch.rand(6, 8)
    cos = torch.nn.functional.cosine_similarity(v[:, None], a[None], dim=2) / 0.1
    ref = 0.5 * sum(-torch.log_softmax(m, 1).diagonal().mean() for m in (cos, cos.T))
    assert float(multiway_loss(a, v, 0.1)) == pytest.approx(float(ref), rel=1e-5)
    assert float(multiway_loss(a, a, 0.1)) < float(multiway_loss(a, v, 0.1))


def test_multiway_expert_learns_a_fixed_batch(tmp_path: Path, clips: Wav2LipClips) -> None:
    from baselines.wav2lip.train import multiway_batch

    torch.manual_seed(0)
    tr = Wav2LipTrainer(replace(CFG, expert_loss="multiway", expert_lr=1e-3), tmp_path, train=clips)
    b = multiway_batch(clips, 8, 2, np.random.default_rng(4))
    losses = [tr.expert_step(b) for _ in range(15)]
    assert losses[-1] < 0.7 * losses[0]
    with pytest.raises(Exception, match="expert_loss"):
        Wav2LipTrainer(replace(CFG, expert_loss="hinge"), tmp_path / "x", train=clips)


def test_face_box_crops_before_resizing_and_must_match_on_resume(tmp_path: Path, clips: Wav2LipClips) -> None:
    from baselines.wav2lip.preprocess import box_pixels
    from talkbench.errors import ConfigError

    rng = np.random.default_rng(5)
    frames = rng.integers(0, 255, (2, 128, 128, 3), dtype=np.uint8)
    got = to_wav2lip_faces(frames, (0.25, 0.0, 0.75, 0.5))
    ref = cv2.resize(np.ascontiguousarray(frames[1, 0:64, 32:96]), (96, 96), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    np.testing.assert_array_equal(got[1], ref)
    with pytest.raises(ValueError, match="less than 8 px"):
        box_pixels((0.5, 0.5, 0.52, 0.9), 128, 128)
    cfg = replace(CFG, expert_steps=1, generator_steps=0, face_box=(0.2, 0.06, 0.8, 0.66))
    Wav2LipTrainer(cfg, tmp_path, train=clips).fit(("expert",), progress=False)
    assert Wav2LipTrainer(cfg, tmp_path, train=clips).resume()
    with pytest.raises(ConfigError, match="face box"):
        Wav2LipTrainer(replace(cfg, face_box=None), tmp_path, train=clips).resume()


def test_adapter_pastes_a_face_box_model_into_its_box(tmp_path: Path, clips: Wav2LipClips) -> None:
    """A card with ``face_box``: the model sees that region of the crops, its output lands resized in the
    box, the rest is the pose prior above the mask line and the reference below it."""
    from baselines.wav2lip.adapter import Wav2LipMethod
    from baselines.wav2lip.preprocess import mel_chunks, model_inputs
    from talkbench.types import GenRequest
    from talkbench.weights import save_weights

    box = (0.25, 0.125, 0.75, 0.625)  # pixels 32..96 x 16..80 of 128
    tr = Wav2LipTrainer(CFG, tmp_path, train=clips)
    path = tmp_path / "w.safetensors"
    save_weights(path, tr.gen.state_dict(), {"config": {"width": CFG.width, "face_box": list(box)}, "command": "t"})
    m = Wav2LipMethod()
    m.load(weights=path)
    rng = np.random.default_rng(6)
    truth = rng.integers(0, 255, (5, 128, 128, 3), dtype=np.uint8)
    pose = truth.copy()
    pose[:, 64:] = 0
    ref = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    audio = (rng.standard_normal(5 * 640) * 0.1).astype(np.float32)
    res = m.generate([GenRequest("s", ref, pose, audio)])[0]
    assert res.error is None and res.meta["face_box"] == list(box)
    out = res.frames
    np.testing.assert_array_equal(out[:, :16], pose[:, :16])          # above the box: pose prior
    np.testing.assert_array_equal(out[:, 80:], np.broadcast_to(ref[80:], out[:, 80:].shape))  # below: reference
    np.testing.assert_array_equal(out[:, 16:64, :32], pose[:, 16:64, :32])  # left of the box, upper half

    with torch.no_grad():
        y = m.model(torch.from_numpy(mel_chunks(wav2lip_mel(audio), 5))[:, None],
                    torch.from_numpy(model_inputs(pose, ref, box=box)))
    face = (y.permute(0, 2, 3, 1).numpy() * 255).clip(0, 255).astype(np.uint8)[..., ::-1]
    np.testing.assert_array_equal(out[2, 16:80, 32:96], cv2.resize(np.ascontiguousarray(face[2]), (64, 64)))


@pytest.mark.parametrize("box", ["0.2,0.1,0.8", "0.8,0.1,0.2,0.6", "a,b,c,d", "0,0,1.5,1"])
def test_cli_refuses_a_malformed_face_box(box: str) -> None:
    from click.testing import CliRunner

    from talkbench.cli import cli as cli_main

    r = CliRunner().invoke(cli_main, ["train", "wav2lip", "--face-box", box, "--out", "/nonexistent/never"])
    assert r.exit_code == 2 and "--face-box" in r.output and box in r.output
