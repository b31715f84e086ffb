"""One generic registry for methods, datasets and metrics.

Entries are either objects or lazy ``"module:attr"`` strings imported on first ``get``; unknown
names raise ``KeyError`` with "did you mean" suggestions. Third-party methods plug in through the
``talkbench.methods`` entry-point group without editing talkbench.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def import_string(spec: str) -> Any:
    """Import ``"package.module:attr"``."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"lazy entry {spec!r} must look like 'module:attr'")
    return getattr(importlib.import_module(module_name), attr)


class Registry(Generic[T]):
    """Name -> object (or lazy import string). ``kind`` is used in error messages."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T | str] = {}
        self._loaded_entry_points = False

    def register(self, name: str, obj: T | str | None = None, *, override: bool = False) -> Any:
        """Register ``obj`` under ``name``; without ``obj`` acts as a decorator."""

        def _add(o: T | str) -> T | str:
            if name in self._entries and not override:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = o
            return o

        if obj is None:
            return _add
        return _add(obj)

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points or not self.entry_point_group:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=self.entry_point_group):
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            entry = import_string(entry)
            self._entries[name] = entry
        return entry  # type: ignore[return-value]
