"""`talkbench paper` through the CLI: a config with a mistake is refused before any work (exit 2,
naming file:line, no run directory); a small config runs Table 1, Fig. 5 and Fig. 6 as ordinary run
directories, shows a method whose weights are missing as a visible "not available" row, writes the
page, md and tex; a second invocation skips every finished part; an interrupted part resumes with
nothing repeated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from talkbench.cli import cli
from tests.conftest import tiny_cals_config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from talkbench.datasets.synth.corpus import build_corpus

    return build_corpus("synth-lrs2", tmp_path_factory.mktemp("corpus"), clips=2, progress=False, workers=1,
                        splits=("test",))


@pytest.fixture(scope="module")
def tiny_cals(tmp_path_factory) -> Path:
    from cals.checkpoint import export
    from cals.config import from_dict
    from cals.model import CALS

    torch.manual_seed(0)
    cfg = from_dict(tiny_cals_config())
    path = tmp_path_factory.mktemp("w") / "cals-tiny.safetensors"
    export(CALS(cfg.model), cfg, path, {"command": "test", "data": "none", "seed": 0, "metrics": {}})
    return path


def _config(tmp_path: Path, corpus: Path, tiny_cals: Path, **extra: str) -> Path:
    text = f"""name: tiny-paper
methods:
  cals: {{weights: {tiny_cals}}}
  wav2lip: {{weights: {tmp_path / "missing-wav2lip.pth"}}}
datasets:
  LRS2: {{dataset: synth-lrs2, root: {corpus}, split: test, limit: 2}}
