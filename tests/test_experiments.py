"""Experiments: context sweep (rows for every k, unsupported methods reported, metric-vs-k figure),
CALS's context limit (frame t ignores audio outside +-k), masked-span LMD against a hand computation,
ablation configs that differ only in their flags, a tiny ablation trained and evaluated end to end."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from talkbench.conditions import context_specs, parse_ks, with_condition_columns
from talkbench.errors import ConfigError
from talkbench.gencache import GenCache
from talkbench.methods import METHODS
from talkbench.methods.base import Method
from talkbench.types import GenResult, MethodCard
from tests.conftest import tiny_cals_config

TINY = tiny_cals_config()


class _NoContext(Method):
    """A method whose card cannot limit its audio context: the sweep runs it only at k=full."""

    card = MethodCard(name="noctx", version="1", native_size=0, supports=("mask",))

    def load(self, device: str = "cpu", weights=None) -> None:
        pass

    def generate(self, requests):
        assert all(r.context_frames is None for r in requests), "asked to honour a context it cannot"
        return [GenResult(r.sample_id, np.repeat(r.reference[None], r.num_frames, 0)) for r in requests]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from talkbench.datasets.synth.corpus import build_corpus

    return build_corpus("synth-lrs2", tmp_path_factory.mktemp("corpus"), clips=2, progress=False, workers=1,
                        splits=("train", "val", "test"))


@pytest.fixture(scope="module")
def tiny_cals(tmp_path_factory) -> Path:
    """A randomly initialised tiny CALS saved with cals.checkpoint (the shipped layout + card)."""
    from cals.checkpoint import export
    from cals.config import from_dict
    from cals.model import CALS

    torch.manual_seed(0)
    cfg = from_dict(TINY)
    path = tmp_path_factory.mktemp("w") / "cals-tiny.safetensors"
    export(CALS(cfg.model), cfg, path, {"command": "test", "data": "none", "seed": 0, "metrics": {}})
    return path


def _rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "results.sqlite") as c:
        return c.execute("SELECT method, sample_id, metric, value, error FROM results").fetchall()


def test_parse_ks_and_specs() -> None:
    assert parse_ks("5,0,full,2,2") == (0, 2, 5, "full")
    assert context_specs(["cals", "static"], (0, "full")) == ("cals@ctx=0", "cals@ctx=full", "static@ctx=0",
                                                               "static@ctx=full")
    for bad in ("-1", "x", ""):
        with pytest.raises(ConfigError):
            parse_ks(bad)
    with pytest.raises(ConfigError):
        context_specs(["cals@mask=3"], (1,))
    import pandas as pd

    df = with_condition_columns(pd.DataFrame({"method": ["cals@ctx=3", "cals@ctx=full", "cals@mask=7", "cals"]}))
    assert df["base"].tolist() == ["cals"] * 4 and df["k"].tolist()[:2] == [3.0, np.inf]
    assert np.isnan(df["k"].iloc[2]) and df["mask"].tolist() == [0, 0, 7, 0]


def test_context_sweep_rows_for_every_k_and_figure(corpus: Path, tiny_cals: Path, tmp_path: Path) -> None:
    from talkbench.experiments.sweep import context_sweep

    METHODS.register("noctx", _NoContext, override=True)
    from talkbench.experiments.report import build_experiment_report

    context_sweep(("cals", "noctx"), tmp_path / "sweep", ks="0,2,full", root=str(corpus), metrics=("psnr",),
                  weights=(("cals", str(tiny_cals)),), limit=2, progress=False, gen_cache=False, report=False)
    page = build_experiment_report(tmp_path / "sweep")
    rows = _rows(tmp_path / "sweep")
    psnr = {(m, s): v for m, s, metric, v, e in rows if metric == "psnr" and e is None}
    for k in ("0", "2", "full"):
        vals = [v for (m, _), v in psnr.items() if m == f"cals@ctx={k}"]
        assert len(vals) == 2 and all(np.isfinite(vals))
    refused = [r for r in rows if r[0] in ("noctx@ctx=0", "noctx@ctx=2")]
    assert len(refused) == 4 and all(r[2] == "__generate__" and "cannot honour the context" in r[4] for r in refused)
    assert len([v for (m, _), v in psnr.items() if m == "noctx@ctx=full"]) == 2  # full context: a normal run
    html = page.read_text()
    assert 'id="figure"' in html and "data:image/png;base64," in html and "noctx@ctx=0" in html
    md = (tmp_path / "sweep" / "report" / "experiment.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in table[1:]] == ["0", "2", "full"]
    assert "Not run" in md
    # The ±k cells are the per-k means of the store's rows.
    mean0 = np.mean([v for (m, _), v in psnr.items() if m == "cals@ctx=0"])
    assert f"{mean0:.3f}" in table[1]
    # Resuming does nothing new; the run's own report still lists every condition.
    again = context_sweep(("cals", "noctx"), tmp_path / "sweep", ks="0,2,full", root=str(corpus), metrics=("psnr",),
                          weights=(("cals", str(tiny_cals)),), limit=2, progress=False, report=False, gen_cache=False)
    assert again.run.pairs_done == 0 and again.run.pairs_skipped == 12
    with pytest.raises(ConfigError, match="another experiment"):
        from talkbench.experiments.sweep import mask_sweep

        mask_sweep(("cals",), tmp_path / "sweep", root=str(corpus), weights=(("cals", str(tiny_cals)),), limit=2,
                   progress=False)


def test_cals_context_k_ignores_audio_outside_the_window() -> None:
    """Paper Fig. 6 with a 6-layer Audio-to-Lip (attention limited per layer would leak 6k frames):
    frame t generated with ctx=k is unchanged when the audio outside [t-k, t+k] changes and changed
    when audio inside it does, at the unit level exactly and through the waveform with one frame of
    guard (the 400-sample mel windows of a frame's units reach 15 ms into its neighbours)."""
    from cals.audio import units_for
    from cals.config import from_dict
    from cals.inference import generate, lip_units_long
    from cals.model import CALS
    from talkbench.types import lower_half_masked

    torch.manual_seed(1)
    model = CALS(from_dict({**TINY, "model": {**TINY["model"], "layers": 6}}).model).eval()
    assert len(model.audio2lip.encoder.layers) == 6
    rng = np.random.default_rng(0)
    t_frames = 40
    units = torch.from_numpy(rng.standard_normal((t_frames, 80, 4)).astype(np.float32))
    for k, t in ((0, 20), (2, 20), (3, 4), (5, 33)):
        base = lip_units_long(model, units, context_k=k)
        other = torch.from_numpy(rng.standard_normal((t_frames, 80, 4)).astype(np.float32))
        lo, hi = max(0, t - k), t + k + 1
        other[lo:hi] = units[lo:hi]
        torch.testing.assert_close(lip_units_long(model, other, context_k=k)[t], base[t], atol=1e-5, rtol=1e-5)
        for j in (lo, t, min(t_frames, hi) - 1):  # any unit inside the window moves frame t
            inside = units.clone()
            inside[j] = torch.from_numpy(rng.standard_normal((80, 4)).astype(np.float32))
            assert (lip_units_long(model, inside, context_k=k)[t] - base[t]).abs().max() > 1e-4, (k, t, j)
        # Without the limit frame t hears the far audio (so the first check can fail).
        assert (lip_units_long(model, other)[t] - lip_units_long(model, units)[t]).abs().max() > 1e-4
    # Through the waveform and the renderer (which sees only lips[t], the reference and the pose prior).
    k, t = 3, 15
    audio = (0.2 * rng.standard_normal(30 * 640)).astype(np.float32)
    frames = rng.integers(0, 255, (30, 32, 32, 3), dtype=np.uint8)
    pose = lower_half_masked(frames)
    other = audio.copy()
    lo, hi = (t - k - 1) * 640, (t + k + 2) * 640
    other[:lo] = (0.2 * rng.standard_normal(lo)).astype(np.float32)
    other[hi:] = (0.2 * rng.standard_normal(len(other) - hi)).astype(np.float32)
    la, lb = lip_units_long(model, units_for(audio, 30), context_k=k), lip_units_long(model, units_for(other, 30), context_k=k)
    torch.testing.assert_close(la[t], lb[t], atol=1e-5, rtol=1e-5)
    assert (la[t - k - 2] - lb[t - k - 2]).abs().max() > 1e-3  # the replaced audio does reach other frames
    a = generate(model, audio, frames[0], pose, context_k=k)
    b = generate(model, other, frames[0], pose, context_k=k)
    assert np.abs(a[t].astype(int) - b[t].astype(int)).max() <= 1
    near = audio.copy()
    near[(t + k) * 640 : (t + k + 1) * 640] = (0.2 * rng.standard_normal(640)).astype(np.float32)
    assert (lip_units_long(model, units_for(near, 30), context_k=k)[t] - la[t]).abs().max() > 1e-4


def test_mask_sweep_span_lmd_by_hand_and_paired(corpus: Path, tiny_cals: Path, tmp_path: Path) -> None:
    from talkbench.datasets import DATASETS
    from talkbench.experiments.sweep import mask_sweep
    from talkbench.faces.crop import load_clip
    from talkbench.metrics.functional.landmarks import landmark_distance
    from talkbench.metrics.landmarks import _landmarks_pair

    res = mask_sweep(("cals", "static"), tmp_path / "mask", span=7, root=str(corpus),
                     weights=(("cals", str(tiny_cals)),), limit=2, progress=False)
    rows = {(m, s, metric): v for m, s, metric, v, e in _rows(tmp_path / "mask") if e is None}
    sample = next(iter(DATASETS.get("synth-lrs2")(str(corpus)).samples("test")))
    clip = load_clip(sample, size=128)
    gen = np.repeat(clip.frames[:1], clip.num_frames, 0)  # static: the reference frame repeated
    n = clip.num_frames
    inside = np.zeros(n, bool)
    inside[(n - 7) // 2 : (n - 7) // 2 + 7] = True
    gen_lm, ref_lm = _landmarks_pair(gen, clip.frames, "landmarks", clip.landmarks)
    assert rows[("static@mask=7", sample.sample_id, "lmd_span")] == pytest.approx(
        landmark_distance(gen_lm[inside], ref_lm[inside])[0], rel=1e-6)
    assert rows[("static@mask=7", sample.sample_id, "lmd_outside")] == pytest.approx(
        landmark_distance(gen_lm[~inside], ref_lm[~inside])[0], rel=1e-6)
    html = res.page.read_text()
    assert 'id="paired"' in html and "lmd_span" in html and "cals@mask=7" in html
    md = (tmp_path / "mask" / "report" / "experiment.md").read_text()
    assert "Paired differences" in md and "| lmd_span | cals@mask=7 | static@mask=7 | 2 |" in md
    assert "| Method | LMD in span ↓ | LMD outside ↓ |" in md  # label and direction from the stored metric infos


def test_ablation_configs_differ_exactly_in_the_flags() -> None:
    from cals.config import load_config
    from talkbench.experiments.ablation import VARIANTS, variant_config

    base = load_config("synth")

    def flat(cfg) -> dict:
        return {f"{s}.{k}": v for s, d in asdict(cfg).items() for k, v in d.items()}

    flats = {v: flat(variant_config(base, v)) for v in VARIANTS}
    flags = {"model.use_a2l", "loss.use_dav", "loss.use_dvv"}
    for a in VARIANTS:
        assert {k for k in flats[a] if flats[a][k] != flat(base)[k]} <= flags
        for b in VARIANTS:
            diff = {k for k in flats[a] if flats[a][k] != flats[b][k]}
            expected = {f for f in flags if VARIANTS[a][f.split(".")[1]] != VARIANTS[b][f.split(".")[1]]}
            assert diff == expected
    assert [flats[v]["model.use_a2l"] for v in VARIANTS] == [False, True, True, True]
    assert [flats[v]["loss.use_dav"] for v in VARIANTS] == [False, False, True, True]
    assert [flats[v]["loss.use_dvv"] for v in VARIANTS] == [False, False, False, True]
    with pytest.raises(ConfigError):
        variant_config(base, "+everything")


def test_table4_baseline_is_wav2lip_with_the_same_data_and_budget() -> None:
    """Row 1 of Table 4 is Wav2Lip (expert sync loss + quality discriminator) trained on the CALS
    config's data with its budget; the CALS U-Net without A2L is an extra, differently named row."""
    from cals.config import load_config, with_overrides
    from talkbench.experiments.ablation import ALL_VARIANTS, MARKS, method_name, wav2lip_config

    assert ALL_VARIANTS[0] == "baseline" and method_name("baseline") == "wav2lip-baseline"
    assert method_name("unet-baseline") == "cals-unet-baseline" and method_name("+dvv") == "cals+dvv"
    assert MARKS["baseline"] == {"baseline": True, "use_a2l": False, "use_dav": False, "use_dvv": False}
    assert MARKS["unet-baseline"]["baseline"] is False
    cfg = with_overrides(load_config("synth"), train={"max_clips": 77, "seed": 3, "root": "/data/x"})
    w = wav2lip_config(cfg, recipe={"width": 0.125, "face_box": [0.2, 0.06, 0.8, 0.66]})
    tc = cfg.train
    assert (w.dataset, w.root, w.split, w.max_clips, w.seed) == (tc.dataset, tc.root, tc.split, 77, 3)
    assert w.expert_steps == tc.sync_steps and w.generator_steps == tc.a2l_steps + tc.e2e_steps
    assert w.batch_size == tc.batch_size * tc.render_segments  # 5-frame windows: the frames CALS renders
    assert w.expert_batch_size == tc.batch_size * cfg.loss.segments and w.gan is True
    assert w.width == 0.125 and w.face_box == (0.2, 0.06, 0.8, 0.66)
    paper = wav2lip_config(load_config("lrs2"))
    assert paper.width == 1.0 and paper.batch_size == 16 and paper.gan  # official recipe at full size
    with pytest.raises(ConfigError, match="not allowed"):
        wav2lip_config(cfg, recipe={"generator_steps": 5})


@pytest.mark.slow
def test_tiny_ablation_trains_evaluates_and_resumes(corpus: Path, tmp_path: Path) -> None:
    from talkbench.experiments.ablation import ablate
    from talkbench.experiments.report import build_experiment_report

    cfg = json.loads(json.dumps(TINY))
    cfg["train"].update({"dataset": "synth-lrs2", "root": str(corpus), "batch_size": 1, "e2e_steps": 1,
                         "render_segments": 1})
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    cache = GenCache(root=tmp_path / "gc")
    variants = ("baseline", "unet-baseline", "+a2l")
    res = ablate(cfg_path, tmp_path / "abl", variants=variants, metrics=("psnr",), limit=1,
                 progress=False, gen_cache=cache, report=False)
    assert res.run.pairs_done == 3 and res.run.failures == 0
    build_experiment_report(tmp_path / "abl")
    w_base = tmp_path / "abl" / "train" / "baseline" / "weights.safetensors"
    card = json.loads(Path(w_base).with_suffix(".json").read_text())  # the Wav2Lip baseline, same budget
    assert card["variant"] == "baseline" and card["steps"] == {"expert": 2, "generator": 3}
    assert card["config"]["gan"] is True and card["data"]["dataset"] == "synth-lrs2"
    card_u = json.loads((tmp_path / "abl" / "train" / "unet-baseline" / "weights.json").read_text())
    assert card_u["flags"] == {"use_a2l": False, "use_dav": False, "use_dvv": False} and card_u["steps"]["sync"] == 0
    card2 = json.loads((tmp_path / "abl" / "train" / "a2l" / "weights.json").read_text())
    assert card2["config"]["model"]["use_a2l"] is True and card2["steps"]["a2l"] == 2
    assert 0 < card2["metrics"]["heldout_l1"] < 1  # as cals-synth's card has it, from the val split
    md = (tmp_path / "abl" / "report" / "experiment.md").read_text()
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| Variant | Baseline | A2L | d_av | d_vv | PSNR")
    assert lines[1].startswith("| baseline | ✓ | ✗ | ✗ | ✗ |") and lines[2].startswith("| unet-baseline | ✗ | ✗ | ✗ | ✗ |")
    assert lines[3].startswith("| +a2l | ✓ | ✓ | ✗ | ✗ |")
    psnr = {m: v for m, _, metric, v, _ in _rows(tmp_path / "abl") if metric == "psnr"}
    assert set(psnr) == {"wav2lip-baseline", "cals-unet-baseline", "cals+a2l"}
    assert len(set(psnr.values())) == 3
    variants = ("baseline", "+a2l")

    # A second evaluation of the same checkpoints in a new run directory: no training, no generation.
    mtime = w_base.stat().st_mtime_ns
    res2 = ablate(cfg_path, tmp_path / "abl2", variants=variants, metrics=("psnr",), limit=1,
                  progress=False, train=False, gen_cache=GenCache(root=tmp_path / "gc"), report=False,
                  weights={"baseline": str(w_base), "+a2l": str(tmp_path / "abl" / "train" / "a2l" / "weights.safetensors")})
    assert w_base.stat().st_mtime_ns == mtime
    rec = json.loads((tmp_path / "abl2" / "run.json").read_text())["gen_cache"]
    assert rec["hits"] == 2 and rec["misses"] == 0
    assert {m: v for m, _, metric, v, _ in _rows(tmp_path / "abl2") if metric == "psnr"} == {
        m: psnr[m] for m in ("wav2lip-baseline", "cals+a2l")}
    assert res2.experiment["weights"]["baseline"]["trained_here"] is False
    with pytest.raises(ConfigError, match="no checkpoint"):
        ablate(cfg_path, tmp_path / "abl3", variants=("+dav",), train=False, progress=False)


def test_cli_sweep_mask_and_usage_errors(corpus: Path, tmp_path: Path) -> None:
    from talkbench.cli import cli

    r = CliRunner().invoke(cli, ["sweep", "mask", "--methods", "static", "--root", str(corpus), "--limit", "1",
                                 "--span", "5", "--run-dir", str(tmp_path / "m"), "--no-gen-cache"])
    assert r.exit_code == 0, r.output
    assert "experiment page" in r.output and (tmp_path / "m" / "report" / "experiment.html").exists()
    assert json.loads((tmp_path / "m" / "run.json").read_text())["gen_cache"]["enabled"] is False
    r = CliRunner().invoke(cli, ["sweep", "context", "--methods", "static", "--k", "x", "--run-dir", str(tmp_path / "c")])
    assert r.exit_code == 2 and "--k expects" in r.output
    r = CliRunner().invoke(cli, ["ablate", "--variants", "baseline,+foo", "--run-dir", str(tmp_path / "a")])
    assert r.exit_code == 2 and "unknown ablation variant" in r.output
