"""ATVGnet: the official key layout, golden vectors from the official model definitions, strict loading."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.atvgnet.checkpoint import load_atvgnet, load_official_net
from baselines.atvgnet.model import ATNet, VGNet
from talkbench.errors import CheckpointError

FIX = Path(__file__).parent / "fixtures" / "atvgnet"
LAYOUT = json.loads((FIX / "official-layout.json").read_text())["files"]


def seeded(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The weight rule of the fixture's README (independent of the model code)."""
    rs = np.random.RandomState(zlib.crc32(key.encode()))
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, np.int64)
    if key.endswith("running_var"):
        return rs.uniform(0.5, 1.5, shape).astype(np.float32)
    if key.endswith("running_mean"):
        return (0.1 * rs.randn(*shape)).astype(np.float32)
    if len(shape) == 1:
        return ((1.0 if key.endswith(".weight") else 0.0) + 0.1 * rs.randn(*shape)).astype(np.float32)
    return (rs.randn(*shape) / np.sqrt(int(np.prod(shape[1:])))).astype(np.float32)


def official_file(tmp: Path, name: str) -> Path:
    """A file in the official format: DataParallel keys of the layout, seeded values, torch.save."""
    sd = {k: torch.from_numpy(seeded(k[len("module."):], tuple(s))) for k, s in LAYOUT[name].items()}
    path = tmp / name
    torch.save(sd, path)
    return path


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> tuple[ATNet, VGNet, Path]:
    tmp = tmp_path_factory.mktemp("atvgnet")
    at = load_official_net(official_file(tmp, "atnet_lstm_18.pth"), ATNet())
    vg = load_official_net(official_file(tmp, "generator_23.pth"), VGNet())
    return at, vg, tmp


@pytest.mark.parametrize("name,cls", [("atnet_lstm_18.pth", ATNet), ("generator_23.pth", VGNet)])
def test_keys_and_shapes_are_the_official_ones(name: str, cls: type) -> None:
    own = {"module." + k: list(v.shape) for k, v in cls().state_dict().items()}
    assert own == LAYOUT[name]
    assert any("audio_eocder" in k for k in LAYOUT["atnet_lstm_18.pth"])


@pytest.mark.slow  # two full-size official networks (~60M parameters)
def test_golden_vectors(official: tuple[ATNet, VGNet, Path]) -> None:
    at, vg, _ = official
    g = np.load(FIX / "golden.npz")
    image = g["image_u8"].astype(np.float32) / 127.5 - 1.0
    with torch.no_grad():
        coefs = at(torch.from_numpy(g["coefs"]), torch.from_numpy(g["mfcc"])).numpy()
        out, att, color, latt = (x.numpy() for x in vg(torch.from_numpy(image), torch.from_numpy(g["lmarks"]),
                                                        torch.from_numpy(g["ex_lmark"])))
        out_b1 = vg(torch.from_numpy(image[1:]), torch.from_numpy(g["lmarks"][1:]), torch.from_numpy(g["ex_lmark"][1:]))[0].numpy()
    np.testing.assert_allclose(coefs, g["at_out"], atol=1e-4)
    np.testing.assert_allclose(out[..., ::4, ::4], g["out"], atol=1e-4)
    np.testing.assert_allclose(att[..., ::4, ::4], g["att"], atol=1e-4)
    np.testing.assert_allclose(color[..., ::4, ::4], g["color"], atol=1e-4)
    np.testing.assert_allclose(latt, g["lmark_att"], atol=1e-4)
    # the conv-GRU runs over the batch axis (official quirk): clip 2 alone differs from clip 2 after clip 1
    np.testing.assert_allclose(out_b1[..., ::4, ::4], g["out_b1"], atol=1e-4)
    assert np.abs(g["out_b1"][0] - g["out"][1]).max() > 1e-3


def test_wrong_key_spelling_is_named(tmp_path: Path) -> None:
    sd = torch.load(official_file(tmp_path, "atnet_lstm_18.pth"), weights_only=True)
    bad = {k.replace("audio_eocder", "audio_encoder"): v for k, v in sd.items()}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as e:
        load_official_net(tmp_path / "bad.pth", ATNet())
    msg = str(e.value)
    assert "audio_eocder.0.0.weight" in msg and "audio_encoder.0.0.weight" in msg and "bad.pth" in msg


class Payload:
    """Unpickling this needs code from this module."""


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    torch.save({"module.base.0.weight": Payload()}, tmp_path / "generator_23.pth")
    with pytest.raises(CheckpointError, match="code execution"):
        load_official_net(tmp_path / "generator_23.pth", VGNet())


@pytest.mark.slow
def test_missing_basis_files_are_named(official: tuple[ATNet, VGNet, Path]) -> None:
    *_, folder = official
    with pytest.raises(CheckpointError) as e:
        load_atvgnet(folder)
    assert "U_lrw1.npy" in str(e.value) and "base_68_close.npy" in str(e.value) and "S.npy" in str(e.value)
    for f in ("U_lrw1.npy", "mean_lrw1.npy", "base_68.npy", "base_68_close.npy", "mean_shape_img.npy"):
        np.save(folder / f, np.zeros((136, 10) if f.startswith("U") else (68, 2)))
    with pytest.raises(CheckpointError) as e:
        load_atvgnet(folder)
    assert "mean_shape_norm.npy" in str(e.value) and "S.npy" in str(e.value) and "U_lrw1" not in str(e.value)


@pytest.mark.slow
def test_official_folder_runs_through_the_method(official: tuple[ATNet, VGNet, Path], tmp_path: Path) -> None:
    """The official layout end to end: both .pth files + basics/*.npy -> the registered method."""
    import shutil

    from talkbench.methods import METHODS
    from talkbench.types import GenRequest, lower_half_masked
    from tests.test_atvgnet_pipeline import _dlib_points, protocol_crop

    *_, src = official
    folder = tmp_path / "atvgnet"
    (folder / "basics").mkdir(parents=True)
    for f in ("atnet_lstm_18.pth", "generator_23.pth"):
        shutil.copy(src / f, folder / f)
    ref = protocol_crop()
    pts = _dlib_points(ref)
    rs = np.random.RandomState(0)
    u, _ = np.linalg.qr(rs.randn(136, 136))
    b = folder / "basics"
    np.save(b / "U_lrw1.npy", u.astype(np.float32))
    np.save(b / "mean_lrw1.npy", (0.1 * rs.randn(136)).astype(np.float32))
    template = (pts - pts.mean(0)) * 0.9 + np.array([65.0, 70.0])
    np.save(b / "base_68.npy", template)
    np.save(b / "base_68_close.npy", template)
    np.save(b / "mean_shape_img.npy", pts)
    np.save(b / "mean_shape_norm.npy", (0.05 * rs.randn(68, 2)))
    np.save(b / "S.npy", np.linalg.qr(rs.randn(136, 100))[0].T)
    m = METHODS.get("atvgnet")()
    m.load("cpu", folder)
    assert m.net is not None and m.net.exaggerate and m.net.space.kind == "official"
    frames = np.repeat(ref[None], 4, 0)
    out = m.generate([GenRequest("s", ref, lower_half_masked(frames), np.zeros(4 * 640, np.float32))])[0]
    assert out.ok and out.frames.shape == (4, 128, 128, 3), out.error
    info = m.weights_info()
    assert len(info["sha256"]) == 64 and len(info["files"]) == 2
