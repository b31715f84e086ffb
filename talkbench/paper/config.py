"""``talkbench paper``'s YAML: datasets (Table 1 column groups), methods with weights, metrics, the
lip-reading table, the context sweep, the masked-audio experiment and the ablation. Everything is
checked before any work: an unknown dataset, method or metric, or a missing root, is a ConfigError
naming the YAML line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from talkbench.conditions import parse_ks
from talkbench.errors import ConfigError

DEFAULT_CONFIG = Path(__file__).resolve().parent / "paper-synth.yaml"
TABLE1_METRICS = ("psnr", "ssim", "lmd", "lse")


@dataclass(frozen=True)
class DatasetPart:
    key: str  # the column group's title (LRW, LRS2, HDTF)
    dataset: str
    root: str | None = None
    split: str = "test"
    limit: int | None = None


@dataclass(frozen=True)
class ContextSweep:
    methods: tuple[str, ...]
    dataset: str  # a key of ``datasets``
    ks: tuple[int | str, ...]
    metrics: tuple[str, ...] = ("lmd", "lse")
    limit: int | None = None


@dataclass(frozen=True)
class MaskedAudio:
    methods: tuple[str, ...]
    dataset: str
    span: int = 7
    limit: int | None = None


@dataclass(frozen=True)
class Ablation:
    config: str
    dataset: str
    variants: tuple[str, ...] = ("baseline", "+a2l", "+dav", "+dvv")
    metrics: tuple[str, ...] = TABLE1_METRICS
    limit: int | None = None
    weights: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PaperConfig:
    name: str
    datasets: tuple[DatasetPart, ...]
    methods: tuple[str, ...]
    weights: tuple[tuple[str, str], ...] = ()
    metrics: tuple[str, ...] = TABLE1_METRICS
    lipreading: str | None = None  # key of the word-level dataset (Table 3)
    # methods kept out of Table 1 but run on the word-level dataset for Table 3 (the paper's ATVGnet)
    not_in_table1: tuple[str, ...] = ()
    context_sweep: ContextSweep | None = None
    masked_audio: MaskedAudio | None = None
    ablation: Ablation | None = None
    device: str = "auto"
    source: str = ""
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def dataset(self, key: str) -> DatasetPart:
        return next(d for d in self.datasets if d.key == key)


def _lines(node: Any, prefix: str = "") -> dict[str, int]:
    """Dotted key -> 1-based line of every mapping key in a composed YAML node."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            path = f"{prefix}.{k.value}" if prefix else str(k.value)
            out[path] = k.start_mark.line + 1
            out.update(_lines(v, path))
    return out


class _Where:
    def __init__(self, source: str, lines: dict[str, int]) -> None:
        self.source, self.lines = source, lines

    def error(self, key: str, msg: str) -> ConfigError:
        line = self.lines.get(key) or self.lines.get(key.rsplit(".", 1)[0])
        return ConfigError(f"{key}: {msg}", f"{self.source}:{line}" if line else self.source)


