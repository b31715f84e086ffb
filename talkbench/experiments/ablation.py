"""The CALS paper's Table 4 ablation: Baseline (Wav2Lip), +A2L, +d_av, +d_vv.

Row 1 of the paper's Table 4 is Wav2Lip (its numbers equal Wav2Lip's Table 1 row: expert sync loss and
visual quality discriminator), so the ``baseline`` variant is the suite's own Wav2Lip
(:mod:`baselines.wav2lip.train`) trained on the same data with the same budget as the CALS variants
(:func:`wav2lip_config`), and evaluated as the method ``wav2lip-baseline``. The CALS variants are one
YAML config with three flags changed (``model.use_a2l``, ``loss.use_dav``, ``loss.use_dvv``; nothing
else differs); ``unet-baseline`` (``use_a2l: false``: the CALS U-Net with a 5-unit convolutional audio
encoder and no sync loss) is an extra row, not the paper's. Each variant is trained into
``RUN_DIR/train/<variant>/`` (resumable; skipped when its exported ``weights.safetensors`` exists) or
taken from ``--weights VARIANT=FILE``, and all of them are evaluated in one run directory (one method
per variant: ``wav2lip-baseline``, ``cals+a2l``..., so the store, report, statistics and ``talkbench
compare`` treat them as methods).
"""

from __future__ import annotations

import json
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

WAV2LIP = "baseline"  # Table 4 row 1: the suite's Wav2Lip
# CALS trainer variants by their flags; cumulative, as the rows of Table 4.
VARIANTS: dict[str, dict[str, bool]] = {
    "unet-baseline": {"use_a2l": False, "use_dav": False, "use_dvv": False},
    "+a2l": {"use_a2l": True, "use_dav": False, "use_dvv": False},
    "+dav": {"use_a2l": True, "use_dav": True, "use_dvv": False},
    "+dvv": {"use_a2l": True, "use_dav": True, "use_dvv": True},
}
ALL_VARIANTS = (WAV2LIP, *VARIANTS)
# Table 4's marks per row: Baseline, A2L, d_av, d_vv (the U-Net row has no Wav2Lip baseline under it).
MARKS: dict[str, dict[str, bool]] = {WAV2LIP: {"baseline": True, "use_a2l": False, "use_dav": False, "use_dvv": False},
                                     **{v: {"baseline": v != "unet-baseline", **f} for v, f in VARIANTS.items()}}
# Recipe fields of the shipped synthetic-corpus Wav2Lip (checkpoints/wav2lip-synth.json) that the
# baseline takes over on synthetic data: the settings this suite found to train Wav2Lip there.
RECIPE_FIELDS = ("width", "lr", "expert_lr", "expert_loss", "expert_windows", "expert_tau", "face_box",
                 "sync_weight", "sync_threshold", "disc_weight", "eval_every", "eval_batches")


def method_name(variant: str) -> str:
    """The method name of a variant in result rows: ``wav2lip-baseline``, ``cals-unet-baseline``, ``cals+a2l``..."""
    if variant == WAV2LIP:
        return "wav2lip-baseline"
    return f"cals{variant}" if variant.startswith("+") else f"cals-{variant}"


