"""Golden vectors: our SyncTalkFace models against the authors' model definitions (jinny960812/SyncTalkFace
commit 9d5d08db, ``models/*.py``), both filled with the same seeded weights and fed the same seeded
inputs; the authors' outputs are in ``tests/fixtures/synctalkface_golden.npz`` (how they were made:
``tests/fixtures/synctalkface_golden.md``)."""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURE = Path(__file__).parent / "fixtures" / "synctalkface_golden.npz"


def fill_rule(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Deterministic weights from the key names alone: each tensor from a generator seeded with the
    CRC-32 of its key; convolution/linear weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1^2), batch-norm
    scale 1 + N(0, 0.1^2), running mean N(0, 0.1^2), running variance U(0.5, 1.5), memory slots N(0, 0.5^2)."""
    out = {}
    for k, v in sd.items():
        g = torch.Generator().manual_seed(zlib.crc32(k.encode()))
        shape = tuple(v.shape)
        if k.endswith("num_batches_tracked"):
            out[k] = torch.zeros_like(v)
        elif k.endswith("running_var"):
            out[k] = 0.5 + torch.rand(shape, generator=g)
        elif k.endswith("running_mean") or k.endswith("bias"):
            out[k] = 0.1 * torch.randn(shape, generator=g)
        elif k in ("mem.key", "mem.value", "key", "value"):
            out[k] = 0.5 * torch.randn(shape, generator=g)
        elif len(shape) == 1:  # batch-norm scale
            out[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[k] = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
    return out


def golden_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(20221004)
    return {"indiv_mels": torch.randn(1, 5, 1, 80, 16, generator=g),
            "faces": torch.rand(1, 6, 5, 128, 128, generator=g) * 2 - 1,
            "lip": torch.rand(1, 5, 3, 5, 128, 128, generator=g) * 2 - 1,
            "mel": torch.randn(1, 1, 80, 16, generator=g),
            "sync_face": torch.rand(1, 15, 64, 128, generator=g)}


def summarize(name: str, g: torch.Tensor) -> dict[str, np.ndarray]:
    """A (1, 3, 5, 128, 128) output kept small: every 8th pixel and per-frame channel means."""
    return {f"{name}_sub": g[..., ::8, ::8].numpy().astype(np.float32),
            f"{name}_means": g.mean(dim=(3, 4)).numpy().astype(np.float32)}


@pytest.mark.slow
def test_our_models_reproduce_the_authors_outputs() -> None:
    from baselines.synctalkface.model import (
        QualityDiscriminator128,
        SyncNet128,
        SyncTalkFaceDecoder,
        SyncTalkFaceGenerator,
    )
    from baselines.synctalkface.train import frames_of, windows_of

    if not FIXTURE.exists():
        pytest.skip("golden fixture missing")
    want = dict(np.load(FIXTURE))
    torch.set_num_threads(1)
    gen, dec = SyncTalkFaceGenerator().eval(), SyncTalkFaceDecoder().eval()
    disc, sync = QualityDiscriminator128().eval(), SyncNet128().eval()
    for m in (gen, dec, disc, sync):
        m.load_state_dict(fill_rule(m.state_dict()))
    x = golden_inputs()
    with torch.no_grad():
        mem, feats = gen(x["indiv_mels"].flatten(0, 1), frames_of(x["faces"]), x["lip"].flatten(0, 1))
        g = windows_of(dec(mem.te_fusion, feats), 1)
        mem_i, feats_i = gen(x["indiv_mels"].flatten(0, 1), frames_of(x["faces"]))
        g_i = windows_of(dec(mem_i.te_fusion, feats_i), 1)
        a, v = sync(x["mel"], x["sync_face"])
        d = disc(frames_of(g))
    got = {"te_fusion": mem.te_fusion, "tr_fusion": mem.tr_fusion, "key_add": mem.key_add, "value_add": mem.value_add,
           "recon_loss": mem.recon_loss, "add_loss": mem.add_loss, "lip_centre": mem.lip[2:3],
           "infer_key_add": mem_i.key_add, "sync_audio": a, "sync_face": v, "disc": d}
    got = {k: t.numpy() for k, t in got.items()}
    got |= summarize("decoder", g) | summarize("decoder_inference", g_i)
    assert set(got) == set(want)
    for k in want:
        scale = max(1e-3, float(np.abs(want[k]).max()))
        np.testing.assert_allclose(got[k].reshape(want[k].shape), want[k], rtol=1e-4, atol=1e-4 * scale, err_msg=k)
