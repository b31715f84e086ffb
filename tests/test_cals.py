"""CALS: config validation, masking, every training stage on a tiny model, resume, inference
windows, ablation variants, the Method adapter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cals.audio2lip import phone_mask
from cals.checkpoint import export, load_cals
from cals.config import from_dict, load_config, with_overrides
from cals.data import ClipBank
from cals.inference import generate, lip_units_long
from cals.model import CALS
from cals.train import Trainer
from talkbench.errors import ConfigError, MetricError
from tests.conftest import tiny_cals_config

TINY = tiny_cals_config(train={"e2e_steps": 3, "grad_share_every": 1})


@pytest.fixture(scope="module")
def bank() -> ClipBank:
    from talkbench.datasets.synth.corpus import SPECS, _clip_plan, load_vocabulary, render_clip

    vocab = load_vocabulary()
    clips = []
    for i in range(2):
        c = render_clip(SPECS["synth-lrs2"], _clip_plan(SPECS["synth-lrs2"], "train", i, 0, vocab), 0)
        import cv2

        frames = np.stack([cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for f in c["frames"]])
        clips.append((f"c{i}", frames, c["audio"]))
    return ClipBank(clips)


def test_config_rejects_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown keys in model: layerz"):
        from_dict({"model": {"layerz": 3}})
    p = tmp_path / "c.yaml"
    p.write_text("trian: {}\n")
    with pytest.raises(ConfigError, match="unknown top-level keys: trian"):
        load_config(p)
    paper = load_config("lrs2")
    assert (paper.model.layers, paper.model.d_model, paper.model.ff, paper.model.heads) == (6, 512, 2048, 8)
    assert (paper.loss.l1, paper.loss.gan, paper.loss.sync) == (10.0, 0.07, 0.03)


def test_phone_mask_expected_fraction_at_every_length() -> None:
    """Spans of 5 units, never overlapping; the masked share averages the configured 50 % at every
    length from 20 to 200 (the old span count, rounded, gave 40 % at 25)."""
    g = torch.Generator().manual_seed(0)
    draws = 120
    for t in range(20, 201):
        fracs = []
        for _ in range(draws):
            m = phone_mask(t, 5, 0.5, g)
            runs = np.diff(np.flatnonzero(np.diff(np.r_[0, m.int().numpy(), 0])))[::2]
            assert all(r % 5 == 0 for r in runs)  # whole 5-unit spans (adjacent ones merge into runs)
            fracs.append(m.float().mean().item())
        # Per-draw share is n*5/t with n in {floor, ceil} of t/10: its sd is <= 5/(2t); 4 standard errors.
        assert abs(np.mean(fracs) - 0.5) <= 4 * (5 / (2 * t)) / np.sqrt(draws) + 1e-9, t
        assert max(abs(f - 0.5) for f in fracs) <= 5 / t + 1e-9
    # Other probabilities too, and spans are placed off the 5-unit grid.
    starts = set()
    for _ in range(300):
        m = phone_mask(25, 5, 0.3, g)
        starts.update((np.flatnonzero(np.diff(np.r_[0, m.int().numpy()]) == 1) % 5).tolist())
    assert np.mean([phone_mask(25, 5, 0.3, g).float().mean().item() for _ in range(1000)]) == pytest.approx(0.3, abs=0.015)
    assert len(starts) > 1


def test_batches_are_whole_utterances_or_cuts_at_their_absolute_position() -> None:
    """Utterances up to `window` frames come whole (padded, masked); longer clips are cut at a random
    start that is their position offset; the reference frame is never near a loss-carrying frame."""
    from cals.audio import units_for
    from cals.data import sample_batch

    rng = np.random.default_rng(0)
    lens = (23, 31, 90)
    clips = []
    for i, n in enumerate(lens):
        frames = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 8, 8, 3)).copy()
        frames[..., 1] = i  # clip id in the green channel
        clips.append((f"c{i}", frames, rng.standard_normal(n * 640).astype(np.float32)))
    cfg = from_dict({"train": {"window": 40, "batch_size": 24}}).train
    seen_offsets = set()
    for render_segments in (0, 2):
        b = sample_batch(ClipBank(clips), cfg, rng, None, augment=False, render_segments=render_segments)
        assert b["units"].shape[1] == b["frames"].shape[1] == b["valid"].shape[1] <= 40
        for i in range(24):
            cid = int(round(float(b["frames"][i, 0, 1, 0, 0]) * 255))
            n, start = int(b["valid"][i].sum()), int(b["offset"][i])
            assert n == min(lens[cid], 40) and not b["valid"][i, n:].any()
            if lens[cid] <= 40:
                assert start == 0  # the whole utterance
            seen_offsets.add(start)
            # Frames and audio units are those of clip frames start..start+n-1.
            got = (b["frames"][i, :n, 0, 0, 0] * 255).round().long()
            assert torch.equal(got, torch.arange(start, start + n))
            audio = clips[cid][2][start * 640 : (start + n) * 640]
            torch.testing.assert_close(b["units"][i, :n], units_for(audio, n))
            assert (b["units"][i, n:] == 0).all()
            # The reference is never within t_s // 2 = 2 frames of a frame that carries a loss.
            targets = start + b["render"][i][b["render_valid"][i]]
            assert (targets - b["ref_index"][i]).abs().min() > 2
            ref_val = int(round(float(b["reference"][i, 0, 0, 0]) * 255))
            assert ref_val == int(b["ref_index"][i])
            # d_av / d_vv segments: whole 5-frame runs of loss-carrying rendered frames.
            for c_local, c_abs in zip(b["seg"][i].tolist(), b["seg_abs"][i].tolist()):
                assert b["render_valid"][i, c_local - 2 : c_local + 3].all()
                assert b["render"][i, c_local - 2 : c_local + 3].tolist() == list(range(c_abs - 2, c_abs + 3))
        if render_segments:
            assert b["render"].shape[1] == 10 and b["render_valid"].all() and b["seg"].shape[1] == 2
    assert len({o for o in seen_offsets if o > 0}) > 3  # the 90-frame clip is cut at many starts


def test_all_stages_train_and_resume(tmp_path: Path, bank: ClipBank) -> None:
    cfg = from_dict(TINY)
    tr = Trainer(cfg, tmp_path / "run", "cpu", bank)
    last = tr.fit(progress=False)
    assert tr.step == {"sync": 2, "a2l": 2, "e2e": 3}
    assert np.isfinite(last["l1"]) and tr.sync_on and "d_av" in last and "d_vv" in last
    shares = {k: v for k, v in last.items() if k.startswith("grad_share_")}
    assert set(shares) == {"grad_share_recon", "grad_share_gan", "grad_share_d_av", "grad_share_d_vv"}
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3) and shares["grad_share_recon"] > 0.5
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert {r["stage"] for r in logs} == {"sync", "a2l", "e2e"}
    assert any("sync_match" in r for r in logs) and any("a2l" in r for r in logs)
    cfg2 = with_overrides(cfg, train={"e2e_steps": 4})
    tr2 = Trainer(cfg2, tmp_path / "run", "cpu", bank)
    assert tr2.resume() and tr2.step["e2e"] == 3
    tr2.fit(stages=("e2e",), progress=False)
    assert tr2.step["e2e"] == 4


def test_a2l_stage_learns_on_masked_steps(tmp_path: Path, bank: ClipBank) -> None:
    cfg = from_dict({**TINY, "train": {**TINY["train"], "a2l_steps": 30, "lr": 3e-3}})
    tr = Trainer(cfg, tmp_path / "r", "cpu", bank)
    tr.fit(stages=("sync",), progress=False)
    first = tr.train_a2l()["a2l"]
    for _ in range(30):
        last = tr.train_a2l()["a2l"]
    assert last < first


def test_baseline_variant_has_no_context_and_windows_are_exact(bank: ClipBank) -> None:
    base = CALS(from_dict({"model": {**TINY["model"], "use_a2l": False}}).model).eval()
    units = torch.randn(60, 80, 4)
    whole = base.lip_units(units[None])[0]
    torch.testing.assert_close(lip_units_long(base, units, max_len=20, overlap=5), whole)
    # Changing audio far away does not change a phone-level frame.
    far = units.clone()
    far[40:] = 0
    torch.testing.assert_close(base.lip_units(far[None])[0, :30], whole[:30])
    a2l = CALS(from_dict(TINY).model).eval()
    w = a2l.lip_units(units[None])[0]
    # Per-sequence absolute offsets (training batches) give the positions an int offset gives.
    two = a2l.lip_units(torch.stack([units, units]), offset=torch.tensor([0, 7]))
    torch.testing.assert_close(two[0], w)
    torch.testing.assert_close(two[1], a2l.lip_units(units[None], offset=7)[0])
    assert not torch.allclose(two[1], w)
    assert not torch.allclose(a2l.lip_units(far[None])[0, :30], w[:30])  # context reaches far frames
    # Windowed inference with a context limit k <= overlap: every frame still ignores the audio outside
    # its +-k frames (the windows change only which zeroed frames surround it).
    k = 3
    win = lip_units_long(a2l, units, max_len=24, overlap=6, context_k=k)
    for t in (5, 20, 41, 55):
        other = torch.randn(60, 80, 4)
        other[t - k : t + k + 1] = units[t - k : t + k + 1]
        torch.testing.assert_close(lip_units_long(a2l, other, max_len=24, overlap=6, context_k=k)[t], win[t],
                                   atol=1e-5, rtol=1e-5)
        inside = units.clone()
        inside[t + k] = torch.randn(80, 4)
        assert (lip_units_long(a2l, inside, max_len=24, overlap=6, context_k=k)[t] - win[t]).abs().max() > 1e-4


def test_adapter_roundtrip_and_bad_audio(tmp_path: Path, bank: ClipBank) -> None:
    from cals.adapter import CALSMethod
    from talkbench.types import GenRequest, lower_half_masked

    cfg = from_dict(TINY)
    model = CALS(cfg.model)
    path = tmp_path / "cals.safetensors"
    export(model, cfg, path, {"command": "test", "data": "none", "seed": 0, "metrics": {}})
    loaded, cfg2 = load_cals(path)
    assert cfg2.model == cfg.model
    m = CALSMethod()
    m.load(weights=path)
    _, frames, audio = bank.clips[0]
    req = GenRequest("x", frames[0], lower_half_masked(frames[:12]), audio[: 12 * 640], mask_frames=(3, 4, 5))
    res = m.generate([req])[0]
    assert res.ok and res.frames.shape == (12, 32, 32, 3)
    bad = m.generate([GenRequest("s", frames[0], lower_half_masked(frames[:12]), np.zeros(12 * 640, np.float32))])[0]
    assert not bad.ok and "silent" in bad.error
    with pytest.raises(MetricError, match="shorter"):
        generate(loaded, audio[:1000], frames[0], lower_half_masked(frames[:12]))


def test_interrupted_training_resumes_to_the_same_weights(tmp_path: Path, bank: ClipBank) -> None:
    cfg = with_overrides(from_dict(TINY), train={"e2e_steps": 4})
    straight = Trainer(cfg, tmp_path / "a", "cpu", bank)
    straight.fit(progress=False)
    first = Trainer(with_overrides(cfg, train={"e2e_steps": 2}), tmp_path / "b", "cpu", bank)
    first.fit(progress=False)
    second = Trainer(cfg, tmp_path / "b", "cpu", bank)
    assert second.resume()
    second.fit(progress=False)
    a, b = straight.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_export_only_resume_keeps_the_training_record(tmp_path) -> None:
    """`talkbench train cals --resume --export` with no steps left: the card keeps the training losses of
    the run before and lists both invocations."""
    import json

    import yaml
    from click.testing import CliRunner

    from talkbench.cli import cli as cli_main
    from talkbench.datasets.synth.corpus import build_corpus
    from talkbench.weights import read_card

    root = build_corpus("synth-lrw", tmp_path / "corpus", clips={"train": 2, "val": 1}, splits=("train", "val"),
                        progress=False, workers=1)
    conf = tmp_path / "tiny.yaml"
    train = {**TINY["train"], "dataset": "synth-lrw", "sync_steps": 1, "a2l_steps": 1, "e2e_steps": 2, "window": 10}
    conf.write_text(yaml.safe_dump({**TINY, "train": train}))
    args = ["train", "cals", "--config", str(conf), "--root", str(root), "--device", "cpu", "--out", str(tmp_path / "run")]
    r = CliRunner().invoke(cli_main, args)
    assert r.exit_code == 0, r.output
    trained = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "l1" in trained
    export = tmp_path / "c.safetensors"
    r = CliRunner().invoke(cli_main, [*args, "--resume", "--export", str(export)])
    assert r.exit_code == 0, r.output
    card = read_card(export)
    assert card["metrics"]["l1"] == trained["l1"] and len(card["commands"]) == 2
    assert "--resume" in card["commands"][1] and "--resume" not in card["commands"][0]
