"""Real clips in the on-disk layouts of LRS2, LRW and HDTF, through the CLI (issue 24): a synthetic-domain
critic never scores real faces silently, ``score --run-dir`` reproduces a run's numbers exactly, words
outside a word-subset lip reader's vocabulary are not failures, and cropping needs no audio.

The trees are built from ``../shared/data/real`` (short cuts of real talking clips, re-encoded as
the datasets ship them: H.264 + AAC mp4 with the metadata files beside them)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from talkbench.cli import cli
from talkbench.io.audio import load_audio
from talkbench.io.video import read_video, write_video
from talkbench.weights import read_card, shipped_weights

FRAMES = 20  # 0.8 s: enough windows for LSE, few frames to crop


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _no_official_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty $TALKBENCH_WEIGHTS: only the shipped synthetic critics exist."""
    empty = tmp_path / "official-weights"
    empty.mkdir()
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(empty))
    if shipped_weights("syncnet-synth") is None or shipped_weights("lipreader-synth") is None:
        pytest.skip("shipped synthetic critics not present")


@pytest.fixture(scope="session")
def cuts(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(frames, 16 kHz audio) of the first frames of three real clips (224x224, 25 fps)."""
    out = {}
    for name in ("vox_00015", "vox_00086", "vox_00373"):
        path = real_data / "videos" / f"{name}.mp4"
        frames = read_video(path)[:FRAMES]
        out[name] = (frames, load_audio(path, 16000)[: FRAMES * 640])
    return out


def put(path: Path, clip: tuple[np.ndarray, np.ndarray], size: int | None = None, audio: bool = True) -> Path:
    frames, sound = clip
    if size is not None:
        frames = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames, sound if audio else None, fps=25)


def lrs2_tree(root: Path, cuts: dict, size: int | None, split_in_parent: bool) -> Path:
    """``mvlrs_v1/main/<video_id>/<clip>.{mp4,txt}`` and ``test.txt`` (in mvlrs_v1 or beside it)."""
    base = root / "mvlrs_v1"
    lines = []
    for i, name in enumerate(("vox_00015", "vox_00086")):
        rel = f"60{i}1234567890123456/0000{i + 1}"
        put(base / "main" / f"{rel}.mp4", cuts[name], size)
        (base / "main" / f"{rel}.txt").write_text("Text:  HELLO WORLD\nConf:  4\n")
        lines.append(f"{rel} NF")
    (root if split_in_parent else base).joinpath("test.txt").write_text("\n".join(lines) + "\n")
    return root


def store(run_dir: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(run_dir / "results.sqlite") as c:
        return c.execute(sql).fetchall()


def test_lse_refused_on_lrs2_with_only_the_synthetic_critic(tmp_path: Path, cuts: dict) -> None:
    root = lrs2_tree(tmp_path / "lrs2", cuts, size=None, split_in_parent=False)
    run_dir = tmp_path / "run"
    res = invoke("run", "--methods", "static", "--dataset", "lrs2", "--root", root, "--metrics", "psnr,lse",
                 "--limit", "1", "--no-report", "--run-dir", run_dir)
    assert res.exit_code == 1, res.output
    assert "metric lse NOT computed: refused on lrs2" in res.output
    assert "syncnet-synth.safetensors" in res.output and "syncnet_v2.model in $TALKBENCH_WEIGHTS" in res.output
    assert "--allow-synthetic-critics" in res.output
    record = json.loads((run_dir / "run.json").read_text())
    assert "syncnet_v2.model" in record["metrics_unavailable"]["lse"] and "lse" not in record["metrics"]
    assert store(run_dir, "SELECT DISTINCT metric FROM results WHERE metric NOT LIKE '%identical%'") == [("psnr",)]
    # Resuming with the flag: the metric became available, so the pairs done without it are scored again.
    res = invoke("run", "--methods", "static", "--dataset", "lrs2", "--root", root, "--metrics", "psnr,lse",
                 "--limit", "1", "--no-report", "--run-dir", run_dir, "--allow-synthetic-critics")
    assert res.exit_code == 0 and "retried: 2" in res.output, res.output
    assert store(run_dir, "SELECT method FROM results WHERE metric='lse_c' ORDER BY 1") == [("gt",), ("static",)]
    # Only refused metrics: a configuration error, and no run directory is left behind.
    alone = tmp_path / "run-lse"
    res = invoke("run", "--methods", "static", "--dataset", "lrs2", "--root", root, "--metrics", "lse",
                 "--no-report", "--run-dir", alone)
    assert res.exit_code == 2 and "none of the requested metrics can be scored" in res.output, res.output
    assert not alone.exists()


def test_allowed_synthetic_critic_is_labelled_and_score_reproduces_the_run(tmp_path: Path, cuts: dict) -> None:
    """160-px LRS2 crops, split file beside mvlrs_v1: LSE with --allow-synthetic-critics is labelled in the
    console, the report and its table; the ground truth's offset line is there; `score --run-dir`
    gives the run's PSNR/SSIM/LSE for one item bit for bit (wav2lip from the generation cache, static
    regenerated), while the H.264 media file does not."""
    if shipped_weights("wav2lip-synth") is None:
        pytest.skip("no shipped wav2lip weights")
    root = lrs2_tree(tmp_path / "lrs2", cuts, size=160, split_in_parent=True)
    run_dir = tmp_path / "run"
    res = invoke("run", "--methods", "static,wav2lip", "--dataset", "lrs2", "--root", root, "--metrics",
                 "psnr,ssim,lse", "--limit", "1", "--allow-synthetic-critics", "--run-dir", run_dir)
    assert res.exit_code == 0, res.output
    assert "WARNING: lse: scored on lrs2 by syncnet-synth.safetensors, a critic trained on the SYNTHETIC corpus" \
        in res.output
    assert "Ground-truth AV offset (av_offset): within ±1 frame of 0 on" in res.output
    record = json.loads((run_dir / "run.json").read_text())
    assert "SYNTHETIC" in record["synthetic_critics"]["lse"] and not record["metrics_unavailable"]
    html = (run_dir / "report" / "index.html").read_text()
    assert "LSE-C ↑ †" in html and "a critic trained on the SYNTHETIC corpus" in html
    assert 'id="offset-sanity"' in html and "H.264 for viewing" in html and "talkbench score --run-dir" in html
    md = (run_dir / "report" / "table.md").read_text()
    assert "LSE-D ↓ †" in md and "† lse: scored on lrs2 by syncnet-synth.safetensors" in md

    sample = "6001234567890123456/00001"  # <video_id>/<clip>, as the split file lists it
    want = dict(store(run_dir, f"SELECT metric, value FROM results WHERE method='wav2lip' AND sample_id='{sample}'"))
    res = invoke("score", "--run-dir", run_dir, "--sample", sample, "--method", "wav2lip", "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.output.strip().splitlines()[-1])
    assert got["matches"] and got["frames_source"].startswith("generation cache")
    for m in ("psnr", "ssim", "lse_d", "lse_c", "av_offset"):
        assert got["metrics"][m] == want[m], m  # exact, not approximate
    res = invoke("score", "--run-dir", run_dir, "--sample", sample, "--method", "static")
    assert res.exit_code == 0 and "matches the run: yes" in res.output, res.output
    assert "regenerated by static" in res.output and "WARNING: lse: scored on lrs2" in res.output
    res = invoke("score", "--run-dir", run_dir, "--sample", "nope/00001", "--method", "static")
    assert res.exit_code == 2 and "sample 'nope/00001' is not in lrs2/test" in res.output, res.output
    assert invoke("score", "--run-dir", run_dir, "--method", "static").exit_code == 2
    # The stored video is lossy: scoring it against the stored ground truth does not give the run's PSNR.
    media = run_dir / "media"
    gen = next((media / "wav2lip").glob("*.mp4"))
    gt = next((media / "gt").glob("*.mp4"))
    res = invoke("score", gen, "--reference", gt, "--metrics", "psnr", "--crop", "none", "--json")
    assert json.loads(res.output.strip().splitlines()[-1])["metrics"]["psnr"] != want["psnr"]


def test_score_falls_back_to_the_synthetic_critic_by_name(tmp_path: Path, cuts: dict) -> None:
    clip = put(tmp_path / "clip.mp4", cuts["vox_00015"])
    res = invoke("score", clip, "--metrics", "lse", "--crop", "none")
    assert res.exit_code == 0, res.output
    assert "[SYNTHETIC critic, see below]" in res.output
    assert "default fallback to the shipped SYNTHETIC critic: no official syncnet_v2.model" in res.output
    res = invoke("score", clip, "--metrics", "lse", "--crop", "none", "--json",
                 "--syncnet", shipped_weights("syncnet-synth"))
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["critics"]["lse"]["choice"].startswith("explicit") and "lse" in out["synthetic_critics"]


def test_crop_auto_with_a_reference_uses_the_reference_track(tmp_path: Path, cuts: dict) -> None:
    frames, audio = cuts["vox_00086"]
    ref = put(tmp_path / "ref.mp4", (frames, audio))
    same_size = put(tmp_path / "gen.mp4", (np.clip(frames.astype(int) + 6, 0, 255).astype(np.uint8), audio))
    res = invoke("score", same_size, "--reference", ref, "--metrics", "psnr", "--json")
    out = json.loads(res.output.strip().splitlines()[-1])
    assert res.exit_code == 0 and out["crop_policy"].startswith("reference track: tb-square"), out
    assert 25 < out["metrics"]["psnr"] < 40 and not out["warnings"]
    crop128 = put(tmp_path / "crop128.mp4", (frames, audio), size=128)
    out = json.loads(invoke("score", crop128, "--reference", ref, "--metrics", "psnr", "--json").output.splitlines()[-1])
    assert out["crop_policy"].startswith("as given (128x128")
    odd = put(tmp_path / "odd.mp4", (frames, audio), size=200)
    out = json.loads(invoke("score", odd, "--reference", ref, "--metrics", "psnr", "--json").output.splitlines()[-1])
    assert any("cropped on its own face track" in w for w in out["warnings"])


def test_lrw_words_outside_the_vocabulary_are_not_failures(tmp_path: Path, cuts: dict) -> None:
    """``lipread_mp4/WORD/test/WORD_NNNNN.{mp4,txt}``: ABOUT is in the synthetic lip reader's vocabulary (the
    first LRW words), WORLD is not. Without the flag, lip reading is refused (naming the official file)."""
    root = tmp_path / "lrw" / "lipread_mp4"
    for word, name in (("ABOUT", "vox_00015"), ("WORLD", "vox_00373")):
        video = put(root / word / "test" / f"{word}_00001.mp4", cuts[name])
        video.with_suffix(".txt").write_text(f"WORD: {word}\n\nStart: 0.30\nEnd: 0.70\nDuration: 0.40 seconds\n")
    run_dir = tmp_path / "run"
    res = invoke("run", "--methods", "static", "--dataset", "lrw", "--root", root.parent, "--metrics", "lipread",
                 "--allow-synthetic-critics", "--run-dir", run_dir)
    assert res.exit_code == 0, res.output
    assert "failed items: 0" in res.output
    assert store(run_dir, "SELECT COUNT(*) FROM results WHERE error IS NOT NULL") == [(0,)]
    assert {r[0] for r in store(run_dir, "SELECT sample_id FROM results WHERE metric='lipread_top1'")} == \
        {"ABOUT/test/ABOUT_00001"}
    na = json.loads((run_dir / "run.json").read_text())["not_applicable"]["lipread"]
    assert na["pairs"] == 2 and na["words_covered"] == 1 and na["words"] == 2
    assert na["word_coverage"] == {"ABOUT": {"samples": 1, "applicable": 1}, "WORLD": {"samples": 1, "applicable": 0}}
    vocab = read_card(shipped_weights("lipreader-synth"))["vocabulary"]
    assert "ABOUT" in vocab and "WORLD" not in vocab
    assert list(na["reasons"]) == [f"word 'WORLD' is outside the critic's {len(vocab)}-word vocabulary"]
    html = (run_dir / "report" / "index.html").read_text()
    assert "Word coverage: 1 of 2 words scored (ABOUT)" in html and "<p>None.</p>" in html  # no failures
    res = invoke("run", "--methods", "static", "--dataset", "lrw", "--root", root.parent, "--metrics",
                 "psnr,lipread", "--no-report", "--run-dir", tmp_path / "run2")
    assert res.exit_code == 1 and "lrw_resnet18_mstcn.pth in $TALKBENCH_WEIGHTS" in res.output, res.output


def test_data_crop_needs_no_audio(tmp_path: Path, cuts: dict) -> None:
    """HDTF clips downloaded as video-only streams crop without audio."""
    root = tmp_path / "hdtf"
    put(root / "WRA_KellyAyotte_000.mp4", cuts["vox_00086"], audio=False)
    (root / "splits").mkdir()
    (root / "splits" / "test.txt").write_text("WRA_KellyAyotte_000\n")
    res = invoke("data", "crop", "--dataset", "hdtf", "--root", root)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output[res.output.index("{"):])["cropped"] == 1


def test_a_metric_allowed_later_is_scored_for_every_pair_even_after_a_kill(tmp_path: Path) -> None:
    """Refused first, then allowed: the resume evaluates every pair again; killed during that pass, the
    next resume still does (run.json metrics_pending), so no pair is left without the metric."""
    from talkbench.runner import RunConfig, run
    from tests.conftest import talking_frames, tone

    root = tmp_path / "clips"
    root.mkdir()
    write_video(root / "c0.mp4", talking_frames(15, size=128), tone(0.6))
    cfg = RunConfig(methods=("static",), dataset="folder", root=str(root), split="all", metrics=("psnr", "lse"),
                    crop="none")
    run_dir = tmp_path / "run"
    first = run(cfg, run_dir, progress=False, gen_cache=False)
    assert "lse" in first.metrics_unavailable
    allowed = replace(cfg, allow_synthetic_critics=True)

    def stop(sample_id: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(allowed, run_dir, progress=False, gen_cache=False, on_sample=stop)
    assert json.loads((run_dir / "run.json").read_text())["metrics_pending"] == ["lse"]
    last = run(allowed, run_dir, progress=False, gen_cache=False)  # killed before it finished: done again
    assert last.retried == 2 and json.loads((run_dir / "run.json").read_text())["metrics_pending"] == []
    assert len(store(run_dir, "SELECT * FROM results WHERE metric='lse_c' AND error IS NULL")) == 2  # gt, static
    assert run(allowed, run_dir, progress=False, gen_cache=False).retried == 0
