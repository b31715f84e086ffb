"""Method conditions: ``name@ctx=K`` (audio context limited to +-K frames, paper Fig. 6) and
``name@mask=N`` (the audio of N consecutive frames in the middle of the clip masked, paper Fig. 5).

A condition is part of the method's name in every result row, so the store, statistics, reports and
``talkbench compare`` treat ``cals@ctx=3`` as one more method; the base method is loaded once."""

from __future__ import annotations

from dataclasses import dataclass

from talkbench.errors import ConfigError

KEYS = {"ctx": "context", "mask": "mask"}


@dataclass(frozen=True)
class MethodSpec:
    spec: str
    base: str
    context: int | None = None
    mask_span: int | None = None

    @property
    def needs(self) -> tuple[str, ...]:
        return tuple(k for k, v in (("context", self.context), ("mask", self.mask_span)) if v is not None)


def parse_method_spec(spec: str) -> MethodSpec:
    """``"cals@ctx=3@mask=7"`` -> MethodSpec; ``ctx=full`` means no limit."""
    base, *conds = spec.split("@")
    if not base:
        raise ConfigError(f"method spec {spec!r} has no method name")
    values: dict[str, int | None] = {}
    for c in conds:
        key, _, raw = c.partition("=")
        if key not in KEYS or not raw:
            raise ConfigError(f"method spec {spec!r}: unknown condition {c!r} (use ctx=K, ctx=full or mask=N)")
        if key == "ctx" and raw == "full":
            values[key] = None
            continue
        try:
            n = int(raw)
        except ValueError as exc:
            raise ConfigError(f"method spec {spec!r}: {key} needs an integer, got {raw!r}") from exc
        if n < 0 or (key == "mask" and n == 0):
            raise ConfigError(f"method spec {spec!r}: {key} must be {'positive' if key == 'mask' else '>= 0'}")
        values[key] = n
    return MethodSpec(spec, base, values.get("ctx"), values.get("mask"))


def mask_span_frames(num_frames: int, span: int) -> tuple[int, ...]:
    """The ``span`` frames centred in a clip of ``num_frames`` (all of them when the clip is shorter)."""
    span = min(span, num_frames)
    start = (num_frames - span) // 2
    return tuple(range(start, start + span))