metrics: [psnr, lmd]
context_sweep: {{methods: [cals], dataset: LRS2, k: [0, full], metrics: [lmd], limit: 1}}
masked_audio: {{methods: [cals], dataset: LRS2, span: 3, limit: 1}}
"""
    for k, v in extra.items():
        text = text.replace(k, v)
    path = tmp_path / "paper.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("old", "new", "line", "word"), [
    ("dataset: synth-lrs2, root", "dataset: synth-lrs3, root", 6, "synth-lrs3"),
    ("  cals: {weights", "  calz: {weights", 3, "calz"),
    ("metrics: [psnr, lmd]", "metrics: [psnr, lmdd]", 7, "lmdd"),
    ("root: ", "root: /nonexistent/x", 6, "not found"),
])
def test_bad_config_is_refused_before_any_work(tmp_path: Path, corpus: Path, tiny_cals: Path,
                                               old: str, new: str, line: int, word: str) -> None:
    cfg = _config(tmp_path, corpus, tiny_cals, **{old: new})
    if old == "root: ":  # the whole root replaced
        cfg.write_text(cfg.read_text().replace(f"/nonexistent/x{corpus}", "/nonexistent/x"))
    res = CliRunner().invoke(cli, ["paper", "--config", str(cfg), "--run-dir", str(tmp_path / "p"), "--quiet"])
    assert res.exit_code == 2, res.output
    assert f"paper.yaml:{line}" in res.output and word in res.output
    assert not (tmp_path / "p").exists()


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT COUNT(*) FROM results").fetchone()[0]


@pytest.mark.slow
def test_paper_runs_resumes_and_shows_missing_weights(tmp_path: Path, corpus: Path, tiny_cals: Path) -> None:
    cfg = _config(tmp_path, corpus, tiny_cals)
    run_dir = tmp_path / "p"
    res = CliRunner().invoke(cli, ["paper", "--config", str(cfg), "--run-dir", str(run_dir), "--quiet"])
    assert res.exit_code == 0, res.output
    status = json.loads((run_dir / "paper.json").read_text())
    assert {n: p["status"] for n, p in status["parts"].items()} == {
        "table1-LRS2": "done", "fig6-context": "done", "fig5-mask": "done"}
    for part in ("table1-LRS2", "fig6-context", "fig5-mask"):  # ordinary run directories
        assert (run_dir / part / "run.json").exists() and (run_dir / part / "results.sqlite").exists()
    html = (run_dir / "paper" / "index.html").read_text()
    assert 'id="t1"' in html and "not available" in html and "missing-wav2lip.pth" in html
    assert "PSNR ↑" in html and 'id="fig6"' in html and 'id="fig5"' in html and 'id="protocol"' in html
    md = (run_dir / "paper" / "paper.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| Method | LRS2 PSNR ↑ | LRS2 LMD ↓")
    assert any(line.startswith("| wav2lip | not available") for line in table)
    assert any(line.startswith("| static | ") for line in table) and any(line.startswith("| cals | ") for line in table)
    # The markdown carries the page's protocol block and each part's status and wall time.
    assert "## Protocol" in md and "Samples per cell: LRS2 2;" in md and "crop " in md
    parts = {line.split(" | ")[0][2:]: line.split(" | ")[1] for line in table if line.startswith(("| table1-", "| fig"))}
    assert parts == {"table1-LRS2": "done", "fig6-context": "done", "fig5-mask": "done"}
    assert r"\multicolumn{2}{c}{LRS2}" in (run_dir / "paper" / "paper.tex").read_text()
    assert (run_dir / "paper" / "fig6-context.png").stat().st_size > 1000

    # A second invocation: every part skipped, nothing recomputed.
    n_rows = _rows(run_dir / "table1-LRS2" / "results.sqlite")
    res = CliRunner().invoke(cli, ["paper", "--config", str(cfg), "--run-dir", str(run_dir), "--quiet"])
    assert res.exit_code == 0 and res.output.count("skipped (done)") == 3, res.output

    # An interrupted part (marked running, as a kill leaves it) resumes: same rows, none doubled.
    status = json.loads((run_dir / "paper.json").read_text())
    status["parts"]["table1-LRS2"]["status"] = "running"
    (run_dir / "paper.json").write_text(json.dumps(status))
    res = CliRunner().invoke(cli, ["paper", "--config", str(cfg), "--run-dir", str(run_dir), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "table1-LRS2: running" in res.output and res.output.count("skipped (done)") == 2
    assert _rows(run_dir / "table1-LRS2" / "results.sqlite") == n_rows


def test_the_shipped_config_is_valid() -> None:
    from talkbench.paper.config import DEFAULT_CONFIG, load_paper_config
    from talkbench.paper.plan import plan

    cfg = load_paper_config(DEFAULT_CONFIG)
    names = [p.name for p in plan(cfg)]
    assert names == ["table1-LRW", "table1-LRS2", "table1-HDTF", "fig6-context", "fig5-mask", "table4-ablation"]
    assert "lipread" in plan(cfg)[0].args["metrics"] and cfg.context_sweep.ks[-1] == "full"
    # The shipped Table-4 checkpoints it names are there and are the variants they are named for.
    from talkbench.experiments.ablation import VARIANTS
    from talkbench.weights import read_card

    assert cfg.ablation.weights
    for variant, path in cfg.ablation.weights:
        card = read_card(path)
        if variant == "baseline":
            assert card["variant"] == "baseline" and card["config"]["gan"] is True
        else:
            flags = {"use_a2l": card["config"]["model"]["use_a2l"], "use_dav": card["config"]["loss"]["use_dav"],
                     "use_dvv": card["config"]["loss"]["use_dvv"]}
            assert flags == VARIANTS[variant], variant


def test_a_method_left_out_of_table1_runs_only_for_table3(tmp_path: Path, corpus: Path, tiny_cals: Path) -> None:
    """The paper leaves ATVGnet out of Table 1 but reports it in Table 3: `table1: false` runs it on the
    word-level dataset only; without a Table 3 it would run nowhere, which is refused."""
    from talkbench.paper.config import load_paper_config
    from talkbench.paper.plan import plan

    cfg_path = _config(tmp_path, corpus, tiny_cals, **{
        "  wav2lip: {weights": "  atvgnet: {table1: false, weights",
        "datasets:\n": f"datasets:\n  LRW: {{dataset: synth-lrw, root: {corpus}, split: test, limit: 2}}\n",
        "metrics: [psnr, lmd]": "metrics: [psnr, lmd]\nlipreading: {dataset: LRW}"})
    cfg = load_paper_config(cfg_path)
    assert cfg.not_in_table1 == ("atvgnet",)
    parts = {p.name: p.args["methods"] for p in plan(cfg)}
    assert parts["table1-LRW"] == ["static", "cals", "atvgnet"] and parts["table1-LRS2"] == ["static", "cals"]
    cfg_path.write_text(cfg_path.read_text().replace("lipreading: {dataset: LRW}", ""))
    res = CliRunner().invoke(cli, ["paper", "--config", str(cfg_path), "--run-dir", str(tmp_path / "p"), "--quiet"])
    assert res.exit_code == 2 and "methods.atvgnet.table1" in res.output and "lipreading" in res.output, res.output
    cfg_path.write_text(cfg_path.read_text().replace("table1: false", "table1: no-thanks"))
    res = CliRunner().invoke(cli, ["paper", "--config", str(cfg_path), "--run-dir", str(tmp_path / "p"), "--quiet"])
    assert res.exit_code == 2 and "true or false" in res.output, res.output


@pytest.mark.slow
def test_table3_shows_a_table3_only_method_unavailable_and_keeps_it_out_of_table1(
        tmp_path: Path, tiny_cals: Path) -> None:
    from talkbench.datasets.synth.corpus import build_corpus

    lrw = build_corpus("synth-lrw", tmp_path / "lrw", clips=2, progress=False, workers=1, splits=("test",))
    cfg = tmp_path / "paper.yaml"
    cfg.write_text(f"""name: t3
