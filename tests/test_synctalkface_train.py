"""SyncTalkFace training: batches in the authors' layout, a tiny model overfits one batch, checkpoints
in the authors' dict layout, and resuming reproduces an uninterrupted run's weights exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.synctalkface.checkpoint import load_authors_checkpoint, load_expert, load_synctalkface
from baselines.synctalkface.train import (
    SyncTalkFaceTrainConfig,
    SyncTalkFaceTrainer,
    generator_batch,
    lip_windows,
)
from baselines.wav2lip.train import Wav2LipClips, expert_batch
from tests.conftest import smooth_noise_clips

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clips() -> Wav2LipClips:
    return smooth_noise_clips(frames=16, face_size=128)


CFG = SyncTalkFaceTrainConfig(width=0.0625, batch_size=2, expert_batch_size=4, eval_batches=1, eval_every=100,
                              expert_steps=0, generator_steps=0)


def test_batches_follow_the_authors_layout(clips: Wav2LipClips) -> None:
    b = generator_batch(clips, 2, np.random.default_rng(1))
    assert b["x"].shape == (2, 6, 5, 128, 128) and b["indiv_mels"].shape == (2, 5, 1, 80, 16)
    assert b["mel"].shape == (2, 1, 80, 16) and b["gt"].shape == (2, 3, 5, 128, 128)
    assert b["lip"].shape == (2, 5, 3, 5, 128, 128)
    assert b["gt"].min() >= -1 and b["gt"].max() <= 1 and b["gt"].min() < -0.5  # [-1, 1], not [0, 1]
    assert torch.all(b["x"][:, :3, :, 64:] == 0) and torch.equal(b["x"][:, :3, :, :64], b["gt"][:, :, :, :64])
    # The centre frame's lip window is the ground-truth window with its upper half zeroed.
    lip = b["lip"][:, 2]
    assert torch.all(lip[:, :, :, :64] == 0) and torch.equal(lip[:, :, :, 64:], b["gt"][:, :, :, 64:])
    e = expert_batch(clips, 4, np.random.default_rng(2))
    assert e["face"].shape == (4, 15, 64, 128) and e["face"].min() >= 0 and e["face"].max() <= 1  # expert reads [0, 1]


def test_lip_windows_centre_on_each_frame_and_repeat_the_edges() -> None:
    faces = np.zeros((8, 128, 128, 3), np.uint8)
    for t in range(8):
        faces[t] = 10 * t
    w = lip_windows(faces, 0)  # frames -2..6 -> 0,0,0,1,...,6
    value = lambda j, i: round((float(w[j, 0, i, 100, 0]) + 1) * 127.5 / 10)  # noqa: E731
    assert [value(0, i) for i in range(5)] == [0, 0, 0, 1, 2]
    assert [value(4, i) for i in range(5)] == [2, 3, 4, 5, 6]


@pytest.mark.slow
def test_a_tiny_model_fits_one_batch(tmp_path: Path, clips: Wav2LipClips) -> None:
    torch.manual_seed(0)
    tr = SyncTalkFaceTrainer(replace(CFG, lr=1e-2), tmp_path, train=clips)
    batch = generator_batch(clips, 2, np.random.default_rng(5))
    rows = [tr.generator_step(batch) for _ in range(12)]
    l1 = [r["l1"] for r in rows]
    assert l1[-1] < 0.9 * l1[0] and l1[-1] == min(l1[-3:]) and max(l1[-3:]) < min(l1[:3]), l1
    assert {"l1", "sync", "vv", "add", "recon"} <= set(rows[-1])
    assert {"perceptual", "disc"} <= set(tr.generator_step(batch, gan=True))
    eb = expert_batch(clips, 4, np.random.default_rng(6))
    losses = [tr.expert_step(eb) for _ in range(8)]
    assert losses[-1] < losses[0]


def test_the_lip_critic_is_frozen_and_the_expert_gets_no_gradient(tmp_path: Path, clips: Wav2LipClips) -> None:
    tr = SyncTalkFaceTrainer(CFG, tmp_path, train=clips)
    enc = tr.gen.lip_encoder
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    g = torch.randn(2, 3, 5, 128, 128, requires_grad=True)
    tr.lip_critic(g).sum().backward()
    assert g.grad is not None and g.grad.abs().sum() > 0
    assert all(p.grad is None for p in enc.parameters())
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())  # batch-norm stats untouched
    tr.generator_step(generator_batch(clips, 2, np.random.default_rng(7)))
    assert all(p.grad is None for p in tr.expert.parameters())


def test_checkpoints_use_the_authors_layout_and_resume_to_the_same_weights(tmp_path: Path, clips: Wav2LipClips) -> None:
    cfg = replace(CFG, expert_steps=1, generator_steps=2, gan_steps=1)
    straight = SyncTalkFaceTrainer(cfg, tmp_path / "a", train=clips)
    straight.fit(progress=False)

    first = SyncTalkFaceTrainer(replace(cfg, generator_steps=1, gan_steps=0), tmp_path / "b", train=clips)
    first.fit(progress=False)
    gen, dec, disc = load_authors_checkpoint(tmp_path / "b" / "generator.ckpt")
    assert torch.equal(gen.mem.key, first.gen.mem.key) and load_expert(tmp_path / "b" / "expert.pth").width == cfg.width
    load_synctalkface(tmp_path / "b" / "generator.ckpt")

    resumed = SyncTalkFaceTrainer(cfg, tmp_path / "b", train=clips)
    assert resumed.resume() and resumed.step == {"expert": 1, "generator": 1, "gan": 0}
    resumed.fit(progress=False)
    for a, b in ((straight.gen, resumed.gen), (straight.dec, resumed.dec), (straight.disc, resumed.disc),
                 (straight.expert, resumed.expert)):
        for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(v, w), k


def test_resume_refuses_another_width(tmp_path: Path, clips: Wav2LipClips) -> None:
    from talkbench.errors import ConfigError

    SyncTalkFaceTrainer(CFG, tmp_path, train=clips).save()
    with pytest.raises(ConfigError, match="width"):
        SyncTalkFaceTrainer(replace(CFG, width=0.125), tmp_path, train=clips).resume()


def test_warm_start_from_wav2lip_keeps_the_function_where_shapes_allow(tmp_path: Path, clips: Wav2LipClips) -> None:
    """[-1, 1] inputs through the halved first convolution equal Wav2Lip's [0, 1] ones (interior pixels);
    the halved last layer under Tanh equals Wav2Lip's Sigmoid output mapped to [-1, 1]; the fusion
    starts as the identity on the audio embedding; a trained generator is not overwritten."""
    from baselines.wav2lip.model import Wav2Lip
    from talkbench.errors import ConfigError
    from talkbench.weights import save_weights

    torch.manual_seed(4)
    w2l = Wav2Lip(0.0625).eval()
    save_weights(tmp_path / "w.safetensors", w2l.state_dict(), {"command": "test"}, dtype=None)
    tr = SyncTalkFaceTrainer(CFG, tmp_path / "run", train=clips)
    assert tr.warm_start(tmp_path / "w.safetensors") > 300 and tr.init["wav2lip_generator"]["sha256"]
    gen, dec = tr.gen.eval(), tr.dec.eval()
    x01 = torch.rand(2, 6, 32, 32)
    with torch.no_grad():
        ours = gen.face_encoder_blocks[0][0].conv_block[0](x01 * 2 - 1)[..., 3:-3, 3:-3]
        theirs = w2l.face_encoder_blocks[0][0].conv_block[0](x01)[..., 3:-3, 3:-3]
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
        z = torch.randn(2, dec.output_block[0].conv_block[0].in_channels, 8, 8)
        torch.testing.assert_close((dec.output_block(z) + 1) / 2, w2l.output_block(z), rtol=1e-4, atol=1e-5)
        a = torch.randn(3, gen.mem.fusion.out_features)
        torch.testing.assert_close(gen.mem.eval()(a).te_fusion, a)
    tr.step["generator"] = 1
    with pytest.raises(ConfigError, match="already trained"):
        tr.warm_start(tmp_path / "w.safetensors")


@pytest.mark.slow
def test_cli_trains_resumes_and_exports(tmp_path: Path) -> None:
    """`talkbench train synctalkface` end to end on a tiny synth-lrw corpus: the three stages, the authors'
    checkpoint layout, --resume, and exported weights (generator + expert, cards) the adapter loads."""
    import json

    from click.testing import CliRunner

    from talkbench.cli import cli as cli_main
    from talkbench.datasets.synth.corpus import build_corpus
    from talkbench.weights import read_card

    root = build_corpus("synth-lrw", tmp_path / "corpus", clips={"train": 2, "val": 1}, splits=("train", "val"),
                        progress=False, workers=1)
    out, export = tmp_path / "run", tmp_path / "s.safetensors"
    args = ["train", "synctalkface", "--dataset", "synth-lrw", "--root", str(root), "--width", "0.0625",
            "--expert-steps", "1", "--steps", "1", "--gan-steps", "1", "--batch-size", "2", "--expert-batch-size", "4",
            "--eval-every", "1", "--device", "cpu", "--threads", "1", "--out", str(out)]
    r = CliRunner().invoke(cli_main, args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["step"]) for x in rows] == [("expert", 1), ("generator", 1), ("gan", 1)]
    load_authors_checkpoint(out / "generator.ckpt")
    r = CliRunner().invoke(cli_main, [*args, "--steps", "2", "--resume", "--export", str(export)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["step"]) for x in rows[3:]] == [("generator", 2)]
    card = read_card(export)
    assert card["steps"] == {"expert": 1, "generator": 2, "gan": 1} and len(card["commands"]) == 2
    assert card["commands"][0].startswith("talkbench train synctalkface") and "--resume" in card["commands"][1]
    assert load_synctalkface(export).width == 0.0625
    assert load_expert(tmp_path / "s-expert.safetensors").width == 0.0625
    # --init-from trains the export further in a fresh directory: its counters and history carry over.
    more = tmp_path / "more.safetensors"
    r = CliRunner().invoke(cli_main, [*args, "--steps", "3", "--out", str(tmp_path / "run2"), "--stage", "generator",
                                      "--init-from", str(export), "--export", str(more)])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (tmp_path / "run2" / "log.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["step"]) for x in rows] == [("generator", 3)]
    card = read_card(more)
    assert card["steps"] == {"expert": 1, "generator": 3, "gan": 1} and len(card["commands"]) == 3
    assert "--init-from" in card["commands"][2] and card["init"]["continued_from"]["sha256"] == read_card(export)["sha256"]


def test_init_from_loads_an_export_exactly_and_refuses_what_it_cannot_continue(tmp_path: Path, clips: Wav2LipClips) -> None:
    from baselines.synctalkface.export import export_models
    from talkbench.errors import CheckpointError, ConfigError

    torch.manual_seed(7)
    src = SyncTalkFaceTrainer(CFG, tmp_path / "a", train=clips)
    src.step = {"expert": 5, "generator": 7, "gan": 2}
    src.commands = ["talkbench train synctalkface --steps 7"]
    path = tmp_path / "s.safetensors"
    export_models(src, path, command=src.commands[0], clips=len(clips), metrics={})
    tr = SyncTalkFaceTrainer(CFG, tmp_path / "b", train=clips)
    tr.commands.append("talkbench train synctalkface --init-from s.safetensors")
    assert tr.continue_from(path) == {"expert": 5, "generator": 7, "gan": 2}
    assert tr.commands == [*src.commands, "talkbench train synctalkface --init-from s.safetensors"]
    # The export is fp16: the continued weights are the source's, rounded to half precision.
    for a, b in ((src.gen, tr.gen), (src.dec, tr.dec), (src.expert, tr.expert)):
        for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(w, v.half().to(v.dtype) if v.is_floating_point() else v, rtol=0, atol=0, msg=k)
    with pytest.raises(ConfigError, match="already trained"):
        tr.continue_from(path)
    with pytest.raises(CheckpointError, match="width"):
        SyncTalkFaceTrainer(replace(CFG, width=0.125), tmp_path / "c", train=clips).continue_from(path)
    (tmp_path / "s-expert.safetensors").unlink()
    with pytest.raises(CheckpointError, match="s-expert.safetensors"):
        SyncTalkFaceTrainer(CFG, tmp_path / "d", train=clips).continue_from(path)
