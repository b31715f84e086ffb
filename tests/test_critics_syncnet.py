"""SyncNet layout and LSE agreement with syncnet_python's own ``SyncNetInstance.evaluate``
(PyPI ``syncnet-python``, installed with --no-deps; its modules are loaded by file so its package
``__init__`` (scenedetect, ffmpeg) is not needed), on the same frames, audio and weights."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from talkbench.critics.syncnet import SyncNetS, load_syncnet
from talkbench.errors import CheckpointError, MetricError
from talkbench.metrics import METRICS
from talkbench.metrics.base import ScoreInput
from talkbench.metrics.functional.sync import lse, lse_from_embeddings, offset_distances

OFFICIAL_KEYS = {
    "netcnnaud.0.weight": (64, 1, 3, 3), "netcnnaud.18.weight": (512, 256, 5, 4),
    "netfcaud.3.weight": (1024, 512), "netcnnlip.0.weight": (96, 3, 5, 7, 7),
    "netcnnlip.4.weight": (256, 96, 1, 5, 5), "netcnnlip.18.weight": (512, 256, 1, 6, 6),
    "netfclip.1.running_var": (512,),
}


def _reference_module():
    spec = importlib.util.find_spec("syncnet_python")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("syncnet-python is not installed (pip install --no-deps syncnet-python==0.2.3)")
    root = Path(next(iter(spec.submodule_search_locations)))
    pkg = types.ModuleType("snp_ref")
    pkg.__path__ = [str(root)]
    sys.modules.setdefault("snp_ref", pkg)
    mods = {}
    for name in ("SyncNetModel", "SyncNetInstance"):
        s = importlib.util.spec_from_file_location(f"snp_ref.{name}", root / f"{name}.py")
        m = importlib.util.module_from_spec(s)
        sys.modules[s.name] = m
        s.loader.exec_module(m)
        mods[name] = m
    return mods


@pytest.fixture(scope="module")
def official_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = SyncNetS()
    # Give BatchNorm non-trivial running statistics so eval-mode arithmetic is exercised.
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("w") / "syncnet_v2.model"
    sd = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, path)  # a plain tensor state dict, like the official file
    return path


def test_official_layout_loads_strictly(official_file: Path) -> None:
    sd = torch.load(official_file, weights_only=True)
    for k, shape in OFFICIAL_KEYS.items():
        assert tuple(sd[k].shape) == shape
    model = load_syncnet(official_file)
    assert torch.equal(model.state_dict()["netcnnlip.0.weight"], sd["netcnnlip.0.weight"])


def test_bad_checkpoints_are_reported(tmp_path: Path, official_file: Path) -> None:
    sd = torch.load(official_file, weights_only=True)
    sd.pop("netfclip.3.bias")
    sd["extra.weight"] = torch.zeros(1)
    sd["netcnnaud.0.weight"] = torch.zeros(64, 1, 5, 5)
    torch.save(sd, tmp_path / "bad.model")
    with pytest.raises(CheckpointError) as err:
        load_syncnet(tmp_path / "bad.model")
    msg = str(err.value)
    assert "netfclip.3.bias" in msg and "extra.weight" in msg and "netcnnaud.0.weight" in msg

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.model")
    with pytest.raises(CheckpointError, match="code execution"):
        load_syncnet(tmp_path / "evil.model")


def test_whole_clip_lip_pass_equals_windowed() -> None:
    torch.manual_seed(1)
    model = SyncNetS(width=0.25).eval()
    clip = torch.rand(3, 12, 224, 224) * 255
    with torch.no_grad():
        windows = torch.stack([clip[:, i : i + 5] for i in range(8)])
        ref = model.forward_lip(windows)
        ours = model.lip_embeddings(clip, chunk=3)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_offsets_as_one_tensor_op_equal_calc_pdist() -> None:
    ref = _reference_module()["SyncNetInstance"]
    vid, aud = torch.randn(20, 16), torch.randn(20, 16)
    dists = ref.calc_pdist(vid, aud, vshift=15)
    torch.testing.assert_close(offset_distances(vid, aud, 15), torch.stack(dists), atol=1e-5, rtol=1e-6)


def test_lse_agrees_with_syncnet_python_evaluate(tmp_path: Path, official_file: Path, real_data: Path) -> None:
    from scipy.io import wavfile

    from talkbench.io.audio import load_audio
    from talkbench.io.video import read_video

    mods = _reference_module()
    video = real_data / "videos" / "vox_00086.mp4"  # a 224x224 face-centred crop, as evaluate expects
    frames = read_video(video)[:40]
    audio = load_audio(video, 16000)[: 40 * 640]
    work = tmp_path / "work"
    work.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(work / f"{i + 1:06d}.jpg"), f[:, :, ::-1])
    wavfile.write(work / "audio.wav", 16000, np.round(audio * 32767).astype(np.int16))
    # Feed both implementations the same decoded JPEGs and the same int16 samples.
    bgr = np.stack([cv2.imread(str(work / f"{i + 1:06d}.jpg")) for i in range(len(frames))])
    _, pcm = wavfile.read(work / "audio.wav")

    net = mods["SyncNetModel"].S()
    net.load_state_dict(torch.load(official_file, weights_only=True), strict=False)
    inst = mods["SyncNetInstance"].SyncNetInstance(net, device="cpu")
    opt = types.SimpleNamespace(tmp_dir=str(work), batch_size=20, vshift=15)
    ref_offset, ref_conf, ref_dist = inst.evaluate(opt)

    ours = lse(load_syncnet(official_file), bgr, pcm.astype(np.float64), vshift=15)
    assert ours.av_offset == ref_offset
    # The tolerance docs/critics.md states: float32 rounding (the reference embeds 20 windows per batch,
    # ours all in one pass): 1e-6 measured on an AVX512 CPU, 1.9e-6 on an AMD EPYC without it.
    assert abs(ours.lse_d - ref_dist) <= 5e-6
    assert abs(ours.lse_c - ref_conf) <= 5e-6
    assert ours.windows == 40 - 5


def test_valid_variant_excludes_edges() -> None:
    vid = torch.zeros(3, 4)
    aud = torch.zeros(3, 4)
    quirky = lse_from_embeddings(vid + 1, aud + 1, vshift=2)
    valid = lse_from_embeddings(vid + 1, aud + 1, vshift=2, quirks=False)
    assert valid.lse_d == pytest.approx(2e-6, abs=1e-6)  # only real pairs: identical embeddings
    assert quirky.mean_dists[0] > 0.5  # the edge offsets saw zero vectors


def test_scorer_names_its_critic_and_rejects_bad_items(official_file: Path, talking_clip: Path) -> None:
    from talkbench.faces.crop import load_clip
    from talkbench.types import Sample

    scorer = METRICS.get("lse")(weights=official_file)
    prov = scorer.provenance()
    assert prov["syncnet"]["sha256"] and scorer.outputs[0].version.startswith("syncnet-")
    clip = load_clip(Sample("folder", "t", "t", talking_clip), size=96, landmarks=False)
    out = scorer.score(ScoreInput("t", clip.frames, clip.audio))
    assert out["lse_frames_scored"] == 20 and np.isfinite(out["lse_d"]) and -15 <= out["av_offset"] <= 15
    with pytest.raises(MetricError, match="too short"):
        scorer.score(ScoreInput("t", clip.frames[:4], clip.audio))
    with pytest.raises(MetricError, match="silent"):
        scorer.score(ScoreInput("t", clip.frames, np.zeros_like(clip.audio)))
