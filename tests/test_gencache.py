"""Cross-run generation cache: a second run directory with the same method, weights and samples does
no generation (calls counted); new weights, new request options or ``gen_cache=False`` miss; cached
frames are the method's frames bit for bit; a damaged entry is regenerated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from talkbench.cache import sha256_file
from talkbench.gencache import GenCache
from talkbench.io.video import write_video
from talkbench.methods import METHODS
from talkbench.methods.base import Method
from talkbench.runner import RunConfig, run
from talkbench.types import GenResult, MethodCard
from tests.conftest import talking_frames, tone

CALLS: list[tuple[str, tuple[int, ...]]] = []


class _Counting(Method):
    """A deterministic 'generator' whose output depends on its weights file: the reference frame
    brightened by the file's first byte, shifted by the frame index. Counts generate calls."""

    card = MethodCard(name="counting", version="1", native_size=0, supports=("mask", "context"))

    def load(self, device: str = "cpu", weights=None) -> None:
        self.path = Path(weights)
        self.delta = self.path.read_bytes()[0]

    def weights_info(self) -> dict:
        return {"path": str(self.path), "sha256": sha256_file(self.path)}

    def generate(self, requests):
        out = []
        for r in requests:
            CALLS.append((r.sample_id, r.mask_frames))
            t = np.arange(r.num_frames, dtype=np.int32)[:, None, None, None]
            frames = (r.reference[None].astype(np.int32) + self.delta + 3 * t) % 256
            out.append(GenResult(r.sample_id, frames.astype(np.uint8)))
        return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gcds")
    for i, dx in enumerate((0.5, -0.5)):
        write_video(root / f"clip{i}.mp4", talking_frames(12, dx=dx), tone(0.5, freq=200 + 60 * i))
    METHODS.register("counting", _Counting, override=True)
    return root


def _weights(tmp: Path, name: str, first: int) -> Path:
    p = tmp / name
    p.write_bytes(bytes([first]) + b"weights")
    return p


def _cfg(root: Path, weights: Path, methods=("counting",)) -> RunConfig:
    return RunConfig(methods=methods, dataset="folder", root=str(root), split="all", metrics=("psnr",),
                     weights=(("counting", str(weights)),), include_gt=False, crop="none")


def _psnr(run_dir: Path) -> dict[tuple[str, str], float]:
    with sqlite3.connect(run_dir / "results.sqlite") as c:
        return {(m, s): v for m, s, v in c.execute("SELECT method, sample_id, value FROM results WHERE metric='psnr'")}


