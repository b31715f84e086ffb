"""PC-AVS port: official layouts, golden vectors from the official code, loading, audio front-end
(against lws and the official AudioConfig), alignment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.pcavs.model import NETWORKS, PCAVS, PCAVSConfig
from baselines.pcavs.seeded import model_layout, seeded_state_dict

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = ROOT.parent / "shared" / "reference" / "official-layouts"
FIXTURE = Path(__file__).parent / "fixtures" / "pcavs" / "golden.npz"
SPEECH = ROOT.parent / "shared" / "data" / "real" / "speech" / "RD_Radio31_000.wav"


@pytest.fixture(scope="module")
def layout() -> dict:
    p = LAYOUTS / "pcavs_keys.json"
    if not p.exists():
        pytest.skip("official layouts ../shared/reference/official-layouts not present")
    return json.loads(p.read_text())


@pytest.fixture(scope="module")
def seeded(layout) -> PCAVS:
    torch.set_num_threads(1)
    model = PCAVS(PCAVSConfig())
    for net in NETWORKS:
        getattr(model, net).load_state_dict(seeded_state_dict(net, layout[net]), strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def golden() -> dict:
    return dict(np.load(FIXTURE))


def _inputs():
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    imgs = F.interpolate(torch.rand(4, 3, 28, 28, generator=g(7)), size=(224, 224), mode="bilinear", align_corners=False) * 2 - 1
    noise = [torch.randn(2, 1, s, s, generator=g(9)) for s in [7 * 2 ** ((i + 1) // 2) for i in range(11)]]
    return (imgs[:2], imgs[2:], torch.rand(2, 1, 80, 20, generator=g(8)), torch.randn(2, 2560, generator=g(10)),
            torch.randn(2, 512, 7, 7, generator=g(11)), noise)


@pytest.mark.parametrize("net", list(NETWORKS))
def test_state_dict_matches_official_layout(layout, net):
    ours = [(k, list(v.shape)) for k, v in NETWORKS[net](PCAVSConfig()).state_dict().items()]
    assert ours == [(k, list(v)) for k, v in layout[net].items()]


def test_parameter_counts_match_official():
    info = json.loads((LAYOUTS / "pcavs_info.json").read_text()) if (LAYOUTS / "pcavs_info.json").exists() else None
    if info is None:
        pytest.skip("pcavs_info.json not present")
    for net, cls in NETWORKS.items():
        assert sum(p.numel() for p in cls(PCAVSConfig()).parameters()) == info["param_counts"][net]


def test_width_scaled_preset_builds_and_runs():
    cfg = PCAVSConfig(width=0.25, size=112)
    model = PCAVS(cfg).eval()
    with torch.no_grad():
        out = model.generate(torch.rand(1, 3, 112, 112) * 2 - 1, torch.rand(3, 1, 80, 20), torch.rand(3, 3, 112, 112) * 2 - 1,
                             torch.Generator().manual_seed(0))
    assert out.shape == (3, 3, 112, 112)
    assert sum(p.numel() for p in model.parameters()) < 0.1 * 152e6
    assert model_layout(model.G)["style.1.weight"] == [cfg.style_dim, cfg.style_dim]


def test_subnetworks_match_official_golden(seeded, golden):
    ref, pose, spec, style, idmap, noise = _inputs()
    with torch.no_grad():
        vec, vmap, vscore = seeded.V(ref)
        e = seeded.E(pose)
        got = {
            "v_vec": vec, "v_map": vmap[:, :64], "v_score": vscore[:, :256],
            "e_feat": e, "e_mouth": seeded.E.to_mouth(e), "e_headpose": seeded.E.to_headpose(e),
            "e_mouth_embed": seeded.E.mouth_embed(e), "e_headpose_embed": seeded.E.headpose_embed(e),
            "e_class": seeded.E.classifier(e)[:, :256],
            "a_feat": seeded.A_sync(spec), "a_score": seeded.A_sync.fc(seeded.A_sync(spec))[:, :256],
            "g_img": seeded.G(style, idmap, noise)[:, :, ::4, ::4],
        }
    for k, v in got.items():
        np.testing.assert_allclose(v.numpy(), golden[k], atol=1e-4, rtol=0, err_msg=k)


@pytest.mark.slow
def test_full_generation_matches_official_golden(seeded, golden):
    """``AvModel.inference`` run under torch.manual_seed(1234) == our seeded torch.Generator(1234),
    both outputs (reference pose first, then pose-driven), noise included."""
    ref, pose, spec, *_ = _inputs()
    with torch.no_grad():
        fake_ref, fake_driven = seeded.generate(ref, spec, pose, torch.Generator().manual_seed(1234), ref_pose=True)
    np.testing.assert_allclose(fake_ref[:, :, ::4, ::4].numpy(), golden["full_ref_pose"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(fake_driven[:, :, ::4, ::4].numpy(), golden["full_driven"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(fake_driven.mean((1, 2, 3)).numpy(), golden["full_driven_mean"], atol=1e-5, rtol=0)
    # another seed gives other noise, hence other frames: the noise path is live
    with torch.no_grad():
        other = seeded.generate(ref, spec, pose, torch.Generator().manual_seed(99))
    assert (other - fake_driven).abs().max() > 1e-2


# ---------------------------------------------------------------- audio front-end


def _speech(seconds: float = 2.0) -> np.ndarray:
    if not SPEECH.exists():
        pytest.skip("real speech ../shared/data/real/speech not present")
    from talkbench.io.audio import load_audio

    return load_audio(SPEECH)[: int(seconds * 16000)]


def test_mel_matches_official_audioconfig_golden(golden):
    from baselines.pcavs.audio import melspectrogram

    mel = melspectrogram(_speech())
    assert mel.shape == golden["audio_mel"].shape == (207, 80)
    np.testing.assert_allclose(mel, golden["audio_mel"], atol=1e-4, rtol=0)


def test_stft_matches_lws_on_real_speech():
    lws = pytest.importorskip("lws")
    from baselines.pcavs.audio import lws_stft_magnitude, lws_window, normalize_rms

    proc = lws.lws(1280, 160, mode="speech")
    np.testing.assert_allclose(lws_window(), proc.awin, atol=1e-12)
    for n in (32000, 32000 - 37, 16000 + 160):  # lengths on and off the hop grid
        wav = normalize_rms(_speech(3.0)[:n])
        ref = np.abs(proc.stft(wav))
        ours = lws_stft_magnitude(wav)
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, atol=1e-8 * ref.max())


def test_frame_windows_policy():
    from baselines.pcavs.audio import frame_windows

    mel = np.arange(40 * 80, dtype=np.float32).reshape(40, 80) % 97 / 97 + 0.01  # no zero rows
    w = frame_windows(mel, 10)
    assert w.shape == (10, 1, 80, 20)
    # frame t (official window start (t-2)*4) for a frame the official code generates
    np.testing.assert_array_equal(w[5, 0], mel[12:32].T)
    # edge frames: rows before 0 and past the end are silence (0)
    assert (w[0, 0, :, :8] == 0).all() and np.array_equal(w[0, 0, :, 8:], mel[:12].T)
    assert (w[1, 0, :, :4] == 0).all()
    assert (w[9, 0, :, 12:] == 0).all() and np.array_equal(w[9, 0, :, :12], mel[28:40].T)
    # audio shorter than the video: windows past the audio are silence, not an error
    assert (frame_windows(mel, 30)[-1] == 0).all()


def test_silence_is_finite_and_zero():
    from baselines.pcavs.audio import melspectrogram

    mel = melspectrogram(np.zeros(16000, np.float32))
    assert np.isfinite(mel).all() and mel.max() == 0.0


# ---------------------------------------------------------------- alignment


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_similarity_matches_skimage():
    skt = pytest.importorskip("skimage.transform")
    from baselines.pcavs.align import TEMPLATE, similarity

    rng = np.random.default_rng(0)
    for _ in range(5):
        src = TEMPLATE * rng.uniform(0.5, 2) + rng.normal(0, 30, 2) + rng.normal(0, 3, (3, 2))
        t = skt.SimilarityTransform()
        t.estimate(src, TEMPLATE)
        np.testing.assert_allclose(similarity(src, TEMPLATE), t.params[:2], atol=1e-9)


def _landmarks(t: int = 6) -> np.ndarray:
    lm = np.zeros((t, 68, 2))
    for i in range(t):
        lm[i, 36:42] = (40 + i, 50)
        lm[i, 42:48] = (80 + i, 52)
        lm[i, 60:68] = (60 + i, 95 + (i % 2))
    return lm


def test_clip_transforms_put_mouth_on_template_with_smoothing():
    from baselines.pcavs.align import TEMPLATE, clip_transforms, similarity, three_points

    lm = _landmarks()
    ms = clip_transforms(lm)
    pts = three_points(lm)
    lin = similarity(pts.mean(0), TEMPLATE)[:, :2]  # one similarity from the clip-averaged points
    assert all(np.allclose(m[:, :2], lin) for m in ms)
    mapped = [m[:, :2] @ p[2] + m[:, 2] for m, p in zip(ms, pts)]
    np.testing.assert_allclose(mapped[0], TEMPLATE[2], atol=1e-9)  # frame 0: no smoothing, exact
    # frame 1: bias1 = 0.2 bias0 + 0.8 raw1  =>  mapped1 - template = 0.2 * lin @ (p1 - p0)
    np.testing.assert_allclose(mapped[1] - TEMPLATE[2], 0.2 * lin @ (pts[1, 2] - pts[0, 2]), atol=1e-9)
    assert np.abs(mapped[1] - TEMPLATE[2]).max() > 0.1


def test_failed_landmarks_are_interpolated_and_all_failed_is_an_error():
    from baselines.pcavs.align import clip_transforms
    from talkbench.errors import MethodError

    lm = _landmarks()
    full = clip_transforms(lm)
    lm2 = lm.copy()
    lm2[2] = np.nan
    part = clip_transforms(lm2)
    assert np.isfinite(part).all()
    np.testing.assert_allclose(part[0], full[0], atol=3.0)
    with pytest.raises(MethodError, match="no face landmarks"):
        clip_transforms(np.full((3, 68, 2), np.nan))


def test_inverse_alignment_round_trip():
    from baselines.pcavs.align import CANVAS, from_model_output, similarity, to_model_input

    rng = np.random.default_rng(1)
    size = 128
    small = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    import cv2

    frame = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    m = similarity(np.array([[40.0, 45.0], [88.0, 45.0], [64.0, 96.0]]), np.array([[87.0, 59], [137, 59], [112, 120]]))
    x = to_model_input(frame, m)
    assert x.shape == (CANVAS, CANVAS, 3) and x.min() >= -1 and x.max() <= 1
    back, cover = from_model_output(((x + 1) * 127.5).round().astype(np.uint8), m, size)
    assert cover.mean() > 0.3
    inner = cover & np.pad(np.ones((size - 8, size - 8), bool), 4)
    err = np.abs(back.astype(float) - frame.astype(float))[inner].mean()
    assert err < 6.0, err


# ---------------------------------------------------------------- loading

TINY = PCAVSConfig(width=0.125, size=112)


def _official_folder(tmp_path: Path) -> Path:
    """A folder in the official file layout (plain torch.save state dicts) at a tiny width."""
    folder = tmp_path / "demo"
    folder.mkdir()
    for net, cls in NETWORKS.items():
        torch.save(seeded_state_dict(net, model_layout(cls(TINY))), folder / f"latest_net_{net}.pth")
    return folder


def test_official_folder_loads_strictly_with_sha256(tmp_path):
    from baselines.pcavs.checkpoint import load_pcavs, weights_files

    folder = _official_folder(tmp_path)
    model = load_pcavs(folder, TINY)
    want = seeded_state_dict("E", model_layout(NETWORKS["E"](TINY)))
    assert torch.equal(model.E.state_dict()["to_mouth.0.weight"], want["to_mouth.0.weight"])
    files = weights_files(folder)
    assert sorted(files) == sorted(f"latest_net_{n}.pth" for n in NETWORKS)
    import hashlib

    assert files["latest_net_G.pth"]["sha256"] == hashlib.sha256((folder / "latest_net_G.pth").read_bytes()).hexdigest()


def test_missing_file_is_named(tmp_path):
    from baselines.pcavs.checkpoint import load_pcavs
    from talkbench.errors import CheckpointError

    folder = _official_folder(tmp_path)
    (folder / "latest_net_A_sync.pth").unlink()
    with pytest.raises(CheckpointError, match=r"missing latest_net_A_sync\.pth"):
        load_pcavs(folder, TINY)


def test_wrong_network_is_recognised(tmp_path):
    from baselines.pcavs.checkpoint import load_pcavs
    from talkbench.errors import CheckpointError

    folder = _official_folder(tmp_path)
    (folder / "latest_net_V.pth").write_bytes((folder / "latest_net_G.pth").read_bytes())
    with pytest.raises(CheckpointError, match="holds PC-AVS's G network, expected V") as err:
        load_pcavs(folder, TINY)
    assert err.value.path.endswith("latest_net_V.pth")


def test_misshaped_and_code_pickles_refused(tmp_path):
    from baselines.pcavs.checkpoint import load_pcavs
    from talkbench.errors import CheckpointError

    folder = _official_folder(tmp_path)
    with pytest.raises(CheckpointError, match="shape mismatches"):  # tiny files, official-size model
        load_pcavs(folder)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, folder / "latest_net_E.pth")
    with pytest.raises(CheckpointError, match="needs code execution") as err:
        load_pcavs(folder, TINY)
    assert err.value.path.endswith("latest_net_E.pth")


def test_safetensors_round_trip_and_discovery(tmp_path, monkeypatch):
    from baselines.pcavs.checkpoint import find_official, load_pcavs, state_dict_for_export
    from talkbench.weights import save_weights

    model = PCAVS(TINY)
    path = tmp_path / "p.safetensors"
    save_weights(path, state_dict_for_export(model), {"config": {"width": TINY.width, "size": TINY.size}}, dtype=None)
    back = load_pcavs(path)
    assert back.cfg == TINY
    assert torch.equal(back.G.state_dict()["conv1.conv.weight"], model.G.state_dict()["conv1.conv.weight"])
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path))
    assert find_official() is None
    folder = _official_folder(tmp_path)
    folder.rename(tmp_path / "pcavs")
    assert find_official() == tmp_path / "pcavs"


def test_doctor_lists_pcavs_files(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from talkbench.cli import cli

    (tmp_path / "pcavs").mkdir()
    (tmp_path / "pcavs" / "latest_net_G.pth").write_bytes(b"x")
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path))
    res = CliRunner().invoke(cli, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)["official_weights"]
    assert info["pcavs/latest_net_G.pth"] == str(tmp_path / "pcavs" / "latest_net_G.pth")
    assert info["pcavs/latest_net_V.pth"] is None


# ---------------------------------------------------------------- adapter through the CLI


def test_run_cli_with_weights_mask_and_ctx_rows(tmp_path):
    import sqlite3

    from click.testing import CliRunner

    from baselines.pcavs.checkpoint import state_dict_for_export
    from talkbench.cli import cli
    from talkbench.io.video import write_video
    from talkbench.weights import save_weights
    from tests.conftest import talking_frames, tone

    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_weights(weights, state_dict_for_export(PCAVS(TINY)), {"config": {"width": TINY.width, "size": TINY.size}})
    root = tmp_path / "ds"
    root.mkdir()
    write_video(root / "a.mp4", talking_frames(10), tone(0.4))
    res = CliRunner().invoke(cli, ["run", "--methods", "pcavs,pcavs@mask=4,pcavs@ctx=2", "--dataset", "folder", "--root",
                                   str(root), "--split", "all", "--metrics", "psnr", "--weights", f"pcavs={weights}",
                                   "--run-dir", str(tmp_path / "r"), "--no-report"])
    assert res.exit_code == 1, res.output  # the @ctx item is recorded as failed, the run completes
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["methods"]["pcavs"]["weights"]["sha256"]
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as c:
        rows = c.execute("SELECT method, metric, value, error FROM results").fetchall()
    got = {(m, k): (v, e) for m, k, v, e in rows}
    assert got[("pcavs", "psnr")][0] is not None and got[("pcavs@mask=4", "psnr")][0] is not None
    assert got[("pcavs", "psnr")][0] != got[("pcavs@mask=4", "psnr")][0]  # masked audio changes the frames
    assert "cannot honour the context" in got[("pcavs@ctx=2", "__generate__")][1]


def test_adapter_is_deterministic_and_keeps_uncovered_pixels():
    from baselines.pcavs.adapter import PCAVSMethod
    from talkbench.types import GenRequest
    from tests.conftest import talking_frames, tone

    frames = talking_frames(6, size=128)
    pose = frames.copy()
    pose[:, 64:] = 0
    req = GenRequest("x", frames[0], pose, tone(6 / 25))
    method = PCAVSMethod()
    torch.manual_seed(0)
    method.model = PCAVS(TINY).eval()
    a, b = method.generate([req])[0], method.generate([req])[0]
    assert a.error is None and a.frames.shape == (6, 128, 128, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames)
    assert 0.2 < a.meta["coverage"] < 1.0
    # generated pixels differ from the pose prior inside the aligned square
    assert np.abs(a.frames.astype(int) - pose.astype(int))[:, 30:60, 40:90].mean() > 5


# ---------------------------------------------------------------- training


def _tiny_clips(n: int = 3, t: int = 8):
    from baselines.pcavs.train import PCAVSClips
    from tests.conftest import talking_frames, tone

    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48], lm[60:68] = (45, 55), (83, 55), (64, 95)
    clips = []
    for i in range(n):
        frames = talking_frames(t, size=128, dx=0.5 * i)
        clips.append((f"c{i}", *PCAVSClips.prepare(frames, tone(t / 25, freq=150 + 60 * i), TINY.size, lm)))
    return PCAVSClips(clips)


def test_training_steps_reduce_loss_resume_and_export(tmp_path):
    from baselines.pcavs.checkpoint import load_pcavs
    from baselines.pcavs.train import PCAVSTrainConfig, PCAVSTrainer, make_batch, weights_state_dict
    from talkbench.weights import save_weights

    clips = _tiny_clips()
    cfg = PCAVSTrainConfig(width=TINY.width, size=TINY.size, steps=2, batch_size=3, eval_every=2, save_every=2)
    tr = PCAVSTrainer(cfg, tmp_path / "run", "cpu", clips)
    batch = make_batch(clips, 3, np.random.default_rng(0))
    assert batch["spec"].shape == (3, 1, 80, 20) and batch["pose"].shape == (3, 3, 112, 112)
    first = tr.train_step(batch)
    for _ in range(3):
        last = tr.train_step(batch)
    assert last["l1"] < first["l1"]  # the same batch, fitted
    assert set(first) >= {"gan", "feat", "l1", "crossmodal", "contrastive", "d", "sync_acc"}
    tr.step = 0
    tr.fit(progress=False)
    assert (tmp_path / "run" / "state.pt").exists() and tr.step == 2
    again = PCAVSTrainer(PCAVSTrainConfig(**{**cfg.__dict__, "steps": 3}), tmp_path / "run", "cpu", clips)
    assert again.resume() and again.step == 2
    assert torch.equal(again.model.G.conv1.conv.weight, tr.model.G.conv1.conv.weight)
    again.fit(progress=False)
    assert again.step == 3
    out = tmp_path / "p.safetensors"
    save_weights(out, weights_state_dict(again.model),
                 {"config": {"width": cfg.width, "size": cfg.size, "num_classes": cfg.num_classes}})
    assert load_pcavs(out).cfg == PCAVSConfig(width=TINY.width, size=TINY.size, num_classes=cfg.num_classes)
    bad = PCAVSTrainer(PCAVSTrainConfig(**{**cfg.__dict__, "size": 224}), tmp_path / "run", "cpu", clips)
    from talkbench.errors import ConfigError

    with pytest.raises(ConfigError, match="size"):
        bad.resume()


def test_sync_stage_trains_only_e_and_a_sync_then_resumes(tmp_path):
    from baselines.pcavs.train import PCAVSTrainConfig, PCAVSTrainer, make_batch

    clips = _tiny_clips()
    cfg = PCAVSTrainConfig(width=TINY.width, size=TINY.size, steps=0, sync_steps=2, sync_lr=5e-4, batch_size=3,
                           eval_every=2, save_every=1)
    tr = PCAVSTrainer(cfg, tmp_path / "run", "cpu", clips)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    batch = make_batch(clips, 3, np.random.default_rng(0))
    first = tr.sync_train_step(batch)["contrastive"]
    for _ in range(24):  # the loss sits at chance (2 ln 3) for about ten steps, then falls
        last = tr.sync_train_step(batch)["contrastive"]
    assert last < 0.8 * first  # the same batch: each audio window pulled to its own mouth feature
    changed = {k.split(".")[0] for k, v in tr.model.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, before[k])}
    assert changed == {"E", "A_sync"}  # no generator, no identity encoder in this stage
    tr.fit(progress=False)
    assert (tr.sync_step, tr.step) == (2, 0)
    again = PCAVSTrainer(PCAVSTrainConfig(**{**cfg.__dict__, "sync_steps": 3}), tmp_path / "run", "cpu", clips)
    assert again.resume() and again.sync_step == 2
    again.fit(progress=False)
    assert again.sync_step == 3
    rows = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["sync_step"] for r in rows if r.get("stage") == "sync"] == [1, 2, 3]


def test_fit_reports_each_stages_speed_over_its_own_time(tmp_path, monkeypatch):
    import time

    from baselines.pcavs.train import PCAVSTrainConfig, PCAVSTrainer

    cfg = PCAVSTrainConfig(width=TINY.width, size=TINY.size, steps=2, sync_steps=2, batch_size=3,
                           eval_every=100, save_every=100)
    tr = PCAVSTrainer(cfg, tmp_path / "run", "cpu", _tiny_clips())
    sync_step = tr.sync_train_step
    monkeypatch.setattr(tr, "sync_train_step", lambda: (time.sleep(1.0), sync_step())[1])
    monkeypatch.setattr(tr, "evaluate", lambda generate=True: {})
    out = tr.fit(progress=False)
    assert out["sync_steps_per_s"] < 1.0  # 2 steps that each sleep 1 s
    # 2 joint steps (milliseconds each on the tiny model) over their own time, not over the whole
    # fit's seconds, which hold the sync stage's 2 s of sleep.
    assert out["steps_per_s"] > 1.5 * 2 / out["seconds"]


def test_contrastive_is_the_official_inverse_distance_softmax_with_one_side_detached():
    # Official models/networks/loss.py SoftmaxContrastiveLoss, written out as it computes: row i of the
    # first argument against every row j of the second, logits 1 / L2 distance of normalised features.
    from baselines.pcavs.train import contrastive

    def official(f1, f2):
        f1, f2 = F.normalize(f1, p=2, dim=1), F.normalize(f2, p=2, dim=1)
        expanded = f1.expand(f1.size(0), f1.size(0), f1.size(1)).transpose(0, 1)
        return F.cross_entropy(1.0 / torch.norm(expanded - f2, p=2, dim=2), torch.arange(len(f1)))

    g = torch.Generator().manual_seed(3)
    v = torch.randn(6, 16, generator=g, requires_grad=True)
    a = torch.randn(6, 16, generator=g, requires_grad=True)
    loss, acc = contrastive(v, a)
    torch.testing.assert_close(loss, official(v.detach(), a) + official(a.detach(), v), rtol=1e-5, atol=1e-6)
    loss.backward()
    va = v.detach().clone().requires_grad_()
    official(a.detach(), va).backward()  # the only term that reaches the visual features
    torch.testing.assert_close(v.grad, va.grad, rtol=1e-5, atol=1e-7)
    same = torch.randn(5, 16, generator=g)
    assert contrastive(same, same * 2.0)[1] == 1.0 and 0.0 <= acc <= 1.0


def test_adapter_short_audio_silence_and_no_face():
    from baselines.pcavs.adapter import PCAVSMethod
    from talkbench.types import GenRequest
    from tests.conftest import talking_frames, tone

    frames = talking_frames(6, size=128)
    pose = frames.copy()
    pose[:, 64:] = 0
    method = PCAVSMethod()
    torch.manual_seed(0)
    method.model = PCAVS(TINY).eval()
    short = method.generate([GenRequest("s", frames[0], pose, tone(2 / 25))])[0]  # audio for 2 of 6 frames
    silent = method.generate([GenRequest("z", frames[0], pose, np.zeros(6 * 640, np.float32))])[0]
    assert short.error is None and short.frames.shape == (6, 128, 128, 3)
    assert silent.error is None and silent.frames.shape == (6, 128, 128, 3)
    flat = np.full((6, 128, 128, 3), 90, np.uint8)  # no face anywhere: a per-item error, not an exception
    none = method.generate([GenRequest("n", flat[0], flat, tone(6 / 25))])[0]
    assert none.frames is None and "landmarks" in none.error


def test_train_cli_exports_a_loadable_checkpoint_with_card(tmp_path):
    from click.testing import CliRunner

    from baselines.pcavs.checkpoint import load_pcavs
    from talkbench.cli import cli
    from talkbench.io.video import write_video
    from talkbench.weights import read_card
    from tests.conftest import talking_frames, tone

    root = tmp_path / "ds"
    root.mkdir()
    for i in range(2):
        write_video(root / f"c{i}.mp4", talking_frames(8, dx=0.5 * i), tone(8 / 25, freq=150 + 80 * i))
    out, export = tmp_path / "run", tmp_path / "p.safetensors"
    args = ["train", "pcavs", "--dataset", "folder", "--root", str(root), "--split", "all", "--val-split", "all",
            "--steps", "1", "--batch-size", "2", "--device", "cpu", "--out", str(out), "--export", str(export)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    card = read_card(export)
    assert card["steps"] == 1 and card["config"]["width"] == 0.125 and card["config"]["size"] == 112
    assert "silence" in card["edge_frames"] and any("VGG" in d for d in card["deviations"])
    # a folder dataset has no exact landmarks: said, and on the card, not silently aligned another way
    assert card["config"]["sync_align"] == "per-frame" and card["data"]["clips_aligned_per_frame"] == 0
    assert "no exact per-frame landmarks" in res.output
    assert load_pcavs(export).cfg == PCAVSConfig(width=0.125, size=112, num_classes=8)
    res = CliRunner().invoke(cli, [*args[:11], "2", *args[12:], "--resume"])  # --steps 2, resumed
    assert res.exit_code == 0, res.output
    assert "resumed at step 1" in res.output and read_card(export)["steps"] == 2
    # a setting the card records once cannot change halfway through a run
    res = CliRunner().invoke(cli, [*args[:11], "3", *args[12:], "--resume", "--sync-align", "first-frame"])
    assert res.exit_code == 2 and "sync_align='per-frame'" in res.output, res.output
    assert len(read_card(export)["commands"]) == 2
    # The sync stage through the CLI: E and A_sync alone first, then the joint step; both on the card.
    res = CliRunner().invoke(cli, [*args[:-4], "--out", str(tmp_path / "run2"), "--export", str(export),
                                   "--sync-steps", "2", "--eval-every", "2"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (tmp_path / "run2" / "log.jsonl").read_text().splitlines()]
    assert [(r.get("stage"), r.get("sync_step", r.get("step"))) for r in rows] == [("sync", 1), ("sync", 2), (None, 1)]
    assert "val_sync_acc" in rows[1] and "val_l1" not in rows[1]  # no generator in the sync stage's evaluation
    assert read_card(export)["config"]["sync_steps"] == 2 and read_card(export)["steps"] == 1


def test_mouth_frames_are_aligned_per_frame_while_the_generator_keeps_one_transform():
    """With per-frame landmarks, E's mouth input keeps the mouth on the template point as the face moves
    (the official data's alignment); the generator's frames use the first frame's transform and move."""
    from baselines.pcavs.train import PCAVSClips, make_batch

    t = 6
    frames = np.full((t, 128, 128, 3), 230, np.uint8)
    lms = np.zeros((t, 68, 2))
    for i in range(t):
        dx = 3 * i
        frames[i, 92:99, 61 + dx : 68 + dx] = (255, 0, 0)  # a red mouth centred on (64 + dx, 95)
        lms[i, 36:42], lms[i, 42:48], lms[i, 60:68] = (45 + dx, 55), (83 + dx, 55), (64 + dx, 95)
    audio = np.zeros(t * 640, np.float32)

    def dark_x(img: np.ndarray) -> float:
        ys, xs = np.nonzero((img[..., 0] > 150) & (img[..., 1] < 100))
        return float(xs.mean())

    full, _, _, mouth = PCAVSClips.prepare(frames, audio, 112, lms[0], lms)
    fx, mx = [dark_x(f) for f in full], [dark_x(f) for f in mouth]
    assert np.ptp(mx) < 1.5  # held on the template's mouth point (up to the official 0.2/0.8 smoothing's lag)
    assert fx[-1] - fx[0] > 10  # 15 px of motion in the crop, scaled into the model crop
    assert PCAVSClips.prepare(frames, audio, 112, lms[0])[3] is None
    mel = np.zeros((t * 4, 80), np.float32)
    for per_frame, source in ((mouth, mouth), (None, full)):  # the batch's mouth image: the per-frame one, if any
        clips = PCAVSClips([("a", full, full, mel, per_frame)])
        assert clips.per_frame == (per_frame is not None)
        b = make_batch(clips, 1, np.random.default_rng(3))
        k = [i for i in range(t) if torch.equal(b["target"][0], torch.from_numpy(full[i]).permute(2, 0, 1) / 127.5 - 1)]
        assert torch.equal(b["mouth"][0], torch.from_numpy(source[k[0]]).permute(2, 0, 1).float() / 127.5 - 1)


def test_mouth_box_is_centred_on_the_aligned_mouth_and_weights_the_loss(tmp_path):
    from baselines.pcavs.train import PCAVSClips, PCAVSTrainConfig, PCAVSTrainer, make_batch, mouth_box

    frame = np.full((1, 128, 128, 3), 230, np.uint8)
    frame[0, 93:98, 62:67] = (255, 0, 0)  # the inner mouth, centred on (64, 95)
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48], lm[60:68] = (45, 55), (83, 55), (64, 95)
    full = PCAVSClips.prepare(frame, np.zeros(640, np.float32), 112, lm)[0][0]
    ys, xs = np.nonzero((full[..., 0] > 150) & (full[..., 1] < 100))
    rows, cols = mouth_box(112)
    assert abs(ys.mean() - (rows.start + rows.stop - 1) / 2) <= 1.5 and abs(xs.mean() - (cols.start + cols.stop - 1) / 2) <= 1.5

    clips = _tiny_clips()
    batch = make_batch(clips, 3, np.random.default_rng(0))
    cfg = PCAVSTrainConfig(width=TINY.width, size=TINY.size, steps=1, batch_size=3, mouth_weight=5.0)
    tr = PCAVSTrainer(cfg, tmp_path / "run", "cpu", clips)
    state = {k: v.clone() for k, v in tr.model.state_dict().items()}
    noise = tr.noise.get_state()
    tr.model.train()  # as train_step: batch statistics, and E's dropout drawn from the same seed
    torch.manual_seed(5)
    with torch.no_grad():
        fake = tr.forward(batch)["fake"]
    r, c = mouth_box(fake.shape[-1])
    want = (fake - batch["target"]).abs()[..., r, c].mean().item()
    tr.model.load_state_dict(state)
    tr.noise.set_state(noise)
    torch.manual_seed(5)
    assert tr.train_step(batch)["mouth"] == pytest.approx(want, rel=1e-5)
    assert "mouth" not in PCAVSTrainer(PCAVSTrainConfig(**{**cfg.__dict__, "mouth_weight": 0.0}), tmp_path / "b", "cpu",
                                       clips).train_step(batch)