def wav2lip_config(cfg: Any, recipe: Mapping[str, Any] | None = None) -> Any:
    """The Wav2Lip baseline's :class:`baselines.wav2lip.train.Wav2LipTrainConfig` for the CALS config
    ``cfg``: the same data (dataset, root, split, clips, seed) and budget - expert steps = the sync
    module's steps; generator steps = Audio-to-Lip + end-to-end steps; frames rendered per generator
    step = CALS's (batch x ``render_segments`` 5-frame windows; the official batch of 16 when CALS
    renders whole sequences); expert windows per step = CALS's sync segments (batch x ``segments``) -
    with the expert sync loss and the visual quality discriminator (``gan``), as the paper's Wav2Lip.
    ``recipe`` overrides :data:`RECIPE_FIELDS` (default on ``synth-*`` data: those of the shipped
    ``checkpoints/wav2lip-synth.json`` when it is there; elsewhere the official recipe at full width)."""
    from baselines.wav2lip.train import Wav2LipTrainConfig

    tc = cfg.train
    if recipe is None:
        recipe = {}
        if tc.dataset.startswith("synth"):
            from talkbench.weights import read_card, shipped_weights

            shipped = shipped_weights("wav2lip-synth")
            if shipped is not None:
                recipe = {k: v for k, v in read_card(shipped).get("config", {}).items() if k in RECIPE_FIELDS}
        else:
            recipe = {"width": 1.0}
    unknown = sorted(set(recipe) - set(RECIPE_FIELDS))
    if unknown:
        raise ConfigError(f"Wav2Lip recipe fields not allowed here: {', '.join(unknown)} (allowed: {', '.join(RECIPE_FIELDS)})")
    recipe = {k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items()}
    return Wav2LipTrainConfig(
        dataset=tc.dataset, root=tc.root, split=tc.split, max_clips=tc.max_clips, seed=tc.seed, amp=tc.amp,
        expert_steps=tc.sync_steps, generator_steps=tc.a2l_steps + tc.e2e_steps,
        batch_size=tc.batch_size * tc.render_segments if tc.render_segments else 16,
        expert_batch_size=tc.batch_size * cfg.loss.segments, gan=True, **recipe)


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
    last.update(variant_heldout(trainer, cfg))
    export(trainer.model, cfg, weights, {
        "command": f"talkbench ablate --config {config_path} --variants {variant}",
        "data": {"dataset": cfg.train.dataset, "split": cfg.train.split, "clips": len(bank.clips)},
        "seed": cfg.train.seed, "steps": trainer.step, "resumed": resumed, "variant": variant,
        "flags": VARIANTS[variant], "metrics": {k: round(float(v), 5) for k, v in last.items()},
    })
    return weights


def variant_heldout(trainer: Any, cfg: Any) -> dict[str, float]:
    """``heldout_l1`` on 20 clips of the validation split, as ``talkbench train cals`` records it on its
    card (so a variant's card compares with the shipped checkpoint's); empty when there is no val split."""
    from cals.data import ClipBank
    from cals.train import heldout_l1
    from talkbench.errors import TalkbenchError

    try:
        val = ClipBank.from_dataset(cfg.train, cfg.model.img_size, split="val", limit=20)
    except TalkbenchError as exc:
        log.warning("no held-out L1 for the card: %s", exc)
        return {}
    return {"heldout_l1": heldout_l1(trainer, val)}


def train_wav2lip_baseline(cfg: Any, out: Path, device: str, config_path: str, progress: bool = True) -> Path:
    """Train (or resume) the Wav2Lip baseline into ``out`` and export ``out/weights.safetensors`` with
    its card (the Wav2Lip adapter reads the face box from it)."""
    from baselines.wav2lip.train import Wav2LipClips, Wav2LipTrainer
    from talkbench.distributed import unwrap
    from talkbench.errors import TalkbenchError
    from talkbench.weights import save_weights

    weights = out / "weights.safetensors"
    if weights.exists():
        return weights
    wcfg = wav2lip_config(cfg)
    train = Wav2LipClips.from_dataset(wcfg, wcfg.split, wcfg.max_clips)
    try:
        val = Wav2LipClips.from_dataset(wcfg, wcfg.val_split, 20)
    except TalkbenchError:
        val = None
    trainer = Wav2LipTrainer(wcfg, out, device, train, val)
    command = f"talkbench ablate --config {config_path} --variants {WAV2LIP}"
    trainer.commands.append(command)
    resumed = trainer.resume()
    last = trainer.fit(progress=progress)
    metrics = {k: round(float(v), 5) for k, v in last.items()}
    save_weights(weights, unwrap(trainer.gen).state_dict(), {
        "command": command, "commands": trainer.commands,
        "data": {"dataset": wcfg.dataset, "split": wcfg.split, "clips": len(train)},
        "seed": wcfg.seed, "steps": trainer.step, "resumed": resumed, "variant": WAV2LIP, "metrics": metrics,
        "config": json.loads(json.dumps(asdict(wcfg))),
        "note": "Table 4 baseline: the suite's Wav2Lip trained on the CALS config's data with its budget "
                "(talkbench.experiments.ablation.wav2lip_config)",
    })
    return weights


