"""Audio2Head as a talkbench Method.

Weights, in order: ``load(weights=...)`` (``--weights audio2head=FILE``); the official
``audio2head.pth.tar`` on ``talkbench doctor``'s search path ($TALKBENCH_WEIGHTS first); the shipped
``checkpoints/audio2head-synth.safetensors``.

The protocol's reference frame (the clip's first crop) is the single input image, resized to 256
(bilinear, as ``inference.py``); the request's audio goes through the official feature pipeline
(16 kHz mono s16, mean-removed, peak-normalised, 41-d at 100 Hz). The audio is zero-padded at the end
just enough for the features to cover every requested frame (the official video has
``len(features) // 4`` frames, often one short). Outputs, 256-px uint8 as the official writer makes
them (``(x * 255).astype(uint8)``), are resized (area) into the protocol crop. Audio2Head moves the
head itself, so its frames are not aligned with the ground-truth crops (low PSNR/SSIM by design).
The masked-audio condition is honoured by zeroing the audio of the masked frames; the context sweep
is not (the pose LSTM sees all past audio and audio2kp a 64-frame window).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from baselines.audio2head.checkpoint import default_weights, load_audio2head
from baselines.audio2head.pipeline import generate, render
from baselines.audio2head.preprocess import features_for_frames, reference_image
from talkbench.errors import MediaError, MethodError
from talkbench.methods.base import Method
from talkbench.types import GenRequest, GenResult, MethodCard

ADAPTER_NOTES = ("reference = protocol reference frame resized to 256 (bilinear); official 41-d audio features; "
                 "audio zero-padded to cover every frame; 256-px outputs area-resized into the protocol crop; "
                 "frame t drawn with audio2pose row t (row 0 from the image: the official one-frame pose offset)")
POSE_OFFSET = "frame t uses audio2pose output row t; row 0 comes from the image alone (official)"


def to_crops(batch: np.ndarray, size: int) -> np.ndarray:
    """Generator frames (N, 3, 256, 256) in [0, 1] -> (N, size, size, 3) uint8 protocol crops: the official
    writer's ``(x * 255).astype(uint8)``, then an area resize."""
    u8 = (batch.transpose(0, 2, 3, 1) * 255).astype(np.uint8)
    if size == u8.shape[1]:
        return u8
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in u8])


class Audio2HeadMethod(Method):
    card = MethodCard(name="audio2head", version="1", native_size=256,
                      audio_frontend="audio2head 41-d (13 MFCC + 26 logfbank + harvest F0 + voiced), 4 rows per frame",
                      licence="Audio2Head: no licence file in the official repository (weights: research use)",
                      paper="Wang et al., Audio2Head: Audio-driven One-shot Talking-head Generation with Natural "
                            "Head Motion, IJCAI 2021", notes=ADAPTER_NOTES, supports=("mask",))

    def __init__(self, batch_size: int = 16) -> None:
        self.batch_size = batch_size
        self.nets: dict | None = None
        self.device = "cpu"
        self.weights_path: Path | None = None

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        path = Path(weights) if weights else default_weights()
        if path is None:
            raise MethodError("no Audio2Head weights: pass --weights audio2head=audio2head.pth.tar, put the official "
                              "file in $TALKBENCH_WEIGHTS, or train one with `talkbench train audio2head`")
        self.nets = {k: m.to(device) for k, m in load_audio2head(path).items()}
        self.device, self.weights_path = device, path

    @torch.no_grad()
    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        if self.nets is None:
            raise MethodError("call load() first")
        return [self._one(r) for r in requests]

    def _one(self, r: GenRequest) -> GenResult:
        try:
            audio = r.masked_audio  # masked audio = silence in those frames
            feats, pad = features_for_frames(audio, r.sample_rate, r.num_frames, source=r.sample_id)
            gen = generate(self.nets, reference_image(r.reference), feats, device=self.device,
                           batch_size=self.batch_size, frames_out=lambda batch: to_crops(batch, r.size))
            meta = {"adapter": ADAPTER_NOTES, "pose_offset": POSE_OFFSET, "audio_pad_samples": int(pad),
                    "voiced_fraction": float(feats[:, 40].mean()),
                    "head_pose_std": [round(float(v), 4) for v in np.concatenate([gen.rot, gen.trans], 1).std(0)]}
            return GenResult(r.sample_id, gen.frames, meta=meta)
        except (MediaError, MethodError, ValueError) as exc:
            return GenResult(r.sample_id, None, error=getattr(exc, "reason", str(exc)))


class Audio2HeadKpOracle(Audio2HeadMethod):
    """A diagnostic, not a method of the paper: the same weights' generator driven by the keypoint
    detector's output on the ground-truth frames instead of audio2kp's. Its sync scores bound what
    audio2kp can reach with this detector and generator, so a training run can tell a detector that
    does not carry the mouth from an audio2kp that has not learnt it (docs/audio2head.md)."""

    card = MethodCard(name="audio2head-kp-oracle", version="1", native_size=256, audio_frontend="none",
                      notes="oracle: Audio2Head's generator driven by its keypoint detector on the ground-truth "
                            "frames (resized to 256, bilinear); outputs area-resized into the protocol crop")

    def _one(self, r: GenRequest) -> GenResult:
        if r.ground_truth is None:
            return GenResult(r.sample_id, None, error="audio2head-kp-oracle needs request.ground_truth")
        img = torch.from_numpy(reference_image(r.reference))[None].to(self.device)
        src = self.nets["kp_detector"](img)
        out = []
        for i in range(0, r.num_frames, self.batch_size):
            gt = np.stack([reference_image(f) for f in r.ground_truth[i : i + self.batch_size]])
            drv = self.nets["kp_detector"](torch.from_numpy(gt).to(self.device))
            pred = render(self.nets, img, src, drv["value"], drv["jacobian"]).float().cpu().numpy()
            out.append(to_crops(pred, r.size))
        return GenResult(r.sample_id, np.concatenate(out), meta={"adapter": self.card.notes})
