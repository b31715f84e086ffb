"""CALS configuration: frozen dataclasses read from YAML (unknown keys are errors).

Paper values (section 3, 4.1.4): audio units 80x4 per frame; Audio-to-Lip 6 layers, d=512, FF 2048,
8 heads; phone-level masking t_m=5 at p=0.5; lip-motion units 1024-d from the sync module's visual
encoder over 5-frame windows; lambda1=10 (L1), lambda2=0.07 (GAN), lambda3=0.03 (sync, off until the
reconstruction loss has converged); t_s=5; 128x128 crops; Adam, lr 1e-4.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from talkbench.errors import ConfigError


@dataclass(frozen=True)
class ModelConfig:
    img_size: int = 128
    unit_dim: int = 1024  # lip-motion unit z^v
    d_model: int = 512
    layers: int = 6
    heads: int = 8
    ff: int = 2048
    dropout: float = 0.1
    unet_base: int = 32  # channels of the first U-Net level
    sync_width: float = 1.0  # channel multiplier of the sync module (VGG-M)
    use_a2l: bool = True  # False: the Table 4 baseline (phone-level audio encoder, no context)
    baseline_window: int = 5  # audio units (frames) seen per frame by the baseline encoder


@dataclass(frozen=True)
class LossConfig:
    l1: float = 10.0
    gan: float = 0.07
    sync: float = 0.03
    use_dav: bool = True
    use_dvv: bool = True
    sync_after_steps: int = 0  # 0: switch the sync loss on when the L1 plateaus (see train.py)
    plateau_patience: int = 200
    segments: int = 4  # S segments of t_s frames for d_av / d_vv


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "synth-lrs2"
    root: str | None = None
    split: str = "train"
    # Frames per training sequence at most: shorter utterances are taken whole (padded in the batch),
    # longer clips are cut at a random start that keeps its absolute position (cals/data.py).
    window: int = 160
    min_frames: int = 20  # clips shorter than this are skipped (room for `segments` t_s-frame segments)
    batch_size: int = 8
    lr: float = 1e-4
    sync_steps: int = 2000
    a2l_steps: int = 4000
    e2e_steps: int = 20000
    mask_len: int = 5
    mask_prob: float = 0.5
    t_s: int = 5
    max_clips: int | None = None
    seed: int = 0
    amp: str = "bf16"  # bf16 | fp16 | none (CUDA only)
    noise_snr: tuple[float, float] = (5.0, 30.0)
    noise_prob: float = 0.5
    demand_dir: str | None = None
    specaug_time: int = 10
    specaug_freq: int = 20
    log_every: int = 20
    # End-to-end steps render only this many t_s-frame segments of each window (0: every frame); the
    # Audio-to-Lip module still sees the whole window. Cuts the generator's cost on small machines.
    render_segments: int = 0
    ckpt_every: int = 500
    # Every this many end-to-end steps, measure each loss term's share of the generator's gradient
    # (norm of its weighted gradient over the sum of the norms; 0: never).
    grad_share_every: int = 50


@dataclass(frozen=True)
class CALSConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _build(cls, raw: dict[str, Any], where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown keys in {where}: {', '.join(unknown)} (known: {', '.join(known)})")
    values = {}
    for k, v in raw.items():
        if isinstance(v, list):
            v = tuple(v)
        values[k] = v
    return cls(**values)


def from_dict(raw: dict[str, Any]) -> CALSConfig:
    unknown = sorted(set(raw) - {"model", "loss", "train"})
    if unknown:
        raise ConfigError(f"unknown top-level keys: {', '.join(unknown)} (known: model, loss, train)")
    return CALSConfig(
        model=_build(ModelConfig, raw.get("model", {}) or {}, "model"),
        loss=_build(LossConfig, raw.get("loss", {}) or {}, "loss"),
        train=_build(TrainConfig, raw.get("train", {}) or {}, "train"),
    )


def load_config(path: str | Path) -> CALSConfig:
    p = Path(path)
    if not p.exists():
        builtin = Path(__file__).parent / "configs" / f"{p.stem}.yaml"
        if builtin.exists():
            p = builtin
        else:
            raise ConfigError("config file not found", p)
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML ({exc})", p) from exc
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(exc.reason, p) from exc


def with_overrides(cfg: CALSConfig, **sections: dict[str, Any]) -> CALSConfig:
    return replace(cfg, **{k: replace(getattr(cfg, k), **v) for k, v in sections.items()})
