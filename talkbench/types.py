"""Core data types shared by readers, methods, metrics and the runner (frozen dataclasses).

Conventions (contract): frames are ``uint8`` RGB arrays shaped ``(T, H, W, 3)``; audio is mono
``float32`` in [-1, 1]; the protocol is 25 fps video and 16 kHz audio; landmarks are ``float32``
``(T, 68, 2)`` in pixel (x, y) of the frames they belong to, NaN where no face was found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROTOCOL_FPS = 25.0
PROTOCOL_SR = 16000
PROTOCOL_SIZE = 128
PROTOCOL_SAMPLES_PER_FRAME = PROTOCOL_SR // int(PROTOCOL_FPS)  # 640 audio samples per video frame


@dataclass(frozen=True)
class Sample:
    """One item of a dataset split, as a reader yields it (nothing decoded yet).

    ``sample_id`` is unique within (dataset, split) and stable across runs: e.g. LRW
    ``ABOUT/test/ABOUT_00001``, LRS2 ``6330311066473698535/00011``.
    ``audio_path`` is None when the audio comes from the video container.
    ``word`` is the LRW label (or the centred word of synth-lrw), ``transcript`` the text.
    ``meta`` holds extras, e.g. sidecar paths: ``alignment`` (phoneme timings JSON),
    ``landmarks`` (exact 68-point landmarks .npy), ``articulation``.
    """

    dataset: str
    split: str
    sample_id: str
    video_path: Path
    audio_path: Path | None = None
    transcript: str | None = None
    word: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Clip:
    """A decoded, face-cropped clip at the protocol rate.

    ``frames``: (T, S, S, 3) uint8 RGB face crops. ``audio``: float32 mono at ``sample_rate``.
    ``landmarks``: (T, 68, 2) in crop pixels, NaN rows where no face. ``crop_policy`` says how the
    crop was made (recorded in the run record).
    """

    sample_id: str
    frames: np.ndarray
    audio: np.ndarray
    fps: float = PROTOCOL_FPS
    sample_rate: int = PROTOCOL_SR
    landmarks: np.ndarray | None = None
    crop_policy: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


@dataclass(frozen=True)
class GenRequest:
    """What every method sees (contract).

    ``reference``: (S, S, 3) uint8 RGB identity frame (first frame of the clip by protocol).
    ``pose_prior``: (T, S, S, 3) target crops with the lower half zeroed.
    ``audio``: float32 mono at ``sample_rate`` covering the T frames.
    ``ground_truth``: the unmasked target crops; only oracle methods (``gt``) may read it.
    ``mask_frames``: optional frame indices whose audio is zeroed (the masked-audio experiment).
    ``context_frames``: optional +-k audio window around each frame (the context sweep).
    """

    sample_id: str
    reference: np.ndarray
    pose_prior: np.ndarray
    audio: np.ndarray
    fps: float = PROTOCOL_FPS
    sample_rate: int = PROTOCOL_SR
    ground_truth: np.ndarray | None = None
    mask_frames: tuple[int, ...] = ()
    context_frames: int | None = None

    @property
    def num_frames(self) -> int:
        return int(self.pose_prior.shape[0])

    @property
    def size(self) -> int:
        return int(self.pose_prior.shape[1])

    @property
    def masked_audio(self) -> np.ndarray:
        """The driving audio (float32) with the samples of ``mask_frames`` silenced: how a method
        without a mask token of its own honours the masked-audio condition."""
        audio = np.asarray(self.audio, np.float32)
        if not self.mask_frames:
            return audio
        audio = audio.copy()
        spf = self.sample_rate // round(self.fps)
        for t in self.mask_frames:
            audio[t * spf : (t + 1) * spf] = 0.0
        return audio


@dataclass(frozen=True)
class GenResult:
    """A method's output for one request: (T, S, S, 3) uint8 RGB at the request's crop size,
    or ``error`` (frames None) when that item failed."""

    sample_id: str
    frames: np.ndarray | None
    error: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.frames is not None


@dataclass(frozen=True)
class MethodCard:
    """Static facts about a method, written into the run record."""

    name: str
    version: str
    native_size: int
    fps: float = PROTOCOL_FPS
    audio_frontend: str = ""
    weights: str | None = None
    licence: str = ""
    paper: str = ""
    notes: str = ""
    # Request conditions the method honours: "mask" (GenRequest.mask_frames), "context"
    # (GenRequest.context_frames). The runner refuses a condition a method cannot honour.
    supports: tuple[str, ...] = ()


def lower_half_masked(frames: np.ndarray) -> np.ndarray:
    """The pose prior: a copy of ``frames`` (..., H, W, C) with rows H//2: zeroed."""
    out = np.array(frames, copy=True)
    out[..., out.shape[-3] // 2 :, :, :] = 0
    return out
