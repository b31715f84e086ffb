"""Lip reader: official ``lrw_resnet18_mstcn`` key layout, strict loading of files in the official
dict layout, refusal of incomplete files, and our safetensors round trip."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from talkbench.critics.lipreader import (
    ConvBatchChompAct,
    LipReader,
    LipReaderConfig,
    config_dict,
    load_lipreader,
)
from talkbench.errors import CheckpointError

# Facts read from mpc001/Lipreading_using_Temporal_Convolutional_Networks (0cc99fa): module tree of
# Lipreading(backbone resnet, tcn kernels 3/5/7, 4 layers, 500 classes); counts include BN counters.
OFFICIAL_SHAPES = {
    "frontend3D.0.weight": (64, 1, 5, 7, 7),
    "frontend3D.1.running_var": (64,),
    "trunk.layer1.0.conv1.weight": (64, 64, 3, 3),
    "trunk.layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "trunk.layer4.1.bn2.running_mean": (512,),
    "tcn.mb_ms_tcn.network.0.cbcr0_0.conv.weight": (256, 512, 3),
    "tcn.mb_ms_tcn.network.0.cbcr0_2.conv.bias": (256,),
    "tcn.mb_ms_tcn.network.0.downsample.weight": (768, 512, 1),
    "tcn.mb_ms_tcn.network.3.cbcr1_2.conv.weight": (256, 768, 7),
    "tcn.mb_ms_tcn.network.3.downsample.weight": (768, 768, 1),
    "tcn.mb_ms_tcn.network.2.cbcr1_1.batchnorm.running_var": (256,),
    "tcn.tcn_output.weight": (500, 768),
}
PRELU_SHAPES = {
    "frontend3D.2.weight": (64,),
    "trunk.layer3.1.relu2.weight": (256,),
    "tcn.mb_ms_tcn.network.1.cbcr0_1.non_lin.weight": (256,),
    "tcn.mb_ms_tcn.network.3.relu_final.weight": (768,),
}


def _perturb_bn(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.fixture(scope="module", params=["swish", "prelu"])
def official(request, tmp_path_factory) -> tuple[str, LipReader, Path]:
    torch.manual_seed(0)
    model = LipReader(LipReaderConfig(act=request.param)).eval()
    _perturb_bn(model)
    path = tmp_path_factory.mktemp("w") / f"lrw_resnet18_mstcn_{request.param}.pth.tar"
    torch.save({"model_state_dict": model.state_dict(), "epoch": 80}, path)  # the official dict layout
    return request.param, model, path


def test_official_key_layout(official):
    act, model, _ = official
    sd = model.state_dict()
    assert len(sd) == (343 if act == "prelu" else 298)
    expected = {**OFFICIAL_SHAPES, **(PRELU_SHAPES if act == "prelu" else {})}
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k
    if act == "swish":
        assert not any(k in sd for k in PRELU_SHAPES)
    assert sum(p.numel() for p in model.parameters()) > 36_000_000


def test_official_file_loads_strictly_with_identical_logits(official):
    act, model, path = official
    loaded = load_lipreader(path)
    assert loaded.config.act == act and loaded.config.num_classes == 500 and loaded.config.width == 1.0
    x = torch.randn(2, 1, 6, 88, 88, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref, got = model(x, [6, 4]), loaded(x, [6, 4])
    assert torch.equal(ref, got)
    # Variable lengths matter: clip 2 averaged over 4 frames differs from averaging over all 6.
    with torch.no_grad():
        assert not torch.allclose(loaded(x)[1], got[1])


def test_missing_and_misshaped_keys_are_named(official, tmp_path):
    _, model, _ = official
    sd = model.state_dict()
    missing = {k: v for k, v in sd.items() if k != "tcn.mb_ms_tcn.network.2.cbcr0_1.conv.bias"}
    p = tmp_path / "missing.pth"
    torch.save({"model_state_dict": missing}, p)
    with pytest.raises(CheckpointError, match=r"missing keys.*tcn\.mb_ms_tcn\.network\.2\.cbcr0_1\.conv\.bias"):
        load_lipreader(p)
    bad = dict(sd)
    bad["trunk.layer1.0.conv2.weight"] = torch.zeros(64, 64, 5, 5)
    torch.save({"model_state_dict": bad}, p)
    with pytest.raises(CheckpointError, match=r"trunk\.layer1\.0\.conv2\.weight: checkpoint \(64, 64, 5, 5\)"):
        load_lipreader(p)


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_refused(tmp_path):
    p = tmp_path / "evil.pth"
    with open(p, "wb") as f:
        pickle.dump({"model_state_dict": _Evil()}, f)
    with pytest.raises(CheckpointError, match="refusing"):
        load_lipreader(p)


def test_symmetric_chomp_equals_same_padding():
    """Conv with padding (k-1)*d then chomping half each side == a 'same'-padded conv."""
    torch.manual_seed(0)
    for k, d in ((3, 1), (5, 2), (7, 8)):
        blk = ConvBatchChompAct(6, 4, k, d, "relu").eval()
        ref = torch.nn.Conv1d(6, 4, k, padding=(k - 1) * d // 2, dilation=d)
        ref.load_state_dict(blk.conv.state_dict())
        x = torch.randn(2, 6, 29)
        with torch.no_grad():
            want = torch.relu(blk.batchnorm(ref(x)))
            assert torch.allclose(blk(x), want, atol=1e-6)


def test_small_width_safetensors_round_trip(tmp_path):
    from talkbench.weights import save_weights

    cfg = LipReaderConfig(width=0.125, num_classes=7)
    torch.manual_seed(0)
    model = LipReader(cfg).eval()
    _perturb_bn(model)
    path = tmp_path / "small.safetensors"
    save_weights(path, model.state_dict(), {"command": "test", "data": "none", "seed": 0, "metrics": {},
                                            "config": {"model": config_dict(cfg)}})
    loaded = load_lipreader(path)
    assert loaded.config == cfg
    x = torch.randn(1, 1, 5, 88, 88)
    with torch.no_grad():
        a, b = model(x).numpy(), loaded(x).numpy()
    np.testing.assert_allclose(b, a, atol=2e-2 * np.abs(a).max())  # fp16 storage
    # Width is inferred from the keys when the card is absent.
    (tmp_path / "small.json").unlink()
    assert load_lipreader(path).config.width == 0.125


def test_shipped_critic_matches_its_card():
    from talkbench.cache import sha256_file
    from talkbench.weights import read_card, shipped_weights

    path = shipped_weights("lipreader-synth")
    if path is None:
        pytest.skip("talkbench/checkpoints/lipreader-synth.safetensors not present")
    card = read_card(path)
    assert card["sha256"] == sha256_file(path)
    model = load_lipreader(path)
    assert model.config.num_classes == len(card["vocabulary"])
    for split in ("ground_truth_val", "ground_truth_test"):
        m = card["metrics"][split]
        assert 0 <= m["top1"] <= m["top5"] <= 1 and m["clips"] > 0