def test_second_run_hits_and_new_weights_miss(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "gencache"
    w1 = _weights(tmp_path, "w1.bin", 10)
    CALLS.clear()
    run(_cfg(dataset, w1), tmp_path / "a", progress=False, gen_cache=GenCache(root=cache))
    assert len(CALLS) == 2
    rec_a = json.loads((tmp_path / "a" / "run.json").read_text())["gen_cache"]
    assert (rec_a["hits"], rec_a["misses"], rec_a["stored"]) == (0, 2, 2)

    CALLS.clear()
    run(_cfg(dataset, w1), tmp_path / "b", progress=False, gen_cache=GenCache(root=cache))
    assert CALLS == []  # a different run directory, same method/weights/samples: nothing generated
    rec_b = json.loads((tmp_path / "b" / "run.json").read_text())["gen_cache"]
    assert (rec_b["hits"], rec_b["misses"]) == (2, 0)
    assert _psnr(tmp_path / "a") == _psnr(tmp_path / "b")  # lossless: the same scores

    # Same weights at another path: still a hit (keyed by content, not by path).
    CALLS.clear()
    w1_copy = tmp_path / "copy" / "w1.bin"
    w1_copy.parent.mkdir()
    w1_copy.write_bytes(w1.read_bytes())
    run(_cfg(dataset, w1_copy), tmp_path / "b2", progress=False, gen_cache=GenCache(root=cache))
    assert CALLS == []

    CALLS.clear()
    w2 = _weights(tmp_path, "w2.bin", 90)
    run(_cfg(dataset, w2), tmp_path / "c", progress=False, gen_cache=GenCache(root=cache))
    assert len(CALLS) == 2  # new weights sha256: regenerated
    assert _psnr(tmp_path / "c") != _psnr(tmp_path / "a")


def test_request_options_are_part_of_the_key(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "gencache"
    w = _weights(tmp_path, "w.bin", 5)
    run(_cfg(dataset, w), tmp_path / "a", progress=False, gen_cache=GenCache(root=cache))
    CALLS.clear()
    run(_cfg(dataset, w, ("counting", "counting@mask=3", "counting@ctx=2")), tmp_path / "b", progress=False,
        gen_cache=GenCache(root=cache))
    # the plain condition hits; the masked and context-limited requests are new generations
    assert sorted(m for _, m in CALLS) == [(), (), (4, 5, 6), (4, 5, 6)]


def test_disabled_cache_and_damaged_entries(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "gencache"
    w = _weights(tmp_path, "w.bin", 7)
    run(_cfg(dataset, w), tmp_path / "a", progress=False, gen_cache=GenCache(root=cache))
    CALLS.clear()
    run(_cfg(dataset, w), tmp_path / "b", progress=False, gen_cache=False)
    assert len(CALLS) == 2
    assert json.loads((tmp_path / "b" / "run.json").read_text())["gen_cache"]["enabled"] is False
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == 2
    entries[0].write_bytes(b"not a zip")
    CALLS.clear()
    run(_cfg(dataset, w), tmp_path / "c", progress=False, gen_cache=GenCache(root=cache))
    assert len(CALLS) == 1  # the damaged entry regenerated, the other one read
    assert _psnr(tmp_path / "c") == _psnr(tmp_path / "a")
    with np.load(entries[0]) as z:  # and rewritten whole
        assert tuple(z["shape"]) == (12, 128, 128, 3) and z["ffv1"].dtype == np.uint8


def test_ffv1_entries_are_bit_exact_and_smaller(tmp_path: Path) -> None:
    from talkbench.gencache import decode_frames, encode_frames

    rng = np.random.default_rng(3)
    faces = talking_frames(20, size=128)
    noise = rng.integers(0, 256, (5, 33, 47, 3), dtype=np.uint8)  # odd sizes, incompressible
    for frames in (faces, noise, faces[:1]):
        data = encode_frames(frames)
        back = decode_frames(data, frames.shape)
        assert back.dtype == np.uint8 and np.array_equal(back, frames)
    gc = GenCache(root=tmp_path)
    gc.put("ab" * 32, faces)
    old = tmp_path / "old.npz"
    np.savez_compressed(old, frames=faces)  # the previous layout
    assert gc.path("ab" * 32).stat().st_size < 0.6 * old.stat().st_size
    assert np.array_equal(gc.get("ab" * 32), faces)
    with pytest.raises(ValueError, match="stored shape"):
        decode_frames(encode_frames(faces), (21, 128, 128, 3))


def test_entries_written_before_ffv1_are_still_read(tmp_path: Path) -> None:
    faces = talking_frames(6, size=64)
    gc = GenCache(root=tmp_path)
    p = gc.path("cd" * 32)
    p.parent.mkdir(parents=True)
    np.savez_compressed(p, frames=faces, meta=np.array("{}"))
    assert np.array_equal(gc.get("cd" * 32), faces) and gc.stats["hits"] == 1


def test_methods_without_weights_hash_are_not_cached(dataset: Path, tmp_path: Path) -> None:
    gc = GenCache(root=tmp_path / "gencache")
    run(RunConfig(methods=("static",), dataset="folder", root=str(dataset), split="all", metrics=("psnr",),
                  crop="none"), tmp_path / "s", progress=False, gen_cache=gc)
    assert gc.stats["hits"] == gc.stats["stored"] == 0 and set(gc.stats["uncached"]) == {"gt", "static"}
    assert not list((tmp_path / "gencache").rglob("*.npz"))
