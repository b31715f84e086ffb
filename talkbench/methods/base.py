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
    weights_path: Path | None = None  # set by load(); what weights_info() describes

    @abstractmethod
    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        """Load weights (``weights`` overrides the default file) onto ``device``."""

    @abstractmethod
    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Generate every request; results in request order."""

    def weights_info(self) -> dict:
        """Path, sha256 and card of the loaded weights file (``weights_path``; {} when there is none).
        Methods whose weights are several files override it."""
        from talkbench.weights import weights_record

        return weights_record(self.weights_path) if self.weights_path else {}