methods:
  cals: {{weights: {tiny_cals}}}
  atvgnet: {{table1: false, weights: {tmp_path / "missing-atvgnet.safetensors"}}}
datasets:
  LRW: {{dataset: synth-lrw, root: {lrw}, split: test, limit: 2}}
metrics: [psnr]
lipreading: {{dataset: LRW}}
""")
    res = CliRunner().invoke(cli, ["paper", "--config", str(cfg), "--run-dir", str(tmp_path / "p"), "--quiet"])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "p" / "paper" / "paper.md").read_text()
    t1, t3 = md.split("## Table 3")
    assert "| cals | " in t1 and "| atvgnet |" not in t1 and "atvgnet: left out of Table 1" in t1
    rows = {line.split(" | ")[0][2:]: line for line in t3.splitlines() if line.startswith("| ")}
    assert "items failed" in rows["Method"]
    assert "not available" in rows["atvgnet"] and "missing-atvgnet.safetensors" in rows["atvgnet"]
    assert rows["cals"].endswith(" of 2 |") and rows["gt"].split(" | ")[2] == "100.0%"


def test_quiet_paper_draws_no_bar_while_it_generates_the_default_corpus(tmp_path: Path, monkeypatch) -> None:
    """--quiet promised no progress bars, but a default synthetic dataset's generation drew them."""
    monkeypatch.setenv("TALKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    cfg = tmp_path / "paper.yaml"
    cfg.write_text("name: quiet\nmethods:\n  wav2lip: {}\ndatasets:\n"
                   "  LRS2: {dataset: synth-lrs2, split: test, limit: 1}\nmetrics: [psnr]\n")
    res = CliRunner().invoke(cli, ["paper", "--config", str(cfg), "--run-dir", str(tmp_path / "p"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert any((tmp_path / "cache" / "synth").rglob("*.mp4"))  # the corpus was generated in this call
    assert "clip/s" not in res.output and "%|" not in res.output, res.output
    assert "table1-LRS2" in res.output


@pytest.mark.slow
def test_a_part_done_on_another_corpus_version_is_not_skipped(tmp_path: Path, corpus: Path, tiny_cals: Path) -> None:
    """The corpus was re-encoded (version 2); a part finished on version 1 is not "done" for the same config:
    it is re-entered, and its run directory refuses to mix rows of two corpora, naming the change."""
    import shutil

    copy = Path(shutil.copytree(corpus, tmp_path / "corpus"))
    cfg = _config(tmp_path, copy, tiny_cals)
    run_dir = tmp_path / "p"
    args = ["paper", "--config", str(cfg), "--run-dir", str(run_dir), "--quiet"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    n_rows = _rows(run_dir / "table1-LRS2" / "results.sqlite")
    manifest = json.loads((copy / "CORPUS.json").read_text())
    manifest["version"] = "synth-lrs2-1"
    (copy / "CORPUS.json").write_text(json.dumps(manifest))
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    assert "skipped (done)" not in res.output and "table1-LRS2: failed" in res.output
    status = json.loads((run_dir / "paper.json").read_text())
    assert "dataset.corpus.version" in status["parts"]["table1-LRS2"]["error"]
    assert _rows(run_dir / "table1-LRS2" / "results.sqlite") == n_rows
