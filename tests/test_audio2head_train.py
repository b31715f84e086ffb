"""Audio2Head training: equivariance convention, synthetic head pose mapping, resumable stages, CLI export."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from baselines.audio2head.preprocess import denormalise_pose
from baselines.audio2head.train import (
    Audio2HeadTrainConfig,
    Audio2HeadTrainer,
    TrainClip,
    pose_maps,
    random_affine,
    synth_head_pose,
    to_images,
    warp_affine,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _blob(x: float, y: float, size: int = 64) -> torch.Tensor:
    g = torch.linspace(-1, 1, size)
    img = torch.exp(-((g[None, :] - x) ** 2 + (g[:, None] - y) ** 2) / 0.01)
    return img.expand(1, 3, size, size).clone()


def _centre(img: torch.Tensor) -> np.ndarray:
    w = img[0, 0] / img[0, 0].sum()
    g = torch.linspace(-1, 1, img.shape[-1])
    return np.array([float((w.sum(0) * g).sum()), float((w.sum(1) * g).sum())])


def test_affine_warp_convention_matches_the_equivariance_mapping() -> None:
    """The loss maps keypoints found in the warped frame by A z + b into the driving frame."""
    a, b = random_affine(1, torch.Generator().manual_seed(3), sigma=0.1)
    p = np.array([0.3, -0.2])
    warped = warp_affine(_blob(*p), a, b)
    z = _centre(warped)
    mapped = a[0].numpy() @ z + b[0].numpy()
    np.testing.assert_allclose(mapped, p, atol=0.03)


def test_synth_head_pose_follows_the_corpus_motion(tmp_path: Path) -> None:
    from talkbench.datasets.synth.corpus import SPECS, head_motion

    video = tmp_path / "00001.mp4"
    (tmp_path / "00001.meta.json").write_text(json.dumps({"plan": {"motion_seed": 77}}))
    n, src = 50, SPECS["synth-lrs2"].size
    windows = np.tile([10.0, 5.0, 150.0, 145.0], (n, 1))
    poses = synth_head_pose(video, n, windows, "synth-lrs2")
    rot, trans = denormalise_pose(poses)
    angle, dx, dy, scale = head_motion(np.random.default_rng(77), n)
    np.testing.assert_allclose(rot[:, 2], angle, atol=1e-5)
    np.testing.assert_allclose(rot[:, :2], 0, atol=1e-5)
    # a bigger face is nearer: depth inversely proportional to scale
    np.testing.assert_allclose(trans[:, 2] * scale, (trans[:, 2] * scale)[0], rtol=1e-4)
    # x moves with dx: one source pixel = 256/140 canvas pixels, back-projected at depth tz
    du = np.diff(dx * src * 256 / 140)
    np.testing.assert_allclose(np.diff(trans[:, 0] * 233.333 / trans[:, 2]), du, atol=0.05)
    maps = pose_maps(poses, 45)
    assert maps.shape == (64, 256, 256) and np.array_equal(maps[10], maps[63])  # last pose past the end


def _clips(n: int = 2, frames: int = 40) -> list[TrainClip]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        small = rng.integers(0, 255, (frames, 8, 8, 3)).astype(np.float32)
        f = np.stack([cv2.resize(x, (64, 64), interpolation=cv2.INTER_CUBIC) for x in small]).clip(0, 255)
        poses = np.clip(rng.normal(0, 0.2, (frames, 6)), -1, 1).astype(np.float32)
        out.append(TrainClip(f"c{i}", f.astype(np.uint8), rng.normal(0, 3, (frames, 4, 41)).astype(np.float32), poses))
    return out


CFG = Audio2HeadTrainConfig(width=0.0625, kp_steps=2, audio2kp_steps=1, pose_steps=3, batch_size=2, pose_frames=8,
                            eval_every=100)


def test_stages_train_and_resume(tmp_path: Path) -> None:
    clips = _clips()
    tr = Audio2HeadTrainer(CFG, tmp_path, train=clips)
    before = {k: v.clone() for k, v in tr.nets["audio2pose"].state_dict().items()}
    m = tr.fit(("kp", "pose"), log=lambda s: None)
    assert m["kp_steps"] == 2 and m["pose_steps"] == 3 and np.isfinite(m["kp_val_loss"])
    after = tr.nets["audio2pose"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())
    tr2 = Audio2HeadTrainer(CFG, tmp_path, train=clips)
    assert tr2.resume() and tr2.step == {"kp": 2, "audio2kp": 0, "pose": 3}
    for k, v in tr.nets["generator"].state_dict().items():
        assert torch.equal(v, tr2.nets["generator"].state_dict()[k])
    with pytest.raises(Exception, match="width"):
        Audio2HeadTrainer(Audio2HeadTrainConfig(width=0.25), tmp_path).resume()


def test_time_budget_ends_a_stage(tmp_path: Path) -> None:
    tr = Audio2HeadTrainer(replace(CFG, pose_steps=1000, eval_every=1), tmp_path, train=_clips())
    m = tr.fit(("pose",), budget_s={"pose": 0.5}, log=lambda s: None)
    assert 1 <= m["pose_steps"] < 1000


def test_pose_rows_are_offset_by_one_frame(tmp_path: Path) -> None:
    """Row t (audio up to t - 1) is trained against frame t: row 0, from the image alone, against frame 0."""
    clips = _clips(1)
    tr = Audio2HeadTrainer(CFG, tmp_path, train=clips)
    b = tr.pose_batch(clips, np.random.default_rng(5))
    assert b["target"].shape == (2, 8, 6) and b["audio"].shape == (2, 8, 4, 41)
    c = clips[0]
    for img, audio, target in zip(b["img"], b["audio"], b["target"], strict=True):
        s = int(np.flatnonzero((c.blocks == audio[0].numpy()).all(axis=(1, 2)))[0])
        np.testing.assert_array_equal(target.numpy(), c.poses[s : s + 8])
        assert torch.equal(img, to_images(c.frames[s : s + 1])[0])  # the image is frame s: row 0's target


@pytest.mark.slow
def test_audio2kp_stage_step(tmp_path: Path) -> None:
    tr = Audio2HeadTrainer(CFG, tmp_path, train=_clips())
    row = tr.train_step("audio2kp")
    assert np.isfinite(row["loss"]) and row["value"] > 0


def test_cli_trains_kp_stage_and_exports(tmp_path: Path, talking_clip: Path) -> None:
    import shutil

    from baselines.audio2head.checkpoint import load_audio2head
    from talkbench.cli import cli
    from talkbench.weights import read_card

    root = tmp_path / "ds"
    root.mkdir()
    shutil.copy(talking_clip, root / "a.mp4")
    export = tmp_path / "a2h.safetensors"
    res = CliRunner().invoke(cli, ["train", "audio2head", "--stage", "kp", "--dataset", "folder", "--root", str(root),
                                   "--split", "all", "--val-split", "none", "--width", "0.0625", "--kp-steps", "2",
                                   "--batch-size", "2", "--pose-frames", "8", "--out", str(tmp_path / "run"), "--export", str(export),
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    card = read_card(export)
    assert card["config"]["width"] == 0.0625 and card["stage_steps"]["kp"] == 2 and card["deviations"]
    assert "talkbench train audio2head" in card["command"]
    nets = load_audio2head(export)
    assert set(nets) == {"audio2pose", "audio2kp", "generator", "kp_detector"}


def test_mouth_boxes_masks_and_the_mouth_term(tmp_path: Path) -> None:
    from talkbench.faces.mouth import box_mask, mouth_boxes

    lm = np.zeros((1, 68, 2), np.float32)
    lm[0, 48:68] = [[40, 90], [88, 90], [64, 80], [64, 100]] * 5  # mouth spans x 40..88, y 80..100 at 128 px
    box = mouth_boxes(lm, scale=2.0, size=256)[0]  # 128-px landmarks in 256-px frames, grown a quarter each side
    np.testing.assert_allclose(box, [80 - 24, 160 - 10, 176 + 24, 200 + 10])
    m = box_mask(box[None], 256)[0, 0]
    rows, cols = np.nonzero(m.numpy())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (150, 209, 56, 199)

    clips = [replace(c, mouth=np.tile([[8.0, 8.0, 40.0, 24.0]], (len(c.frames), 1))) for c in _clips()]
    tr = Audio2HeadTrainer(replace(CFG, mouth_weight=3.0), tmp_path, train=clips)
    src, drv, mask = tr.kp_batch(clips, np.random.default_rng(1))
    assert mask is not None and mask.shape == (2, 1, 256, 256) and mask[0, 0, 100, 100] == 0
    g = torch.Generator().manual_seed(0)
    tr.nets["kp_detector"].eval()
    tr.nets["generator"].eval()
    with torch.no_grad():
        out = tr.kp_losses(src, drv, mask, g)
        pred = tr.nets["generator"](src, tr.nets["kp_detector"](drv), tr.nets["kp_detector"](src))["prediction"]
    inside = (pred - drv).abs()[..., 8:24, 8:40]  # pixel centres x 8.5..39.5, y 8.5..23.5
    assert float(out["mouth"]) == pytest.approx(float(inside.mean()), rel=1e-5)
    official = tr.kp_losses(src, drv, None, torch.Generator().manual_seed(0))
    assert "mouth" not in official
    assert float(out["loss"] - official["loss"]) == pytest.approx(3.0 * float(out["mouth"]), rel=1e-4)
    assert Audio2HeadTrainer(CFG, tmp_path / "b", train=clips).kp_batch(clips, np.random.default_rng(1))[2] is None


def test_the_card_lists_the_mouth_term_that_trained_the_weights_across_resumes(tmp_path: Path) -> None:
    """A later stage resumed without --mouth-weight still exports a card naming the kp steps that had it."""
    from talkbench.cli import cli
    from talkbench.datasets.synth.corpus import build_corpus
    from talkbench.weights import read_card

    root = build_corpus("synth-lrs2", tmp_path / "c", clips=2, progress=False, workers=1, splits=("test",))
    base = ["train", "audio2head", "--dataset", "synth-lrs2", "--root", str(root), "--split", "test",
            "--val-split", "none", "--width", "0.0625", "--batch-size", "2", "--pose-frames", "8", "--eval-every", "1",
            "--out", str(tmp_path / "run"), "--device", "cpu"]
    res = CliRunner().invoke(cli, [*base, "--stage", "kp", "--kp-steps", "2", "--mouth-weight", "5"])
    assert res.exit_code == 0, res.output
    export = tmp_path / "a2h.safetensors"
    res = CliRunner().invoke(cli, [*base, "--stage", "pose", "--pose-steps", "1", "--resume", "--export", str(export)])
    assert res.exit_code == 0, res.output
    terms = [d for d in read_card(export)["deviations"] if "mouth box" in d]
    assert terms == ["kp steps 0..2: + 5.0 x L1 on the driving frame's mouth box (exact landmarks, points 48..67 grown 25%)"]
