"""The CALS paper's Table 4 ablation: baseline (phone-level audio encoder, no A2L), +A2L, +d_av, +d_vv.

The four trainer configs are one YAML config with three flags changed (``model.use_a2l``,
``loss.use_dav``, ``loss.use_dvv``; nothing else differs). Each variant is trained with
:class:`cals.train.Trainer` into ``RUN_DIR/train/<variant>/`` (resumable from its ``last.pt``; skipped
when its exported ``weights.safetensors`` exists) or taken from ``--weights VARIANT=FILE``, and all of
them are evaluated in one run directory (one method per variant: ``cals-baseline``, ``cals+a2l``...,
so the store, report, statistics and ``talkbench compare`` treat them as methods).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from talkbench.errors import ConfigError
from talkbench.experiments.sweep import SweepResult, _finish
from talkbench.gencache import GenCache
from talkbench.runner import RunConfig, resolve_device

log = logging.getLogger(__name__)

# Cumulative, as the rows of Table 4.
VARIANTS: dict[str, dict[str, bool]] = {
    "baseline": {"use_a2l": False, "use_dav": False, "use_dvv": False},
    "+a2l": {"use_a2l": True, "use_dav": False, "use_dvv": False},
    "+dav": {"use_a2l": True, "use_dav": True, "use_dvv": False},
    "+dvv": {"use_a2l": True, "use_dav": True, "use_dvv": True},
}


def method_name(variant: str) -> str:
    """The method name of a variant in result rows: ``cals-baseline``, ``cals+a2l``, ..."""
    return f"cals{variant}" if variant.startswith("+") else f"cals-{variant}"


def variant_config(cfg: Any, variant: str) -> Any:
    """``cfg`` (a :class:`cals.config.CALSConfig`) with the flags of ``variant`` and nothing else changed."""
    from cals.config import with_overrides

    if variant not in VARIANTS:
        raise ConfigError(f"unknown ablation variant {variant!r}; known: {', '.join(VARIANTS)}")
    f = VARIANTS[variant]
    return with_overrides(cfg, model={"use_a2l": f["use_a2l"]}, loss={"use_dav": f["use_dav"], "use_dvv": f["use_dvv"]})


def _stages(cfg: Any) -> tuple[str, ...]:
    # The sync module is only used for the A2L targets and the d_av / d_vv losses: the plain baseline
    # skips its pretraining (the config itself is unchanged).
    needs_sync = cfg.model.use_a2l or cfg.loss.use_dav or cfg.loss.use_dvv
    return ("sync", "a2l", "e2e") if needs_sync else ("e2e",)


def train_variant(cfg: Any, variant: str, out: Path, device: str, bank: Any, config_path: str,
                  progress: bool = True) -> Path:
    """Train (or resume) one variant into ``out`` and export ``out/weights.safetensors`` with its card."""
    from cals.checkpoint import export
    from cals.train import Trainer

    weights = out / "weights.safetensors"
    if weights.exists():
        return weights
    trainer = Trainer(cfg, out, device, bank)
    resumed = trainer.resume()
    last = trainer.fit(_stages(cfg), progress=progress)
    export(trainer.model, cfg, weights, {
        "command": f"talkbench ablate --config {config_path} --variants {variant}",
        "data": {"dataset": cfg.train.dataset, "split": cfg.train.split, "clips": len(bank.clips)},
        "seed": cfg.train.seed, "steps": trainer.step, "resumed": resumed, "variant": variant,
        "flags": VARIANTS[variant], "metrics": {k: round(float(v), 5) for k, v in last.items()},
    })
    return weights


def ablate(config: str | Path, run_dir: str | Path, variants: Sequence[str] = tuple(VARIANTS), train: bool = True,
           weights: Mapping[str, str] | None = None, dataset: str | None = None, root: str | None = None,
           split: str = "test", metrics: Sequence[str] = ("psnr", "ssim", "lmd", "lse"), limit: int | None = None,
           device: str = "auto", crop: str = "auto", progress: bool = True, report: bool = True,
           gen_cache: bool | GenCache | None = None, bank: Any = None) -> SweepResult:
    """Build, train (or take) and evaluate the ablation variants; the experiment page holds the
    Table-4 layout. ``bank`` (a :class:`cals.data.ClipBank`) overrides the config's training data."""
    from cals.adapter import CALSMethod
    from cals.config import load_config
    from talkbench.methods import METHODS

    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(variants))
    if unknown:
        raise ConfigError(f"--weights names variants not in --variants: {', '.join(unknown)}")
    for v in variants:
        if v not in VARIANTS:
            raise ConfigError(f"unknown ablation variant {v!r}; known: {', '.join(VARIANTS)}")
    for v, p in weights.items():
        if not Path(p).exists():
            raise ConfigError(f"--weights {v}: file not found", p)
    base = load_config(config)
    run_dir = Path(run_dir)
    dev = resolve_device(device)
    files: dict[str, str] = {}
    trained: dict[str, bool] = {}
    for v in variants:
        cfg = variant_config(base, v)
        if v in weights:
            files[v], trained[v] = str(weights[v]), False
            continue
        out = run_dir / "train" / v.lstrip("+")
        if not (out / "weights.safetensors").exists() and not train:
            raise ConfigError(f"variant {v} has no checkpoint ({out / 'weights.safetensors'}) and --no-train was given; "
                              f"pass --weights {v}=FILE")
        if bank is None and not (out / "weights.safetensors").exists():
            from cals.data import ClipBank

            bank = ClipBank.from_dataset(base.train, base.model.img_size)
        files[v] = str(train_variant(cfg, v, out, dev, bank, str(config), progress))
        trained[v] = True
    names = {v: method_name(v) for v in variants}
    for v in variants:
        METHODS.register(names[v], CALSMethod, override=True)  # one loaded CALS per variant
    run_config = RunConfig(methods=tuple(names[v] for v in variants), dataset=dataset or base.train.dataset,
                           root=root if root is not None else base.train.root, split=split, metrics=tuple(metrics),
                           weights=tuple((names[v], files[v]) for v in variants), limit=limit, device=device,
                           crop=crop, include_gt=False)
    exp = {"kind": "ablation", "config": str(config), "variants": list(variants), "methods": names,
           "flags": {v: VARIANTS[v] for v in variants}, "paper": "CALS Table 4",
           "weights": {v: {"path": files[v], "trained_here": trained[v]} for v in variants},
           "base_config": asdict(base)}
    return _finish(run_config, run_dir, exp, progress, report, gen_cache)
