"""ATVGnet: preprocessing (MFCC windows, the face pipeline), training pieces, export -> adapter, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from baselines.atvgnet.landmarks import fit_space, identity_normalised, load_space
from baselines.atvgnet.preprocess import (
    align_reference,
    align_to_template,
    mfcc_windows,
    paste_back,
    similarity,
)
from baselines.atvgnet.train import (
    ATVGClips,
    ATVGTrainConfig,
    ATVGTrainer,
    at_batch,
    mouth_box_mask,
    mouth_weights,
    vg_batch,
)
from talkbench.cli import cli
from tests.conftest import portrait_frame

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mfcc_windows_are_the_official_loop() -> None:
    import python_speech_features as psf

    rng = np.random.default_rng(0)
    speech = (0.1 * rng.standard_normal(16000)).astype(np.float32)  # 25 video frames
    ours = mfcc_windows(speech, 25)
    # demo.py: pad 1920 zeros on both ends, mfcc(winstep=0.01), windows (ind-3)*4 .. (ind+4)*4 from ind = 3
    padded = np.append(np.insert(speech.astype(np.float64), 0, np.zeros(1920)), np.zeros(1920))
    m = psf.mfcc(padded, 16000, winstep=0.01)
    official, ind = [], 3
    while ind <= int(m.shape[0] / 4) - 4:
        official.append(m[(ind - 3) * 4 : (ind + 4) * 4, 1:])
        ind += 1
    assert ours.shape == (25, 28, 12) and len(official) == 24  # the official loop stops one frame short
    np.testing.assert_allclose(ours[:24], np.stack(official), rtol=1e-4, atol=1e-3)


def _dlib_points(rgb: np.ndarray) -> np.ndarray:
    from talkbench.faces.models import hog_detector, shape_predictor

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    rect = hog_detector()(gray, 1)[0]
    s = shape_predictor("landmarks68")(gray, rect)
    return np.array([(s.part(i).x, s.part(i).y) for i in range(68)], np.float64)


def test_face_pipeline_aligns_to_the_template_and_maps_back() -> None:
    ref = protocol_crop()
    pts = _dlib_points(ref)
    # a template = the face's own landmarks moved by a known similarity (in the 163-px crop's frame)
    ang, sc = np.deg2rad(8.0), 0.9
    rot = sc * np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    template = (pts - pts.mean(0)) @ rot.T + np.array([65.0, 70.0])
    al = align_reference(ref, template, template)
    assert al.image.shape == (128, 128, 3) and al.image.dtype == np.uint8
    # the re-detected landmarks sit where the template puts them (minus the crop's 1-px offset)
    err = np.linalg.norm(al.landmarks[27:45] - (template[27:45] - 1.0), axis=1)
    assert np.median(err) < 3.0, err
    # to_aligned maps input pixels to the aligned crop: the input's landmarks land on the template
    mapped = pts @ al.to_aligned[:, :2].T + al.to_aligned[:, 2]
    np.testing.assert_allclose(mapped[27:45], template[27:45] - 1.0, atol=1.5)
    # pasting the aligned crop back over black reproduces the input inside the covered region
    back = paste_back(al.image[None], np.zeros((1, *ref.shape), np.uint8), al.to_aligned, al.valid)[0]
    inner = (back.sum(-1) > 0)
    inner = cv2.erode(inner.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert inner.mean() > 0.4
    diff = np.abs(back[inner].astype(float) - ref[inner].astype(float)).mean()
    assert diff < 12.0, diff


def protocol_crop() -> np.ndarray:
    """The portrait cut as the protocol cuts faces (detector box x1.5, shifted down 0.1), 128 px."""
    from talkbench.faces.crop import crop_frames, square_boxes
    from talkbench.faces.detect import FaceDetector

    img = portrait_frame(256)
    box = FaceDetector(upsample=1, max_side=0).detect(img)[0][:4]
    return crop_frames(img[None], square_boxes(np.asarray(box, np.float64)[None]), 128)[0]


def test_face_pipeline_failures_are_named() -> None:
    from baselines.atvgnet.preprocess import FacePipelineError

    blank = np.full((128, 128, 3), 127, np.uint8)
    tpl = np.zeros((68, 2))
    with pytest.raises(FacePipelineError, match="no face in the reference"):
        align_reference(blank, tpl, tpl)
    with pytest.raises(FacePipelineError, match="leaves the frame"):
        align_reference(protocol_crop(), tpl, tpl, pad=0.0)  # tight crop, official square, no padding
    with pytest.raises(FacePipelineError, match="degenerate"):
        similarity(np.zeros((18, 2)), np.ones((18, 2)))


def test_training_alignment_takes_head_motion_out_of_every_frame() -> None:
    """As the official data preparation warps every frame to the template, a head that turns and moves
    while the mouth opens leaves only the mouth's motion in the aligned landmarks and frames (aligned
    once by the first frame, the rigid motion stayed and outweighed the mouth in the PCA)."""
    ref = portrait_frame(128)
    pts = _dlib_points(ref).astype(np.float64)
    tpl = pts + 1.0
    frames, lms, opening = [], [], []
    for t in range(6):
        rot = cv2.getRotationMatrix2D((64.0, 64.0), 4.0 * t, 1.0 + 0.03 * t)
        rot[:, 2] += (2.0 * t, -1.5 * t)
        lm = pts.copy()
        lm[57, 1] += 1.5 * t  # the mouth opens in the face's own frame
        frames.append(cv2.warpAffine(ref, rot, (128, 128)))
        lms.append(lm @ rot[:, :2].T + rot[:, 2])
        opening.append(1.5 * t)
    out, aligned, ms = align_to_template(np.stack(frames), np.stack(lms), tpl)
    assert out.shape == (6, 128, 128, 3) and ms.shape == (6, 2, 3)
    np.testing.assert_allclose(aligned[:, 27:45], np.repeat(pts[None, 27:45], 6, 0), atol=1e-3)
    np.testing.assert_allclose(aligned[:, 57, 1] - pts[57, 1], opening, atol=1e-3)
    # the frames follow the same transforms: the last aligned frame shows the reference face back in place
    inner = (slice(40, 90), slice(30, 100))
    assert np.abs(out[-1][inner].astype(float) - ref[inner].astype(float)).mean() < 6.0


def _bank(n: int = 3, t: int = 24) -> ATVGClips:
    """Aligned clips from a real portrait with its mouth points moving, audio that follows them."""
    ref = portrait_frame(128)
    pts = _dlib_points(ref)
    rng = np.random.default_rng(0)
    clips = []
    for i in range(n):
        open_ = 0.5 + 0.5 * np.sin(np.arange(t) * (0.5 + 0.2 * i))
        lm = np.repeat(pts[None], t, 0)
        lm[:, 57, 1] += 4 * open_
        lm[:, 66, 1] += 3 * open_
        audio = np.concatenate([o * 0.2 * rng.standard_normal(640) for o in open_]).astype(np.float32)
        clips.append((f"c{i}", np.repeat(ref[None], t, 0), identity_normalised(lm, pts + 1.0), mfcc_windows(audio, t)))
    return ATVGClips(clips, pts + 1.0)


CFG = ATVGTrainConfig(at_width=0.0625, vg_width=0.0625, n_blocks=1, frames=4, at_batch=4, vg_batch=2, at_steps=3,
                      vg_steps=2, eval_every=100, save_every=100)


def test_batches_and_recipe_pieces() -> None:
    bank = _bank()
    space = fit_space(np.concatenate([c[2] for c in bank.clips]), bank.template)
    rng = np.random.default_rng(1)
    a = at_batch(bank, space, 4, 4, rng)
    assert a["example"].shape == (4, 6) and a["target"].shape == (4, 4, 6) and a["mfcc"].shape == (4, 4, 28, 12)
    v = vg_batch(bank, space, 2, 4, rng)
    assert v["image"].shape == (2, 3, 128, 128) and v["frames"].shape == (2, 4, 3, 128, 128)
    assert v["landmarks"].shape == (2, 4, 136) and v["image"].min() >= -1 and v["image"].max() <= 1
    w = mouth_weights()
    assert w.sum() == 136 - 20 + 20 * 100 and w[97] == 100 and w[96] == 1 and w[135] == 100
    # the mouth moves along the basis' first component (it holds all the variance here)
    lm = np.concatenate([c[2] for c in bank.clips])
    coefs = space.to_coefs(space.points(lm))
    assert coefs[:, 0].std() > 10 * coefs[:, 1:].std()


def test_landmark_scale_scales_the_space_not_its_shape() -> None:
    bank = _bank()
    lm = np.concatenate([c[2] for c in bank.clips])
    one, five = fit_space(lm, bank.template), fit_space(lm, bank.template, scale=5.0)
    assert five.scale == 5.0 and np.allclose(five.mean, 5 * one.mean, atol=1e-5)
    # the bank's clips move along one direction only: the first component is the shape that matters
    np.testing.assert_allclose(np.abs(five.components[:, 0]), np.abs(one.components[:, 0]), atol=1e-4)
    c1, c5 = one.to_coefs(one.points(lm))[:, 0], five.to_coefs(five.points(lm))[:, 0]
    np.testing.assert_allclose(np.abs(c5), 5 * np.abs(c1), rtol=1e-3, atol=1e-5)
    # a round trip through the space is exact in either
    np.testing.assert_allclose(five.from_coefs(five.to_coefs(five.points(lm))), five.points(lm), atol=1e-4)


def test_mouth_weight_adds_the_mouth_box_l1_and_only_then(tmp_path: Path) -> None:
    import copy
    from dataclasses import replace

    bank = _bank()
    mask = mouth_box_mask(bank.template)[0, 0, 0].numpy()
    pts = bank.template[48:68] - 1.0
    rows, cols = np.nonzero(mask)
    # the box holds every mouth point and is the bounding box grown by a quarter on each side (+-1 px rounding)
    w, h = np.ptp(pts[:, 0]), np.ptp(pts[:, 1])
    assert rows.min() <= pts[:, 1].min() and rows.max() >= pts[:, 1].max()
    assert cols.min() <= pts[:, 0].min() and cols.max() >= pts[:, 0].max()
    assert abs((cols.max() - cols.min()) - 1.5 * w) <= 2 and abs((rows.max() - rows.min()) - 1.5 * h) <= 2
    assert mask.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)

    official = ATVGTrainer(CFG, tmp_path / "a", train=bank)
    official.fit_basis()
    assert "loss_mouth" not in official.vg_step()
    tr = ATVGTrainer(replace(CFG, mouth_weight=5.0), tmp_path / "b", train=bank)
    tr.fit_basis()
    rng, vg = copy.deepcopy(tr.rng), copy.deepcopy(tr.vg)
    b = vg_batch(bank, tr.space, CFG.vg_batch, CFG.frames, rng)
    vg.train()
    torch.manual_seed(7)  # the residual blocks' dropout: the same draws in both forwards
    with torch.no_grad():
        fake = vg(b["image"], b["landmarks"], b["example"])[0]
    err = (fake - b["frames"]).abs().numpy()
    want = err[..., mask.astype(bool)].mean()
    torch.manual_seed(7)
    got = tr.vg_step()["loss_mouth"]
    assert got == pytest.approx(want, rel=1e-5)


def test_the_mouth_term_record_survives_a_resume_without_it(tmp_path: Path) -> None:
    from dataclasses import replace

    bank = _bank()
    tr = ATVGTrainer(replace(CFG, at_steps=0, vg_steps=2, mouth_weight=5.0), tmp_path / "run", train=bank)
    tr.fit_basis()
    tr.fit(("vgnet",))
    again = ATVGTrainer(replace(CFG, at_steps=0, vg_steps=3), tmp_path / "run", train=bank)
    assert again.resume()
    again.fit(("vgnet",))
    assert again.steps["vgnet"] == 3
    assert again.mouth_terms == [{"stage": "vgnet", "weight": 5.0, "steps": [0, 2]}]


@pytest.mark.slow  # ~20 s on a loaded 2-core machine
def test_train_resume_export_and_generate(tmp_path: Path) -> None:
    from baselines.atvgnet.checkpoint import load_atvgnet
    from talkbench.methods import METHODS
    from talkbench.training import export_weights
    from talkbench.types import GenRequest, lower_half_masked

    bank = _bank()
    tr = ATVGTrainer(CFG, tmp_path / "run", train=bank)
    tr.fit_basis()
    tr.fit(("atnet", "vgnet"))
    assert tr.steps == {"atnet": 3, "vgnet": 2} and (tmp_path / "run" / "state.pt").exists()
    again = ATVGTrainer(CFG, tmp_path / "run", train=bank)
    assert again.resume() and again.steps == tr.steps
    for k, v in tr.vg.state_dict().items():
        assert torch.equal(v, again.vg.state_dict()[k]), k
    again.space.save(tmp_path / "m-basis.npz")
    export_weights(tmp_path / "m.safetensors", again.export_state_dict(), command="test", data={}, seed=0,
                   config={"at_width": CFG.at_width, "vg_width": CFG.vg_width, "n_blocks": 1, "basis": "m-basis.npz",
                           "exaggerate": False})
    net = load_atvgnet(tmp_path / "m.safetensors")
    assert net.space.kind == "motion" and not net.exaggerate
    np.testing.assert_allclose(net.space.components, load_space(tmp_path / "run" / "basis.npz").components)

    m = METHODS.get("atvgnet")()
    m.load("cpu", tmp_path / "m.safetensors")
    ref = portrait_frame(128)
    frames = np.repeat(ref[None], 10, 0)
    audio = (0.1 * np.random.default_rng(0).standard_normal(10 * 640)).astype(np.float32)
    ok, bad = m.generate([GenRequest("ok", ref, lower_half_masked(frames), audio),
                          GenRequest("bad", np.zeros_like(ref), lower_half_masked(frames), audio)])
    assert ok.ok and ok.frames.shape == (10, 128, 128, 3) and ok.frames.dtype == np.uint8
    assert ok.meta["landmark_space"] == "motion"
    assert not bad.ok and "no face" in bad.error
    assert m.weights_info()["basis"]["sha256"]
    (tmp_path / "m-basis.npz").unlink()
    with pytest.raises(Exception, match="m-basis.npz"):
        load_atvgnet(tmp_path / "m.safetensors")


def test_doctor_lists_the_official_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "atvgnet").mkdir()
    (tmp_path / "atvgnet" / "generator_23.pth").write_bytes(b"x")
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path))
    res = CliRunner().invoke(cli, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    w = json.loads(res.output)["official_weights"]
    assert w["atvgnet/generator_23.pth"] == str(tmp_path / "atvgnet" / "generator_23.pth")
    assert w["atvgnet/atnet_lstm_18.pth"] is None and "atvgnet/basics/U_lrw1.npy" in w


def test_train_cli_is_registered() -> None:
    res = CliRunner().invoke(cli, ["train", "atvgnet", "--help"])
    assert res.exit_code == 0 and "--stage" in res.output and "--budget-min" in res.output
