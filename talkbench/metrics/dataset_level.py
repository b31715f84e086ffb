"""Dataset-level metrics in a run: per-sample feature files, and the final values per method.

Features of a (metric, method, sample) are written to ``RUN_DIR/features/<metric>/<method>/<sample>.npz``
(``generated``, ``reference`` rows and the sample id) before the sample is committed, so a resumed run
has every finished sample's rows and the final values are recomputed from all of them at the end of
each run into the store's ``dataset_results``. The ground truth's reference score is the distance
between its even- and odd-indexed samples (the noise floor of the metric at this sample count).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from talkbench.errors import TalkbenchError
from talkbench.results import safe_name
from talkbench.store import ResultStore, Row

GT = "gt"


def is_dataset_level(scorer: Any) -> bool:
    return getattr(scorer, "level", "sample") == "dataset"


def feature_path(run_dir: Path, metric: str, method: str, sample_id: str) -> Path:
    return Path(run_dir) / "features" / metric / safe_name(method) / f"{safe_name(sample_id)}.npz"


def save_features(run_dir: Path, metric: str, method: str, sample_id: str, gen: np.ndarray, ref: np.ndarray) -> None:
    path = feature_path(run_dir, metric, method, sample_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(tmp, generated=np.asarray(gen, np.float32), reference=np.asarray(ref, np.float32),
             sample_id=np.array(sample_id))
    os.replace(tmp, path)


def feature_rows(scorer: Any, item: Any, method: str, dataset: str, run_dir: Path | None) -> list[Row]:
    """Compute and save one sample's features; the row ``<metric>_feature_rows`` (how many rows) marks it
    done, ``<metric>_features`` with an error marks a per-item failure (e.g. a clip too short for FVD)."""
    name = scorer.outputs[0].name
    try:
        gen, ref = scorer.features(item)
    except TalkbenchError as exc:
        return [Row(method, dataset, item.sample_id, f"{name}_features", math.nan, exc.reason)]
    except Exception as exc:  # a scorer bug must not end the run
        return [Row(method, dataset, item.sample_id, f"{name}_features", math.nan, f"{type(exc).__name__}: {exc}")]
    if run_dir is not None:
        save_features(run_dir, name, method, item.sample_id, gen, ref)
    return [Row(method, dataset, item.sample_id, f"{name}_feature_rows", float(len(gen)))]


def _load(run_dir: Path, metric: str, method: str, only: set[str] | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    folder = Path(run_dir) / "features" / metric / safe_name(method)
    for f in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        with np.load(f) as z:
            sid = str(z["sample_id"])
            if only is None or sid in only:
                out[sid] = (z["generated"], z["reference"])
    return out


def finalize(run_dir: Path, scorers: dict[str, Any], methods: list[str], dataset: str,
             samples: list[str] | None = None) -> dict[str, Any]:
    """Compute every dataset-level metric for every method (and the ground truth's split halves) from
    the saved features into ``dataset_results``; returns ``{metric: {method: details}}`` for run.json."""
    summary: dict[str, Any] = {}
    only = set(samples) if samples is not None else None
    store = ResultStore(Path(run_dir) / "results.sqlite", run=Path(run_dir).name)
    try:
        for scorer in (s for s in scorers.values() if is_dataset_level(s)):
            name = scorer.outputs[0].name
            per: dict[str, Any] = {}
            refs: dict[str, np.ndarray] = {}
            for method in methods:
                feats = _load(run_dir, name, method, only)
                for sid, (_, ref) in feats.items():
                    refs.setdefault(sid, ref)
                if method == GT:
                    continue  # its value is the split-half reference score below
                per[method] = _store(store, scorer, method, dataset, name, [f[0] for f in feats.values()],
                                     [f[1] for f in feats.values()], {})
            ordered = [refs[k] for k in sorted(refs)]
            half_a, half_b = ordered[0::2], ordered[1::2]
            k = min(len(half_a), len(half_b))
            per[GT] = _store(store, scorer, GT, dataset, name, half_a[:k], half_b[:k],
                             {"reference": "ground truth, even vs odd samples (split halves)"})
            summary[name] = per
    finally:
        store.close()
    return summary


def _store(store: ResultStore, scorer: Any, method: str, dataset: str, name: str, gen: list, ref: list,
           extra: dict[str, Any]) -> dict[str, Any]:
    try:
        r = scorer.compute(gen, ref)
    except TalkbenchError as exc:
        store.put_dataset_result(method, dataset, name, None, None, None, len(gen), exc.reason, json.dumps(extra))
        return {"error": exc.reason, **extra}
    details = {k: v for k, v in r.items() if k not in ("value", "low", "high", "n")} | extra
    store.put_dataset_result(method, dataset, name, r["value"], r["low"], r["high"], r["n"], None,
                             json.dumps(details, default=float))
    return {"value": r["value"], "low": r["low"], "high": r["high"], "n": r["n"], **details}
