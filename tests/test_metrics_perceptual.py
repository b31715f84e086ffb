"""LPIPS equals the ``lpips`` package's formula (its own ``LPIPS`` module and shipped heads) on fixed
inputs; the backbone is handed to it through a stand-in ``torchvision`` (not installable here)."""

from __future__ import annotations

import importlib
import sys
import types

import pytest
import torch

from talkbench.metrics.functional.perceptual import lpips_from_features, normalize_channels
from talkbench.metrics.nets.alexnet import AlexNetFeatures, LPIPSAlex, load_lpips_alex
from talkbench.metrics.nets.weights import find_net_weights, save_seeded, seeded_state_dict


@pytest.fixture
def official_lpips(monkeypatch):
    """The installed lpips package, importing a stand-in torchvision whose alexnet() is ours with
    seeded weights (torchvision's layout, so lpips slices it exactly as it slices torchvision's)."""
    if importlib.util.find_spec("lpips") is None:
        pytest.skip("lpips is not installed (pip install --no-deps lpips)")
    trunk = AlexNetFeatures()
    trunk.load_state_dict(seeded_state_dict(trunk, 0))
    tv = types.ModuleType("torchvision")
    tv.models = types.SimpleNamespace(alexnet=lambda *a, **k: trunk)
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", tv.models)
    for name in [m for m in sys.modules if m == "lpips" or m.startswith("lpips.")]:
        monkeypatch.delitem(sys.modules, name)
    lpips = importlib.import_module("lpips")
    return lpips, trunk


def test_lpips_formula_equals_the_package(official_lpips, tmp_path) -> None:
    lpips, trunk = official_lpips
    ref = lpips.LPIPS(net="alex", pretrained=True, verbose=False).eval()
    g = torch.Generator().manual_seed(7)
    a = torch.rand(4, 3, 64, 64, generator=g) * 2 - 1
    b = (a + 0.2 * torch.randn(4, 3, 64, 64, generator=g)).clamp(-1, 1)
    heads = find_net_weights("lpips-alex")
    assert heads is not None and heads.name == "alex.pth"
    trunk_file = save_seeded(AlexNetFeatures(), tmp_path / "alexnet-owt-7be5be79.pth")
    ours = load_lpips_alex(trunk_file, heads)
    with torch.no_grad():
        want = ref(a, b).flatten()
        got = ours(a, b)
        # the pure function on the package's own features and heads
        outs_a, outs_b = ref.net(ref.scaling_layer(a)), ref.net(ref.scaling_layer(b))
        pure = lpips_from_features(list(outs_a), list(outs_b), [lin.model[1].weight for lin in ref.lins])
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), (got, want)
    assert torch.allclose(pure, want, rtol=1e-6, atol=1e-8)
    assert torch.allclose(ours(a, a), torch.zeros(4), atol=1e-7)
    assert torch.allclose(normalize_channels(outs_a[0]), lpips.normalize_tensor(outs_a[0]))


def test_lpips_is_symmetric_and_grows_with_distortion() -> None:
    m = LPIPSAlex()
    m.load_state_dict(seeded_state_dict(m, 0), strict=False)
    g = torch.Generator().manual_seed(3)
    a = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    noise = torch.randn(2, 3, 64, 64, generator=g)
    with torch.no_grad():
        d1, d2 = m(a, (a + 0.05 * noise).clamp(-1, 1)), m(a, (a + 0.5 * noise).clamp(-1, 1))
        assert torch.allclose(m(a, a + 0.05 * noise), m(a + 0.05 * noise, a), rtol=1e-5)
    assert (d2 > d1).all() and (d1 > 0).all()
