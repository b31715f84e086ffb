"""Method specs for the experiments and the tidy columns they add to the results (``base``, ``k``,
``mask``): the store keeps one method name per condition (``cals@ctx=3``), the experiment tables
and figures pivot on the condition."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

from talkbench.conditions import parse_method_spec
from talkbench.errors import ConfigError

FULL = "full"


def parse_ks(text: str | Iterable[str | int]) -> tuple[int | str, ...]:
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
    out: tuple[int | str, ...] = tuple(sorted(set(ks))) + ((FULL,) if full else ())
    if not out:
        raise ConfigError("--k lists no context size")
    return out


def context_specs(methods: Sequence[str], ks: Sequence[int | str]) -> tuple[str, ...]:
    """Every method at every context size: ``cals@ctx=0 ... cals@ctx=full``."""
    for m in methods:
        if "@" in m:
            raise ConfigError(f"give plain method names to the sweep (it adds the conditions), got {m!r}")
    return tuple(f"{m}@ctx={k}" for m in methods for k in ks)


def mask_specs(methods: Sequence[str], span: int) -> tuple[str, ...]:
    """Every method with ``span`` frames of audio masked."""
    if span <= 0:
        raise ConfigError(f"--span must be positive, got {span}")
    for m in methods:
        if "@" in m:
            raise ConfigError(f"give plain method names to the sweep (it adds the conditions), got {m!r}")
    return tuple(f"{m}@mask={span}" for m in methods)


def with_condition_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``base`` (method name), ``k`` (float: +-k frames, inf for full context, NaN without a
    context condition) and ``mask`` (masked span length, 0 for none) to a tidy results frame."""
    df = df.copy()
    specs = {m: parse_method_spec(m) for m in df["method"].unique()}
    df["base"] = df["method"].map(lambda m: specs[m].base)

    def k_of(m: str) -> float:
        if "@ctx=" not in m:
            return math.nan
        return math.inf if specs[m].context is None else float(specs[m].context)

    df["k"] = df["method"].map(k_of)
    df["mask"] = df["method"].map(lambda m: specs[m].mask_span or 0)
    return df


def k_label(k: float) -> str:
    return FULL if math.isinf(k) else str(int(k))
