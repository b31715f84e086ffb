from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from talkbench.cli import cli
from talkbench.report.html import build_report
from talkbench.stats import bootstrap_ci, paired_difference, summarize
from talkbench.store import ResultStore, Row


def test_bootstrap_ci_is_scipys_seeded_interval() -> None:
    v = np.random.default_rng(0).normal(3, 1, 40)
    ref = stats.bootstrap((v,), np.mean, confidence_level=0.95, n_resamples=2000,
                          random_state=np.random.default_rng(7), method="BCa").confidence_interval
    assert bootstrap_ci(v, seed=7) == pytest.approx((ref.low, ref.high))
    lo, hi = bootstrap_ci(v)
    assert lo < v.mean() < hi


def test_paired_difference_and_wilcoxon() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(30, 2, 25)
    b = a - 0.5 + rng.normal(0, 0.1, 25)
    df = pd.DataFrame({"method": ["A"] * 25 + ["B"] * 25, "sample_id": list(range(25)) * 2,
                       "metric": "psnr", "value": np.concatenate([a, b])})
    p = paired_difference(df, "psnr", "A", "B")
    assert p.n == 25 and p.mean_diff == pytest.approx((b - a).mean())
    assert p.high < 0 and p.p_value == pytest.approx(stats.wilcoxon(b - a).pvalue)


def _fake_run(run_dir: Path, shift: float, seed: int = 0, lmd_version: str = "lmd-test-1") -> None:
    """A run directory as the runner writes it: run.json with the scorers' stored MetricInfos, and rows."""
    from dataclasses import asdict

    from talkbench.metrics.base import MetricInfo
    from talkbench.metrics.image import PSNR_INFO

    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True)
    lmd = MetricInfo("lmd", False, "paired", lmd_version, "mouth landmark distance", "px", "LMD")
    (run_dir / "run.json").write_text(json.dumps({"config": {"dataset": "synth", "split": "test"},
                                                  "metrics": {"psnr": [asdict(PSNR_INFO)], "lmd": [asdict(lmd)]}}))
    store = ResultStore(run_dir / "results.sqlite")
    base = np.random.default_rng(99).normal(30, 2, 30)
    for i in range(30):
        for method, offset in (("gt", None), ("cals", shift)):
            if offset is None:
                rows = [Row("gt", "d", f"s{i}", "psnr", float("inf")), Row("gt", "d", f"s{i}", "lmd", 0.0)]
            else:
                rows = [Row(method, "d", f"s{i}", "psnr", base[i] + offset + rng.normal(0, 0.05)),
                        Row(method, "d", f"s{i}", "lmd", 1.5 - offset / 10 + rng.normal(0, 0.01))]
            store.commit_sample(method, "d", f"s{i}", rows)
    store.commit_sample("cals", "d", "s_bad", [Row("cals", "d", "s_bad", "__generate__", None, "CUDA <oom> & such")])
    store.close()


def test_summary_counts_and_report(tmp_path: Path) -> None:
    _fake_run(tmp_path / "a", 0.0)
    from talkbench.results import load_run

    s = summarize(load_run(tmp_path / "a").scored)
    cals = s[(s["method"] == "cals") & (s["metric"] == "psnr")].iloc[0]
    assert cals["n"] == 30 and cals["low"] < cals["mean"] < cals["high"]
    html = build_report(tmp_path / "a").read_text()
    assert '<table id="results">' in html and "PSNR ↑" in html and "LMD ↓" in html
    assert "CUDA &lt;oom&gt; &amp; such" in html  # autoescaped failure reason
    md = (tmp_path / "a" / "report" / "table.md").read_text()
    assert md.splitlines()[0].startswith("| Method | PSNR ↑ | LMD ↓")
    assert r"\begin{tabular}" in (tmp_path / "a" / "report" / "table.tex").read_text()


def test_compare_flags_regressions_with_exit_3(tmp_path: Path) -> None:
    _fake_run(tmp_path / "a", 0.0, seed=1)
    _fake_run(tmp_path / "b", -1.0, seed=2)  # B: PSNR 1 dB lower, LMD 0.1 px higher
    _fake_run(tmp_path / "c", 0.0, seed=3)
    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--fail-on-regression"])
    assert res.exit_code == 3 and "**regression**" in res.output
    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "c"), "--fail-on-regression"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "b"), str(tmp_path / "a"), "--fail-on-regression"])
    assert res.exit_code == 0 and "improvement" in res.output


@pytest.mark.browser
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    _fake_run(tmp_path / "a", 0.0)
    page = build_report(tmp_path / "a")
    out = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    dom = out.stdout
    assert '<table id="results">' in dom and "<td>cals</td>" in dom
    assert "Uncaught" not in out.stderr  # no JavaScript errors on the page


def test_compare_takes_direction_and_version_from_the_stored_metric_info(tmp_path: Path) -> None:
    """LMD made by another metric version is refused (exit 2, naming it); scorer names (as given to
    `run`) and column names are both accepted."""
    _fake_run(tmp_path / "a", 0.0, seed=1)
    _fake_run(tmp_path / "b", -1.0, seed=2, lmd_version="lmd-other-2")
    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--metrics", "lmd"])
    assert res.exit_code == 2 and "'lmd'" in res.output and "lmd-other-2" in res.output
    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--metrics", "psnr",
                                   "--fail-on-regression"])
    assert res.exit_code == 3 and "| cals | psnr ↑ |" in res.output
    res = CliRunner().invoke(cli, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--metrics", "nope"])
    assert res.exit_code == 2 and "'nope'" in res.output


def test_ties_are_bolded_all_or_none() -> None:
    from talkbench.metrics.image import PSNR_INFO
    from talkbench.report.tables import build_table

    summary = pd.DataFrame({"method": ["a", "b", "c"], "metric": "psnr", "mean": [30.0001, 30.0, 29.0],
                            "low": [29.0, 29.0, 28.0], "high": [31.0, 31.0, 30.0], "n": 10, "failed": 0})
    _, rows = build_table(summary, {"psnr": PSNR_INFO})
    assert [r["cells"]["psnr"]["best"] for r in rows] == [True, True, False]


def test_report_names_each_critic_in_one_line(tmp_path: Path) -> None:
    """The critic's file, sha256 prefix and training domain as one line; the full record in a disclosure."""
    from talkbench.weights import shipped_weights, weights_record

    _fake_run(tmp_path / "a", 0.0)
    rec = json.loads((tmp_path / "a" / "run.json").read_text())
    w = weights_record(shipped_weights("syncnet-synth"))
    rec["critics"] = {"lse": {"syncnet": w, "vshift": 15}}
    (tmp_path / "a" / "run.json").write_text(json.dumps(rec))
    html = build_report(tmp_path / "a").read_text()
    line = f"<b>lse</b> critic: <code>syncnet-synth.safetensors</code> · sha256 {w['sha256'][:12]} · trained on synthetic corpus"
    assert line in html
    assert "<details><summary>full record</summary>" in html
