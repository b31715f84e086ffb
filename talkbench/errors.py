"""Typed errors. Every error names the file (or item) and the problem, so a batch job can record it."""

from __future__ import annotations

from pathlib import Path


class TalkbenchError(Exception):
    """Base class. ``path`` is the offending file or item, ``reason`` a short human-readable cause."""

    def __init__(self, reason: str, path: str | Path | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class MediaError(TalkbenchError):
    """A media file cannot be decoded, is truncated, empty, or lacks a required stream."""


class NoAudioError(MediaError):
    """The container has no audio stream."""


class FaceNotFoundError(TalkbenchError):
    """No face (or a face lost for too long) in a clip or frame."""


class DatasetError(TalkbenchError):
    """A dataset root, split file or sample is missing or malformed."""


class ConfigError(TalkbenchError):
    """A configuration is invalid (unknown keys, bad values). Maps to exit code 2."""


class CheckpointError(TalkbenchError):
    """A checkpoint is unsafe, has missing/unexpected keys or wrong shapes."""


class MethodError(TalkbenchError):
    """A method failed to generate for one item."""


class MetricError(TalkbenchError):
    """A metric cannot be computed for one item (too short, silent, no face...)."""
