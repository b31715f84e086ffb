"""Dataset-level metrics (FID/FVD) in a run directory: features saved per sample, values per method and
the ground truth's split halves in ``dataset_results``, and ``compare`` on their intervals."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from talkbench.compare import compare_runs, to_markdown
from talkbench.errors import MetricError
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.metrics.dataset_level import feature_rows, finalize
from talkbench.metrics.functional.distribution import frechet_distance_features, frechet_with_bootstrap
from talkbench.results import load_run
from talkbench.store import ResultStore, Row

INFO = MetricInfo("toy", False, "paired", "toy-1", level="dataset", label="Toy FD")


class _Toy:
    """Features = a few pixels' values (so rows differ by method and sample); too short clips fail."""

    name, level, outputs = "toy", "dataset", (INFO,)

    def features(self, item):
        if len(item.generated) < 3:
            raise MetricError("toy needs at least 3 frames, got 2")
        rows = lambda f: f.reshape(len(f), -1)[:, :4].astype(np.float32)  # noqa: E731
        return rows(item.generated), rows(item.reference)

    def compute(self, gen, ref):
        r = frechet_with_bootstrap(gen, ref, resamples=50)
        return {"value": r.value, "low": r.low, "high": r.high, "n": r.n_samples, "rows": list(r.n_rows),
                "resamples": r.resamples, "warning": r.warning}


def _item(sid: str, rng, shift: float, n: int = 6) -> ScoreInput:
    ref = rng.integers(0, 200, (n, 4, 4, 3)).astype(np.uint8)
    gen = np.clip(ref + shift * rng.normal(size=ref.shape), 0, 255).astype(np.uint8)
    return ScoreInput(sid, gen, np.zeros(100, np.float32), reference=ref)


def test_features_then_finalize(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    store = ResultStore(tmp_path / "results.sqlite")
    scorer = _Toy()
    items = [_item(f"s{i}", rng, 10.0) for i in range(6)]
    for it in items:
        for method in ("gt", "m"):
            use = it if method == "m" else ScoreInput(it.sample_id, it.reference, it.audio, reference=it.reference)
            rows = feature_rows(scorer, use, method, "d", tmp_path)
            assert rows[0].metric == "toy_feature_rows" and rows[0].value == 6
    short = ScoreInput("short", items[0].generated[:2], items[0].audio, reference=items[0].reference[:2])
    bad = feature_rows(scorer, short, "m", "d", tmp_path)
    assert bad[0].metric == "toy_features" and "at least 3 frames" in bad[0].error
    store.close()
    summary = finalize(tmp_path, {"toy": scorer}, ["gt", "m"], "d")
    df = ResultStore(tmp_path / "results.sqlite").dataset_frame().set_index("method")
    gen = [it.generated.reshape(6, -1)[:, :4].astype(np.float32) for it in items]
    ref = [it.reference.reshape(6, -1)[:, :4].astype(np.float32) for it in items]
    assert np.isclose(df.loc["m", "value"], frechet_distance_features(np.concatenate(gen), np.concatenate(ref)))
    halves = frechet_distance_features(np.concatenate(ref[0::2]), np.concatenate(ref[1::2]))
    assert np.isclose(df.loc["gt", "value"], halves) and df.loc["gt", "n"] == 3
    assert summary["toy"]["gt"]["reference"].startswith("ground truth, even vs odd")
    assert df.loc["m", "low"] <= df.loc["m", "value"] <= df.loc["m", "high"]


def _run_dir(path: Path, value: float, low: float, high: float) -> Path:
    path.mkdir()
    (path / "run.json").write_text(json.dumps({"metrics": {"toy": [asdict(INFO)]}}))
    store = ResultStore(path / "results.sqlite", run=path.name)
    store.commit_sample("m", "d", "s0", [Row("m", "d", "s0", "toy_feature_rows", 6.0)])
    store.put_dataset_result("m", "d", "toy", value, low, high, 20, None, "{}")
    store.close()
    return path


def test_compare_flags_a_dataset_level_regression_only_when_intervals_separate(tmp_path: Path) -> None:
    a = _run_dir(tmp_path / "a", 10.0, 9.0, 11.0)
    worse = _run_dir(tmp_path / "b", 15.0, 14.0, 16.0)
    close = _run_dir(tmp_path / "c", 11.5, 10.5, 12.5)
    assert not load_run(a).dataset.empty
    v = compare_runs(a, worse)
    assert len(v) == 1 and v[0].regression and v[0].dataset_level and v[0].paired.mean_diff == 5.0
    assert (v[0].paired.low, v[0].paired.high) == (3.0, 7.0)
    assert not compare_runs(a, close)[0].regression
    assert compare_runs(worse, a)[0].improvement
    assert "dataset-level" in to_markdown(v, "a", "b")
