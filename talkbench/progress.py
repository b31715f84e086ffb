"""A process-wide switch for progress bars that no ``progress=`` argument reaches: a default synthetic
corpus generated on first use inside a dataset reader. ``talkbench paper --quiet`` turns it off.
(tqdm's own ``TQDM_DISABLE`` is read once, when tqdm is imported, so it cannot be set by a command.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_quiet = False


@contextmanager
def quiet() -> Iterator[None]:
    global _quiet
    before, _quiet = _quiet, True
    try:
        yield
    finally:
        _quiet = before


def shown(progress: bool = True) -> bool:
    """Whether a bar asked for with ``progress`` is drawn."""
    return progress and not _quiet