def _names(value: Any, where: _Where, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise where.error(key, f"expected a list of names, got {value!r}")
    return tuple(value)


def _limit(raw: dict, where: _Where, key: str, default: int | None) -> int | None:
    v = raw.get("limit", default)
    if v is not None and (not isinstance(v, int) or v < 1):
        raise where.error(f"{key}.limit", f"must be a positive number of samples, got {v!r}")
    return v


def load_paper_config(path: str | Path) -> PaperConfig:
    """Parse and check a paper YAML (ConfigError naming file:line for anything wrong)."""
    from talkbench.datasets import DATASETS
    from talkbench.methods import METHODS
    from talkbench.metrics import METRICS

    path = Path(path)
    try:
        text = path.read_text()
        raw = yaml.safe_load(text) or {}
        lines = _lines(yaml.compose(text))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the paper config ({exc})", path) from exc
    where = _Where(str(path), lines)
    if not isinstance(raw, dict):
        raise ConfigError("a paper config is a YAML mapping", path)
    known = {"name", "datasets", "methods", "metrics", "limit", "lipreading", "context_sweep", "masked_audio",
             "ablation", "device"}
    for k in raw:
        if k not in known:
            raise where.error(k, f"unknown key; known: {', '.join(sorted(known))}")
    limit = raw.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise where.error("limit", f"must be a positive number of samples, got {limit!r}")

    def check_metric(name: str, key: str) -> None:
        if name not in METRICS:
            raise where.error(key, f"unknown metric {name!r}; available: {', '.join(METRICS.names())}")

    datasets = []
    for key, d in (raw.get("datasets") or {}).items():
        k = f"datasets.{key}"
        if not isinstance(d, dict) or "dataset" not in d:
            raise where.error(k, "needs `dataset: NAME` (and `root:` for real data)")
        if d["dataset"] not in DATASETS:
            raise where.error(f"{k}.dataset", f"unknown dataset {d['dataset']!r}; available: {', '.join(DATASETS.names())}")
        root = d.get("root")
        if root is not None:
            root = str(Path(root).expanduser() if Path(root).is_absolute() else (path.parent / root))
            if not Path(root).is_dir():
                raise where.error(f"{k}.root", f"dataset root not found: {root}")
        elif not d["dataset"].startswith("synth-"):
            raise where.error(k, f"{d['dataset']} cannot be downloaded: give `root:` (the folder you have)")
        datasets.append(DatasetPart(str(key), d["dataset"], root, str(d.get("split", "test")), _limit(d, where, k, limit)))
    if not datasets:
        raise where.error("datasets", "no dataset: list at least one (e.g. LRS2: {dataset: synth-lrs2})")
    keys = {d.key for d in datasets}

    methods, weights, not_in_table1 = [], [], []
    raw_methods = raw.get("methods") or {}
    if isinstance(raw_methods, list):
        raw_methods = {m: {} for m in raw_methods}
    for name, m in raw_methods.items():
        k = f"methods.{name}"
        if name not in METHODS:
            raise where.error(k, f"unknown method {name!r}; available: {', '.join(METHODS.names())}")
        methods.append(str(name))
        t1 = (m or {}).get("table1", True) if isinstance(m, dict) else True
        if not isinstance(t1, bool):
            raise where.error(f"{k}.table1", f"must be true or false, got {t1!r}")
        if not t1:
            not_in_table1.append(str(name))
        w = (m or {}).get("weights") if isinstance(m, dict) else None
        if w:
            weights.append((str(name), str(Path(w).expanduser() if Path(w).is_absolute() else path.parent / w)))
    if not methods:
        raise where.error("methods", "no method to evaluate")
    metrics = _names(raw.get("metrics", list(TABLE1_METRICS)), where, "metrics")
    for m in metrics:
        check_metric(m, "metrics")

    def section_methods(section: str, value: Any) -> tuple[str, ...]:
        names = _names(value, where, f"{section}.methods")
        for m in names:
            if m not in METHODS:
                raise where.error(f"{section}.methods", f"unknown method {m!r}; available: {', '.join(METHODS.names())}")
        return names

    def dataset_key(section: str, value: Any) -> str:
        if value not in keys:
            raise where.error(f"{section}.dataset", f"{value!r} is not one of the datasets above ({', '.join(sorted(keys))})")
        return str(value)

    lipreading = None
    if raw.get("lipreading"):
        lipreading = dataset_key("lipreading", (raw["lipreading"] or {}).get("dataset"))
    sweep = None
    if s := raw.get("context_sweep"):
        sm = section_methods("context_sweep", s.get("methods", ["cals"]))
        try:
            ks = parse_ks(s.get("k", "0,1,2,3,5,7,10,15,full"))
        except ConfigError as exc:
            raise where.error("context_sweep.k", exc.reason) from exc
        smet = _names(s.get("metrics", ["lmd", "lse"]), where, "context_sweep.metrics")
        for m in smet:
            check_metric(m, "context_sweep.metrics")
        sweep = ContextSweep(sm, dataset_key("context_sweep", s.get("dataset")), ks, smet,
                             _limit(s, where, "context_sweep", limit))
    mask = None
    if s := raw.get("masked_audio"):
        mm = section_methods("masked_audio", s.get("methods", ["cals"]))
        span = s.get("span", 7)
        if not isinstance(span, int) or span < 1:
            raise where.error("masked_audio.span", f"must be a positive number of frames, got {span!r}")
        mask = MaskedAudio(mm, dataset_key("masked_audio", s.get("dataset")), span, _limit(s, where, "masked_audio", limit))
    ablation = None
    if s := raw.get("ablation"):
        from talkbench.experiments.ablation import ALL_VARIANTS

        variants = _names(s.get("variants", ["baseline", "+a2l", "+dav", "+dvv"]), where, "ablation.variants")
        for v in variants:
            if v not in ALL_VARIANTS:
                raise where.error("ablation.variants", f"unknown variant {v!r}; known: {', '.join(ALL_VARIANTS)}")
        amet = _names(s.get("metrics", list(TABLE1_METRICS)), where, "ablation.metrics")
        for m in amet:
            check_metric(m, "ablation.metrics")
        cfg = str(s.get("config", "synth"))
        aw = tuple((str(v), str(path.parent / f)) for v, f in (s.get("weights") or {}).items())
        ablation = Ablation(cfg, dataset_key("ablation", s.get("dataset")), variants, amet,
                            _limit(s, where, "ablation", limit), aw)
    if not_in_table1 and lipreading is None:
        raise where.error(f"methods.{not_in_table1[0]}.table1",
                          "a method left out of Table 1 is only run for Table 3: add `lipreading: {dataset: ...}`")
    return PaperConfig(str(raw.get("name", path.stem)), tuple(datasets), tuple(methods), tuple(weights), metrics,
                       lipreading, tuple(not_in_table1), sweep, mask, ablation, str(raw.get("device", "auto")),
                       str(path), lines)
