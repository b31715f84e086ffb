"""CALS as a talkbench Method (default weights: ``talkbench/checkpoints/cals-synth.safetensors``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cals.checkpoint import load_cals
from cals.inference import generate
from talkbench.errors import MethodError, TalkbenchError
from talkbench.methods.base import Method
from talkbench.types import GenRequest, GenResult, MethodCard


class CALSMethod(Method):
    # version 2: generation in channels_last (outputs within 1 grey level of version 1); version 3: a context
    # limit k zeroes the audio outside [t-k, t+k] of each target frame (it limited attention per layer).
    # The version keys the gen cache.
    card = MethodCard(name="cals", version="3", native_size=128, audio_frontend="log-mel 80x4 per frame (400/160)",
                      paper="Park et al., Exploring Phonetic Context in Lip Movement for Authentic Talking Face "
                            "Generation, ACM MM 2023", supports=("mask", "context"))

    def __init__(self) -> None:
        self.model = None
        self.device = "cpu"
        self.path: Path | None = None

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        from talkbench.weights import shipped_weights

        path = Path(weights) if weights else shipped_weights("cals-synth")
        if path is None:
            raise MethodError("no CALS weights: train with `talkbench train cals` and pass --weights cals=FILE")
        self.model, self.cfg = load_cals(path)
        self.model.to(device)
        self.device, self.path = device, path

    def weights_info(self) -> dict:
        from talkbench.weights import weights_record

        return weights_record(self.path) if self.path else {}

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        if self.model is None:
            raise MethodError("call load() first")
        out = []
        for r in requests:
            try:
                frames = generate(self.model, r.audio, r.reference, r.pose_prior, r.mask_frames, r.context_frames,
                                  self.device)
                out.append(GenResult(r.sample_id, frames))
            except TalkbenchError as exc:
                out.append(GenResult(r.sample_id, None, error=exc.reason))
        return out
