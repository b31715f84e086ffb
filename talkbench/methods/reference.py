"""Reference methods: the bounds of every table.

- ``gt``: returns the ground-truth crops (the paper's "Ground Truth" row: PSNR N/A, SSIM 1, LMD 0,
  and the critics' scores on real footage).
- ``static``: the reference frame repeated (no lip motion at all: a lower bound for sync metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from talkbench.methods.base import Method
from talkbench.types import GenRequest, GenResult, MethodCard


class GroundTruth(Method):
    card = MethodCard(name="gt", version="1", native_size=0, audio_frontend="none",
                      notes="oracle: returns the unmasked ground-truth crops",
                      supports=("mask", "context"))

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        return None

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        out = []
        for r in requests:
            if r.ground_truth is None:
                out.append(GenResult(r.sample_id, None, error="gt needs request.ground_truth"))
            else:
                out.append(GenResult(r.sample_id, np.asarray(r.ground_truth, np.uint8)))
        return out


class StaticFrame(Method):
    card = MethodCard(name="static", version="1", native_size=0, audio_frontend="none",
                      notes="the reference frame repeated for every target frame",
                      supports=("mask", "context"))

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        return None

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        return [GenResult(r.sample_id, np.repeat(r.reference[None], r.num_frames, axis=0)) for r in requests]
