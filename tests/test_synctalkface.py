"""SyncTalkFace: the authors' module trees and checkpoint dict, the Audio-Lip Memory against a hand-written
formula, and the method through `talkbench run --weights synctalkface=FILE`."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from baselines.synctalkface.checkpoint import load_authors_checkpoint, load_expert, load_synctalkface
from baselines.synctalkface.model import (
    AudioLipMemory,
    QualityDiscriminator128,
    SyncNet128,
    SyncTalkFace,
    SyncTalkFaceDecoder,
    SyncTalkFaceGenerator,
)
from baselines.wav2lip.model import SyncNetColor
from talkbench.cli import cli
from talkbench.errors import CheckpointError
from talkbench.io.video import write_video
from tests.conftest import talking_frames, tone

LAYOUTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "official-layouts"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _layout(name: str) -> tuple[dict, dict]:
    if not (LAYOUTS / f"{name}_keys.json").exists():
        pytest.skip("../shared/reference/official-layouts is not present")
    return json.loads((LAYOUTS / f"{name}_keys.json").read_text()), json.loads((LAYOUTS / f"{name}_info.json").read_text())


@pytest.mark.parametrize(("part", "cls"), [("generator", SyncTalkFaceGenerator), ("decoder", SyncTalkFaceDecoder),
                                           ("memory", AudioLipMemory), ("syncnet", SyncNet128),
                                           ("disc", QualityDiscriminator128)])
def test_key_layouts_match_the_authors_lists(part: str, cls) -> None:
    keys, info = _layout("synctalkface")
    model = cls()
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert ours == keys[part]
    assert sum(p.numel() for p in model.parameters()) == info["param_counts"][part]


def test_shapes_of_the_authors_forward() -> None:
    _, info = _layout("synctalkface")
    fwd = info["forward"]
    gen = SyncTalkFaceGenerator().eval()
    with torch.no_grad():
        mem, feats = gen(torch.randn(5, 1, 80, 16), torch.randn(5, 6, 128, 128), torch.randn(5, 3, 5, 128, 128))
        assert [list(f.shape) for f in feats] == fwd["generator_inference"]["out"]["feats"]
        assert list(mem.key_add.shape) == [5, 96] and list(mem.te_fusion.shape) == [5, 512]
        y = SyncTalkFaceDecoder().eval()(mem.te_fusion, feats)
        assert list(y.shape) == [5, 3, 128, 128] and y.abs().max() <= 1
        a, v = SyncNet128().eval()(torch.randn(*fwd["syncnet"]["in"]["mel"]), torch.randn(*fwd["syncnet"]["in"]["face_lower_half_stacked"]))
        assert [list(a.shape), list(v.shape)] == [fwd["syncnet"]["out"]["audio_emb"], fwd["syncnet"]["out"]["face_emb"]]
        assert list(QualityDiscriminator128().eval()(torch.randn(5, 3, 128, 128)).shape) == fwd["disc"]["out"]


def test_memory_addressing_equals_the_formula() -> None:
    """softmax_j(16 cos(W_q a + b_q, key_j)) recalls sum_j w_j value_j; fused = W_f [a; recalled] + b_f
    (dropout off in eval); with a lip: the value address, MSE reconstruction and KL(value || key)."""
    torch.manual_seed(0)
    mem = AudioLipMemory(dim=8, slots=5).eval()
    a, lip = torch.randn(3, 8, dtype=torch.float64), torch.randn(3, 8, dtype=torch.float64)
    mem = mem.double()
    out = mem(a, lip)
    P = {k: v.detach().numpy() for k, v in mem.state_dict().items()}
    A, L = a.numpy(), lip.numpy()

    def address(q, slots):
        rows = []
        for qi in q:
            cos = [qi @ s / (math.sqrt(qi @ qi) * math.sqrt(s @ s)) for s in slots]
            e = [math.exp(16.0 * c) for c in cos]
            rows.append([x / sum(e) for x in e])
        return np.array(rows)

    key_add = address(A @ P["q_embd.weight"].T + P["q_embd.bias"], P["key"])
    np.testing.assert_allclose(out.key_add.detach().numpy(), key_add, rtol=1e-9)
    fused = np.concatenate([A, key_add @ P["value"]], 1) @ P["fusion.weight"].T + P["fusion.bias"]
    np.testing.assert_allclose(out.te_fusion.detach().numpy(), fused, rtol=1e-9)
    emb = L @ P["v_embd.weight"].T + P["v_embd.bias"]
    value_add = address(emb, P["value"])
    np.testing.assert_allclose(out.value_add.detach().numpy(), value_add, rtol=1e-9)
    np.testing.assert_allclose(float(out.recon_loss.detach()), np.mean((value_add @ P["value"] - emb) ** 2), rtol=1e-9)
    kl = np.sum(value_add * (np.log(value_add) - np.log(key_add + 1e-13))) / len(A)
    np.testing.assert_allclose(float(out.add_loss.detach()), kl, rtol=1e-6)
    fused_tr = np.concatenate([A, value_add @ P["value"]], 1) @ P["fusion.weight"].T + P["fusion.bias"]
    np.testing.assert_allclose(out.tr_fusion.detach().numpy(), fused_tr, rtol=1e-9)


def _authors_ckpt(path: Path, width: float = 1.0, drop: str | None = None, prefix: str = "") -> tuple[Path, dict]:
    torch.manual_seed(1)
    parts = {"model_state_dict": SyncTalkFaceGenerator(width).state_dict(),
             "dec_state_dict": SyncTalkFaceDecoder(width).state_dict(),
             "disc_state_dict": QualityDiscriminator128(width).state_dict()}
    parts = {k: {prefix + n: t for n, t in v.items()} for k, v in parts.items() if k != drop}
    torch.save(parts, path)
    return path, parts


@pytest.mark.parametrize("prefix", ["", "module."])
def test_the_authors_checkpoint_dict_loads_strictly(tmp_path: Path, prefix: str) -> None:
    path, parts = _authors_ckpt(tmp_path / "a.ckpt", width=0.25, prefix=prefix)
    gen, dec, disc = load_authors_checkpoint(path)
    for name, model in (("model_state_dict", gen), ("dec_state_dict", dec), ("disc_state_dict", disc)):
        for k, v in model.state_dict().items():
            assert torch.equal(v, parts[name][prefix + k]), k
    model = load_synctalkface(path)
    assert torch.equal(model.generator.mem.key, parts["model_state_dict"][prefix + "mem.key"])


def test_a_missing_part_is_named(tmp_path: Path) -> None:
    path, _ = _authors_ckpt(tmp_path / "a.ckpt", width=0.0625, drop="dec_state_dict")
    with pytest.raises(CheckpointError, match="lacks dec_state_dict"):
        load_synctalkface(path)
    path, parts = _authors_ckpt(tmp_path / "b.ckpt", width=0.0625)
    parts["model_state_dict"].pop("mem.fusion.bias")
    torch.save(parts, path)
    with pytest.raises(CheckpointError, match=r"model_state_dict.*mem\.fusion\.bias"):
        load_synctalkface(path)


def test_expert_loads_from_state_dict_and_the_wav2lip_expert_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(2)
    ours = SyncNet128(0.125)
    torch.save({"state_dict": {"module." + k: v for k, v in ours.state_dict().items()}, "global_step": 1}, tmp_path / "e.pth")
    loaded = load_expert(tmp_path / "e.pth")
    assert loaded.width == 0.125 and torch.equal(loaded.face_encoder[0].conv_block[0].weight, ours.face_encoder[0].conv_block[0].weight)
    torch.save({"state_dict": {"module." + k: v for k, v in SyncNetColor().state_dict().items()}}, tmp_path / "lipsync_expert.pth")
    with pytest.raises(CheckpointError, match="96-px Wav2Lip expert"):
        load_expert(tmp_path / "lipsync_expert.pth")
    with pytest.raises(CheckpointError, match="not a SyncTalkFace training checkpoint"):
        load_synctalkface(tmp_path / "e.pth")


def test_pickles_needing_code_are_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model_state_dict": {"x": Evil()}, "dec_state_dict": {}, "disc_state_dict": {}}, tmp_path / "evil.ckpt")
    with pytest.raises(CheckpointError, match="code execution"):
        load_synctalkface(tmp_path / "evil.ckpt")
    torch.save({"state_dict": {"x": Evil()}}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="code execution"):
        load_expert(tmp_path / "evil.pth")


def test_our_safetensors_round_trip(tmp_path: Path) -> None:
    from talkbench.weights import save_weights

    torch.manual_seed(3)
    model = SyncTalkFace(0.0625).eval()
    save_weights(tmp_path / "s.safetensors", model.state_dict(), {"command": "test"}, dtype=None)
    loaded = load_synctalkface(tmp_path / "s.safetensors")
    x = (torch.randn(2, 1, 80, 16), torch.randn(2, 6, 128, 128).clamp(-1, 1))
    with torch.no_grad():
        assert torch.equal(loaded(*x), model(*x))


def test_adapter_inputs_are_bgr_signed_with_the_lower_half_zeroed() -> None:
    from baselines.synctalkface.adapter import model_faces

    frames = np.full((3, 128, 128, 3), (255, 0, 51), np.uint8)
    x = model_faces(frames, frames[0])
    assert x.shape == (3, 6, 128, 128)
    assert x[0, 0, 0, 0] == pytest.approx(51 / 127.5 - 1) and x[0, 2, 0, 0] == pytest.approx(1.0)  # BGR, [-1, 1]
    assert (x[:, :3, 64:] == 0).all() and (x[:, 3:, 64:, 0, ] != 0).all()


def test_run_with_the_authors_checkpoint_and_masked_audio(tmp_path: Path) -> None:
    """`talkbench run` with the authors' checkpoint dict: sha256 in run.json, metrics for every clip, and
    `synctalkface@mask=3` honoured (the masked frames differ from the unmasked run's)."""
    weights, _ = _authors_ckpt(tmp_path / "synctalkface.ckpt", width=0.0625)
    root = tmp_path / "ds"
    root.mkdir()
    write_video(root / "a.mp4", talking_frames(10), tone(0.4))
    res = CliRunner().invoke(cli, ["run", "--methods", "synctalkface,synctalkface@mask=3", "--dataset", "folder", "--root",
                                   str(root), "--split", "all", "--metrics", "psnr,ssim", "--weights",
                                   f"synctalkface={weights}", "--run-dir", str(tmp_path / "r"), "--no-report"])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["methods"]["synctalkface"]["weights"]["sha256"]
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as c:
        rows = c.execute("SELECT method, metric, value FROM results WHERE method LIKE 'synctalkface%'").fetchall()
    assert {(m, k) for m, k, _ in rows} >= {("synctalkface", "psnr"), ("synctalkface@mask=3", "ssim")}
    assert all(v is not None for _, _, v in rows)


def test_doctor_lists_the_synctalkface_weights() -> None:
    res = CliRunner().invoke(cli, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert "synctalkface.ckpt" in info["official_weights"] and "synctalkface_expert.pth" in info["official_weights"]
