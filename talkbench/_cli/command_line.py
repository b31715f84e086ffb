"""The invocation of a training command as it would be typed, for weight cards."""

from __future__ import annotations

import click


def command_line(ctx: click.Context | None = None) -> str:
    """``talkbench <group> <command>`` plus the options that differ from their defaults (argv is not ours
    under a test runner or another program that calls the CLI)."""
    ctx = ctx or click.get_current_context()
    parts = ctx.command_path.split()
    parts[0] = "talkbench"
    for p in ctx.command.params:
        v = ctx.params.get(p.name)
        if v is None or v == p.default or v is False or v == ():
            continue
        if getattr(p, "is_flag", False):
            parts.append(p.opts[0])
        elif isinstance(v, (tuple, list)):
            parts.extend(f"{p.opts[0]} {x}" for x in v)
        else:
            parts.append(f"{p.opts[0]} {v}")
    return " ".join(parts)
