"""The field's metrics through ``talkbench run`` / ``report`` / ``compare`` as a user runs them, with
official-layout files of seeded weights in ``$TALKBENCH_WEIGHTS`` (the real files cannot be downloaded
here): per-sample LPIPS, ArcFace CSIM and CPBD rows; FID as one value per method with a bootstrap
interval and the ground truth's split-half reference score; FVD's per-item error on short clips; the
protocol of every metric in run.json and on the report; a missing file named in the run record."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from talkbench.cli import cli
from talkbench.io.video import write_video
from talkbench.results import load_run
from tests.conftest import talking_frames, tone


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from talkbench.metrics.nets.seeded import write_seeded_weights

    folder = tmp_path_factory.mktemp("weights")
    write_seeded_weights(folder, arcface_depth=18)
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    for i, dx in enumerate((0.5, -0.5, 1.0)):
        write_video(root / f"c{i}.mp4", talking_frames(12, dx=dx), tone(0.48, freq=200 + 40 * i))
    return root


def _run(dataset: Path, run_dir: Path, metrics: str, *extra: str):
    return CliRunner().invoke(cli, ["run", "--methods", "static", "--dataset", "folder", "--root", str(dataset),
                                    "--split", "all", "--metrics", metrics, "--device", "cpu", "--crop", "none",
                                    "--no-gen-cache", "--run-dir", str(run_dir), *extra])


@pytest.mark.slow
def test_field_metrics_run_report_compare(dataset, weights, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(weights))
    res = _run(dataset, tmp_path / "a", "fid,fvd,lpips,cpbd,csim-arcface", "--metric-option", "fid.frame_step=6",
               "--metric-option", "fid.bootstrap=20", "--metric-option", "csim-arcface.frame_step=6")
    assert res.exit_code == 1, res.output  # FVD on 12-frame clips: a per-item error, the rest computed
    run = load_run(tmp_path / "a")
    errors = run.frame[run.frame["error"].notna()]
    assert set(errors["metric"]) == {"fvd_features"}
    assert errors["error"].str.contains("FVD needs at least 16 frames").all()
    scored = run.scored
    for m in ("lpips", "cpbd", "csim_arcface"):
        v = scored[(scored["metric"] == m) & (scored["method"] == "static")]["value"]
        assert len(v) == 3 and v.map(math.isfinite).all(), m
    gt = scored[(scored["method"] == "gt") & (scored["metric"] == "lpips")]["value"]
    assert (gt.abs() < 1e-6).all()  # the ground truth against itself
    fid = run.dataset.set_index(["method", "metric"])
    static, ref = fid.loc[("static", "fid")], fid.loc[("gt", "fid")]
    assert static["n"] == 3 and static["low"] <= static["value"] <= static["high"]
    assert json.loads(ref["details"])["reference"].startswith("ground truth, even vs odd")
    assert ref["n"] == 1 and math.isfinite(ref["value"])  # 3 samples: halves of 2 and 1, paired to 1
    assert "fvd" in run.record["dataset_metrics"] and run.record["dataset_metrics"]["fvd"]["static"]["error"]
    prot = run.record["metric_protocols"]
    assert prot["fid"]["frames"].startswith("frames 0, 6, 12, ...") and "299" in prot["fid"]["resize"]
    assert "16 consecutive frames" in prot["fvd"]["frames"]
    assert run.record["critics"]["fid"]["inception"]["sha256"][:12] in run.metrics["fid"].version
    html = (tmp_path / "a" / "report" / "index.html").read_text()
    assert "FID ↓" in html and "split halves" in html and "Protocol of each metric" in html
    assert "CPBD ↑" in html and "LPIPS ↓" in html and "CSIM (ArcFace) ↑" in html

    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--fail-on-regression"])
    assert res.exit_code == 0, res.output
    assert "| static | fid ↓ | 3 | +0.0000 |" in res.output and "dataset-level" in res.output


def test_missing_official_weights_are_named_in_the_run_record(dataset, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path / "empty"))
    res = _run(dataset, tmp_path / "b", "psnr,fid,lpips")
    assert res.exit_code == 1, res.output  # metrics not computed: never a silent gap
    assert "metric fid NOT computed" in res.output and "put pt_inception-2015-12-05-6726825d.pth" in res.output
    run = load_run(tmp_path / "b")
    why = run.record["metrics_unavailable"]
    assert "not available: put pt_inception-2015-12-05-6726825d.pth" in why["fid"]
    assert "not available: put alexnet-owt-7be5be79.pth" in why["lpips"]
    assert "Metrics not computed" in (tmp_path / "b" / "report" / "index.html").read_text()


def test_score_one_video_with_the_per_sample_field_metrics(dataset, weights, monkeypatch) -> None:
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(weights))
    clip = str(dataset / "c0.mp4")
    res = CliRunner().invoke(cli, ["score", clip, "--reference", clip, "--crop", "none", "--json",
                                   "--metrics", "lpips,cpbd,csim-arcface,fid",
                                   "--metric-option", "csim-arcface.frame_step=6"])
    assert res.exit_code == 1, res.output  # fid is dataset-level: named, the others computed
    out = json.loads(res.output)
    assert abs(out["metrics"]["lpips"]) < 1e-6 and 0 <= out["metrics"]["cpbd"] <= 1
    # frames 0 and 6 vs frame 0: the first is the identity frame itself (cosine 1)
    assert 0.5 < out["metrics"]["csim_arcface"] <= 1 + 1e-6 and out["metrics"]["csim_arcface_frames_scored"] == 2
    assert "dataset-level metric" in out["errors"]["fid"]


def test_resumed_run_pools_the_features_of_earlier_samples(dataset, weights, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(weights))
    opts = ("--metric-option", "fid.frame_step=6", "--metric-option", "fid.bootstrap=5", "--no-report")
    assert _run(dataset, tmp_path / "r", "fid", "--limit", "2", *opts).exit_code == 0
    first = load_run(tmp_path / "r").dataset.set_index(["method", "metric"]).loc[("static", "fid")]
    assert first["n"] == 2
    res = _run(dataset, tmp_path / "r", "fid", *opts)  # the same run, now over all 3 samples
    assert res.exit_code == 0 and "resumed (skipped): 4" in res.output, res.output
    again = load_run(tmp_path / "r").dataset.set_index(["method", "metric"]).loc[("static", "fid")]
    assert again["n"] == 3 and json.loads(again["details"])["rows"] == [6, 6]
