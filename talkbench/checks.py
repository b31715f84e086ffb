"""Checks of a run's configuration that need no decoding, done before a run directory exists.

A typo in a method, metric, dataset, split or root, or a ``--limit`` below 1, is a
:class:`ConfigError` (exit code 2) raised before anything is created, so a failed invocation leaves
no half-made run directory behind.
"""

from __future__ import annotations

from typing import Any

from talkbench.conditions import parse_method_spec
from talkbench.errors import ConfigError, TalkbenchError

SYNTH_SPLITS = ("train", "val", "test")  # generated on first use, so no split file exists yet


def _known(registry: Any, name: str) -> None:
    try:
        registry.get(name)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from exc
    except (ImportError, AttributeError):
        pass  # registered but not importable here: the run records it as unavailable


def check_run_config(config: Any) -> Any:
    """Validate a :class:`talkbench.runner.RunConfig`; returns the dataset reader it built."""
    from talkbench.datasets import DATASETS
    from talkbench.methods import METHODS
    from talkbench.metrics import METRICS

    if config.limit is not None and config.limit < 1:
        raise ConfigError(f"--limit must be a positive number of samples, got {config.limit}")
    if not config.all_methods:
        raise ConfigError("no methods given (--methods NAME[,NAME...])")
    if not config.metrics:
        raise ConfigError("no metrics given (--metrics NAME[,NAME...])")
    bases = []
    for m in config.all_methods:
        spec = parse_method_spec(m)
        _known(METHODS, spec.base)
        bases.append(spec.base)
    for name, _ in config.weights:
        if name not in bases:
            raise ConfigError(f"--weights names method {name!r}, which is not in --methods")
    for name in config.metrics:
        _known(METRICS, name)
    try:
        reader_cls = DATASETS.get(config.dataset)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from exc
    try:
        reader = reader_cls(config.root)
    except ConfigError:
        raise
    except TalkbenchError as exc:  # a missing or malformed root is a configuration error here
        raise ConfigError(str(exc)) from exc
    splits = SYNTH_SPLITS if getattr(reader, "_lazy", False) else reader.splits()
    if config.split not in splits:
        raise ConfigError(f"unknown split {config.split!r} for {config.dataset}; available: {', '.join(splits)}")
    return reader
