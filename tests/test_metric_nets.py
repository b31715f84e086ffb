"""Metric networks: official key layouts, outputs equal to the official code on seeded weights (golden
vectors, tests/fixtures/metric_nets/README.md), strict loading of official-layout files, wrong
networks refused by name, missing files reported with where to put them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from talkbench.errors import CheckpointError, MetricError
from talkbench.metrics.nets.alexnet import AlexNetFeatures, load_lpips_alex
from talkbench.metrics.nets.i3d import InceptionI3d, load_i3d
from talkbench.metrics.nets.inception import FIDInceptionV3, load_fid_inception
from talkbench.metrics.nets.iresnet import IResNet, align_arcface, load_arcface
from talkbench.metrics.nets.weights import (
    find_net_weights,
    resolve_net_weights,
    save_seeded,
    seeded_state_dict,
)

FIX = Path(__file__).parent / "fixtures" / "metric_nets"


@pytest.fixture(scope="module")
def golden():
    return np.load(FIX / "golden.npz")


@pytest.fixture(scope="module")
def layouts():
    return json.loads((FIX / "layouts.json").read_text())


@pytest.fixture(scope="module")
def inputs(golden):
    g = torch.Generator().manual_seed(1234)
    x = {"inception": torch.rand(2, 3, 64, 80, generator=g)}
    x["lpips_a"] = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    x["lpips_b"] = (x["lpips_a"] + 0.3 * torch.randn(3, 3, 64, 64, generator=g)).clamp(-1, 1)
    x["iresnet"] = torch.rand(2, 3, 112, 112, generator=g) * 2 - 1
    x["i3d"] = torch.rand(1, 3, 16, 224, 224, generator=g) * 2 - 1
    assert x["inception"].double().sum().item() == pytest.approx(golden["inception_input_sum"][0], abs=1e-6)
    assert x["i3d"].double().sum().item() == pytest.approx(golden["i3d_input_sum"][0], abs=1e-4)
    return x


def _layout(model: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_layouts_equal_the_official_definitions(layouts) -> None:
    assert _layout(FIDInceptionV3()) == layouts["inception-fid"]
    assert _layout(InceptionI3d()) == layouts["i3d-kinetics400"]
    alex = {k: v for k, v in layouts["alexnet"].items() if k.startswith("features.")}
    assert _layout(AlexNetFeatures()) == alex
    for depth in (18, 50, 100):
        with torch.device("meta"):
            assert _layout(IResNet(depth)) == layouts[f"iresnet{depth}"], depth


def test_official_layout_files_load_strictly_and_match_golden_outputs(tmp_path, golden, inputs) -> None:
    torch.set_num_threads(1)
    inc = load_fid_inception(save_seeded(FIDInceptionV3(), tmp_path / "pt_inception-2015-12-05-6726825d.pth"))
    with torch.no_grad():
        np.testing.assert_allclose(inc(inputs["inception"]).numpy(), golden["inception_pool3"], rtol=1e-4, atol=1e-5)
    r18 = load_arcface(save_seeded(IResNet(18), tmp_path / "backbone.pth"))
    assert r18.depth == 18
    with torch.no_grad():
        np.testing.assert_allclose(r18(inputs["iresnet"]).numpy(), golden["iresnet18_embedding"], rtol=1e-4, atol=1e-2)
    heads = find_net_weights("lpips-alex")
    if heads is None:
        pytest.skip("lpips heads not installed")
    alex_full = seeded_state_dict(AlexNetFeatures(), 0)
    # torchvision's file also holds the classifier: accepted (shapes checked), unused
    alex_full |= {k: torch.zeros(1).expand(*shape) for k, shape in {
        "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,), "classifier.4.weight": (4096, 4096),
        "classifier.4.bias": (4096,), "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)}.items()}
    torch.save(alex_full, tmp_path / "alexnet-owt-7be5be79.pth")
    lp = load_lpips_alex(tmp_path / "alexnet-owt-7be5be79.pth", heads)
    with torch.no_grad():
        np.testing.assert_allclose(lp(inputs["lpips_a"], inputs["lpips_b"]).numpy(), golden["lpips_dist"], rtol=1e-5)
        np.testing.assert_allclose(lp.net.features[:12](inputs["lpips_a"]).numpy()[:, :, :2, :2],
                                   golden["alexnet_relu5"], rtol=1e-4, atol=1e-5)


def test_i3d_matches_the_official_code(tmp_path, golden, inputs) -> None:
    torch.set_num_threads(1)
    i3d = load_i3d(save_seeded(InceptionI3d(), tmp_path / "i3d_pretrained_400.pt",
                               rename=lambda k: f"module.{k}"))  # DataParallel prefix stripped
    with torch.no_grad():
        np.testing.assert_allclose(i3d(inputs["i3d"]).numpy(), golden["i3d_logits"], rtol=1e-4, atol=1e-4)


def test_wrong_network_is_refused_with_its_name(tmp_path) -> None:
    inc = save_seeded(FIDInceptionV3(), tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match=r"holds inception-fid weights, not ArcFace"):
        load_arcface(inc)
    r18 = save_seeded(IResNet(18), tmp_path / "r18.pth")
    with pytest.raises(CheckpointError, match=r"holds arcface weights, not Inception-V3"):
        load_fid_inception(r18)
    from talkbench.critics.syncnet import SyncNetS

    sync = save_seeded(SyncNetS(width=0.1), tmp_path / "syncnet_v2.model")
    with pytest.raises(CheckpointError, match=r"holds syncnet weights, not I3D"):
        load_i3d(sync)
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match=r"unknown network"):
        load_fid_inception(tmp_path / "junk.pth")


def test_misshaped_official_layout_is_named(tmp_path) -> None:
    sd = seeded_state_dict(FIDInceptionV3(), 0)
    sd["Mixed_6b.branch7x7_2.conv.weight"] = torch.zeros(128, 128, 1, 5)
    torch.save(sd, tmp_path / "pt_inception-2015-12-05-bad.pth")
    with pytest.raises(CheckpointError, match=r"Mixed_6b\.branch7x7_2\.conv\.weight"):
        load_fid_inception(tmp_path / "pt_inception-2015-12-05-bad.pth")


def test_missing_weights_say_which_file_and_where(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path / "w"))
    with pytest.raises(MetricError, match=r"not available: put pt_inception-2015-12-05-6726825d\.pth .* in .*/w"):
        resolve_net_weights("inception-fid", None)
    (tmp_path / "w").mkdir()
    save_seeded(InceptionI3d(), tmp_path / "w" / "rgb_imagenet.pt")
    assert resolve_net_weights("i3d-kinetics400", None) == tmp_path / "w" / "rgb_imagenet.pt"
    with pytest.raises(MetricError, match="weights file not found"):
        resolve_net_weights("arcface", tmp_path / "nope.pth")


def test_arcface_alignment_puts_landmarks_on_the_template() -> None:
    from talkbench.metrics.nets.iresnet import ARCFACE_TEMPLATE, umeyama

    rng = np.random.default_rng(0)
    angle, scale, shift = 0.3, 1.7, np.array([20.0, -5.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = (ARCFACE_TEMPLATE - shift) @ np.linalg.inv(scale * rot).T  # template = scale*rot*src + shift
    m = umeyama(src, ARCFACE_TEMPLATE.astype(np.float64))
    np.testing.assert_allclose(src @ m[:2, :2].T + m[:2, 2], ARCFACE_TEMPLATE, atol=1e-4)
    img = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    assert align_arcface(img, src).shape == (112, 112, 3)


def test_doctor_lists_the_metric_networks(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from talkbench.cli import cli

    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path))
    (tmp_path / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"x")
    res = CliRunner().invoke(cli, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    w = json.loads(res.output)["metric_weights"]
    assert w["inception-fid"]["found"] == str(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    assert w["i3d-kinetics400"]["found"] is None and w["i3d-kinetics400"]["file"] == "i3d_pretrained_400.pt"
    assert w["arcface"]["file"] == "arcface_r100.pth"
    text = CliRunner().invoke(cli, ["doctor"]).output
    assert "alexnet-owt-7be5be79.pth" in text and "metric networks" in text


def test_alignment_transform_equals_skimage_similarity_transform() -> None:
    """insightface's norm_crop estimates the transform with skimage's SimilarityTransform: same result."""
    from skimage.transform import SimilarityTransform

    from talkbench.metrics.nets.iresnet import ARCFACE_TEMPLATE, umeyama

    rng = np.random.default_rng(1)
    for _ in range(5):
        src = ARCFACE_TEMPLATE * rng.uniform(0.5, 3) + rng.normal(0, 4, (5, 2)) + rng.uniform(0, 200, 2)
        ref = SimilarityTransform.from_estimate(src, ARCFACE_TEMPLATE)
        np.testing.assert_allclose(umeyama(src, ARCFACE_TEMPLATE.astype(np.float64)), ref.params, atol=1e-5)


def test_fvd_clip_sampling() -> None:
    from talkbench.metrics.nets.i3d import clip_starts

    assert clip_starts(15) == [] and clip_starts(16) == [0] and clip_starts(100) == [0]
    assert clip_starts(100, 16, 3) == [0, 42, 84]  # evenly spaced, the last ending at the last frame
    assert clip_starts(16, 16, 4) == [0]
