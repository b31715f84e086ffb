"""A run directory's identity is its content (design.md): what produced its numbers.

Resuming compares the stored identity with the one about to run and refuses on any difference,
naming it: a checkpoint overwritten in place, an official file that appeared in
``$TALKBENCH_WEIGHTS`` (it replaces the default weights or critic), a new method or metric version, a
changed protocol, a dataset split that lists other samples. Comparing the ``--weights`` path, as
before, mixed rows of two checkpoints in one run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

UNAVAILABLE = "unavailable"


def _critic_sha(provenance: dict[str, Any]) -> dict[str, str]:
    return {role: rec["sha256"] for role, rec in provenance.items() if isinstance(rec, dict) and "sha256" in rec}


def corpus_record(root: str | Path | None) -> dict[str, Any] | str | None:
    """Version and seed of the synthetic corpus at ``root`` (None for other data). Its CORPUS.json sits in
    the root (synth-hdtf's layout) or one level up (the LRS2 and LRW layouts' readers root at mvlrs_v1/
    and lipread_mp4/, and the real readers read the synthetic corpus too)."""
    if not root:
        return None
    manifest = next((d / "CORPUS.json" for d in (Path(root), Path(root).parent) if (d / "CORPUS.json").exists()), None)
    if manifest is None:
        return None
    try:
        corpus = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return "unreadable CORPUS.json"
    return {"version": corpus.get("version"), "seed": corpus.get("seed")}


def dataset_identity(config: Any, samples: list[Any], reader: Any) -> dict[str, Any]:
    """Dataset, split, resolved root, the sha256 of the split's sample ids (and video file names),
    and the synthetic corpus's version and seed when the root holds a CORPUS.json."""
    h = hashlib.sha256()
    for s in samples:
        h.update(f"{s.sample_id}\t{Path(s.video_path).name}\n".encode())
    out = {"name": config.dataset, "split": config.split,
           "root": str(Path(reader.root).resolve()) if getattr(reader, "root", None) else None,
           "samples_sha256": h.hexdigest(), "samples": len(samples)}
    corpus = corpus_record(out["root"])
    if corpus is not None:
        out["corpus"] = corpus
    return out


def content_identity(config: Any, methods: dict[str, Any], broken: dict[str, str], scorers: dict[str, Any],
                     unavailable: dict[str, str], protocol: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """Everything that determines a run's numbers, as plain JSON."""
    meth: dict[str, Any] = {}
    for name, m in methods.items():
        info = m.weights_info() or {}
        entry = {"card_version": m.card.version, "weights_sha256": info.get("sha256")}
        if info and "sha256" not in info:  # e.g. precomputed videos: what the method reports, less machine paths
            entry["weights"] = {k: v for k, v in info.items() if k not in ("path", "card")}
        meth[name] = entry
    for name in broken:
        meth[name] = UNAVAILABLE
    mets: dict[str, Any] = {}
    for name, s in scorers.items():
        mets[name] = {"versions": {i.name: i.version for i in s.outputs}, "critics": _critic_sha(s.provenance() or {})}
    for name in unavailable:
        mets[name] = UNAVAILABLE
    cfg = config.identity()
    # Which methods were given --weights matters; where the file lives does not (its sha256 above does).
    cfg["weights"] = sorted(cfg.get("weights") or {})
    return {"config": cfg, "methods": meth, "metrics": mets, "protocol": protocol, "dataset": dataset}


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict) and d:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def identity_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs, one readable line per leaf (``methods.wav2lip.weights_sha256: 1a2b.. -> 3c4d..``).

    A method or metric that was unavailable before (it produced only error rows) may be available
    now: that is the fix a resume is for, and those rows are retried, so it is not a change."""
    changes = []
    for section in ("methods", "metrics"):
        for name, was in (old.get(section) or {}).items():
            if was == UNAVAILABLE and name in (new.get(section) or {}):
                old = {**old, section: {**old[section], name: new[section][name]}}
    a, b = _flatten(old), _flatten(new)
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            changes.append(f"{key}: {_short(a.get(key))} -> {_short(b.get(key))}")
    return changes


def _short(v: Any) -> str:
    s = json.dumps(v, default=str)
    return s[:13] + "..\"" if len(s) > 24 and isinstance(v, str) and all(c in "0123456789abcdef" for c in v) else s
