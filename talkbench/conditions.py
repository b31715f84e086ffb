"""Method specs: a method name with conditions, ``name@ctx=K`` (audio context limited to +-K frames,
paper Fig. 6; ``ctx=full`` is the whole clip) and ``name@mask=N`` (the audio of N consecutive frames in
the middle of the clip masked, paper Fig. 5). Parsing, formatting, and the tidy columns the experiments
pivot on.

A condition is part of the method's name in every result row, so the store, statistics, reports and
``talkbench compare`` treat ``cals@ctx=3`` as one more method; the base method is loaded once."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from talkbench.errors import ConfigError

KEYS = {"ctx": "context", "mask": "mask"}
FULL: Literal["full"] = "full"  # ctx=full: the whole clip, stated explicitly (not the same as no condition)
Context = int | Literal["full"]


@dataclass(frozen=True)
class MethodSpec:
    spec: str
    base: str
    context: Context | None = None  # None: no context condition; FULL: the whole clip; K: +-K frames
    mask_span: int | None = None

    @property
    def context_frames(self) -> int | None:
        """The limit handed to the method (``GenRequest.context_frames``): None for none or full."""
        return self.context if isinstance(self.context, int) else None

    @property
    def needs(self) -> tuple[str, ...]:
        """Conditions the method's card must support (``ctx=full`` asks nothing of the method)."""
        return tuple(k for k, v in (("context", self.context_frames), ("mask", self.mask_span)) if v is not None)


def parse_method_spec(spec: str) -> MethodSpec:
    """``"cals@ctx=3@mask=7"`` -> MethodSpec; ``ctx=full`` is :data:`FULL`."""
    base, *conds = spec.split("@")
    if not base:
        raise ConfigError(f"method spec {spec!r} has no method name")
    values: dict[str, Context] = {}
    for c in conds:
        key, _, raw = c.partition("=")
        if key not in KEYS or not raw:
            raise ConfigError(f"method spec {spec!r}: unknown condition {c!r} (use ctx=K, ctx=full or mask=N)")
        if key == "ctx" and raw == FULL:
            values[key] = FULL
            continue
        try:
            n = int(raw)
        except ValueError as exc:
            raise ConfigError(f"method spec {spec!r}: {key} needs an integer, got {raw!r}") from exc
        if n < 0 or (key == "mask" and n == 0):
            raise ConfigError(f"method spec {spec!r}: {key} must be {'positive' if key == 'mask' else '>= 0'}")
        values[key] = n
    mask = values.get("mask")
    return MethodSpec(spec, base, values.get("ctx"), mask if isinstance(mask, int) else None)


def format_method_spec(base: str, context: Context | None = None, mask_span: int | None = None) -> str:
    """The inverse of :func:`parse_method_spec`."""
    if "@" in base:
        raise ConfigError(f"give a plain method name (conditions are added), got {base!r}")
    return base + (f"@ctx={context}" if context is not None else "") + (f"@mask={mask_span}" if mask_span else "")


def mask_span_frames(num_frames: int, span: int) -> tuple[int, ...]:
    """The ``span`` frames centred in a clip of ``num_frames`` (all of them when the clip is shorter)."""
    span = min(span, num_frames)
    start = (num_frames - span) // 2
    return tuple(range(start, start + span))


def parse_ks(text: str | Iterable[str | int]) -> tuple[Context, ...]:
    """``"0,1,2,full"`` -> ``(0, 1, 2, "full")`` (sorted, unique, "full" last)."""
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else [str(s).strip() for s in text]
    ks: list[int] = []
    full = False
    for s in items:
        if not s:
            continue
        if s == FULL:
            full = True
            continue
        try:
            k = int(s)
        except ValueError as exc:
            raise ConfigError(f"--k expects integers >= 0 or 'full', got {s!r}") from exc
        if k < 0:
            raise ConfigError(f"--k expects integers >= 0 or 'full', got {s!r}")
        ks.append(k)
    out: tuple[Context, ...] = tuple(sorted(set(ks))) + ((FULL,) if full else ())
    if not out:
        raise ConfigError("--k lists no context size")
    return out


def context_specs(methods: Sequence[str], ks: Sequence[Context]) -> tuple[str, ...]:
    """Every method at every context size: ``cals@ctx=0 ... cals@ctx=full``."""
    return tuple(format_method_spec(m, context=k) for m in methods for k in ks)


def mask_specs(methods: Sequence[str], span: int) -> tuple[str, ...]:
    """Every method with ``span`` frames of audio masked."""
    if span <= 0:
        raise ConfigError(f"--span must be positive, got {span}")
    return tuple(format_method_spec(m, mask_span=span) for m in methods)


def with_condition_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``base`` (method name), ``k`` (float: +-k frames, inf for full context, NaN without a
    context condition) and ``mask`` (masked span length, 0 for none) to a tidy results frame."""
    df = df.copy()
    specs = {m: parse_method_spec(m) for m in df["method"].unique()}
    df["base"] = df["method"].map(lambda m: specs[m].base)

    def k_of(m: str) -> float:
        c = specs[m].context
        return math.nan if c is None else (math.inf if c == FULL else float(c))

    df["k"] = df["method"].map(k_of)
    df["mask"] = df["method"].map(lambda m: specs[m].mask_span or 0)
    return df


def k_label(k: float) -> str:
    return FULL if math.isinf(k) else str(int(k))