def ablate(config: str | Path, run_dir: str | Path, variants: Sequence[str] = (WAV2LIP, "+a2l", "+dav", "+dvv"),
           train: bool = True, weights: Mapping[str, str] | None = None, dataset: str | None = None,
           root: str | None = None, split: str = "test", metrics: Sequence[str] = ("psnr", "ssim", "lmd", "lse"),
           limit: int | None = None, device: str = "auto", crop: str = "auto", progress: bool = True,
           report: bool = True, gen_cache: bool | GenCache | None = None, bank: Any = None) -> SweepResult:
    """Build, train (or take) and evaluate the ablation variants; the experiment page holds the
    Table-4 layout. ``bank`` (a :class:`cals.data.ClipBank`) overrides the config's training data of
    the CALS variants."""
    from baselines.wav2lip.adapter import Wav2LipMethod
    from cals.adapter import CALSMethod
    from cals.config import load_config
    from talkbench.methods import METHODS

    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(variants))
    if unknown:
        raise ConfigError(f"--weights names variants not in --variants: {', '.join(unknown)}")
    for v in variants:
        if v not in ALL_VARIANTS:
            raise ConfigError(f"unknown ablation variant {v!r}; known: {', '.join(ALL_VARIANTS)}")
    for v, p in weights.items():
        if not Path(p).exists():
            raise ConfigError(f"--weights {v}: file not found", p)
    base = load_config(config)
    run_dir = Path(run_dir)
    dev = resolve_device(device)
    files: dict[str, str] = {}
    trained: dict[str, bool] = {}
    for v in variants:
        if v in weights:
            files[v], trained[v] = str(weights[v]), False
            continue
        out = run_dir / "train" / v.lstrip("+")
        if not (out / "weights.safetensors").exists() and not train:
            raise ConfigError(f"variant {v} has no checkpoint ({out / 'weights.safetensors'}) and --no-train was given; "
                              f"pass --weights {v}=FILE")
        if v == WAV2LIP:
            files[v] = str(train_wav2lip_baseline(base, out, dev, str(config), progress))
        else:
            if bank is None and not (out / "weights.safetensors").exists():
                from cals.data import ClipBank

                bank = ClipBank.from_dataset(base.train, base.model.img_size)
            files[v] = str(train_variant(variant_config(base, v), v, out, dev, bank, str(config), progress))
        trained[v] = True
    names = {v: method_name(v) for v in variants}
    for v in variants:  # one loaded model per variant
        METHODS.register(names[v], Wav2LipMethod if v == WAV2LIP else CALSMethod, override=True)
    run_config = RunConfig(methods=tuple(names[v] for v in variants), dataset=dataset or base.train.dataset,
                           root=root if root is not None else base.train.root, split=split, metrics=tuple(metrics),
                           weights=tuple((names[v], files[v]) for v in variants), limit=limit, device=device,
                           crop=crop, include_gt=False)
    exp = {"kind": "ablation", "config": str(config), "variants": list(variants), "methods": names,
           "flags": {v: MARKS[v] for v in variants}, "paper": "CALS Table 4",
           "weights": {v: {"path": files[v], "trained_here": trained[v]} for v in variants},
           "base_config": asdict(base),
           **({"wav2lip_config": json.loads(json.dumps(asdict(wav2lip_config(base))))} if WAV2LIP in variants else {})}
    return _finish(run_config, run_dir, exp, progress, report, gen_cache)
