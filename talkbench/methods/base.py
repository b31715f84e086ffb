"""The Method protocol (contract): a card, ``load``, and batched ``generate`` in request order."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from talkbench.types import GenRequest, GenResult, MethodCard


class Method(ABC):
    """A talking-face generator as the harness drives it.

    ``generate`` receives a list of requests and must return one :class:`GenResult` per request,
    in the same order, with frames at the request's crop size (``request.size``) as uint8 RGB.
    A failure for one item is a result with ``error`` set, not an exception.
    """

    card: MethodCard

    @abstractmethod
    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        """Load weights (``weights`` overrides the default file) onto ``device``."""

    @abstractmethod
    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Generate every request; results in request order."""

    def weights_info(self) -> dict:
        """Path, sha256 and provenance of the loaded weights ({} when the method has none)."""
        return {}
