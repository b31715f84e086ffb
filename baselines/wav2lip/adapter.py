"""Wav2Lip as a talkbench Method.

Weights, in order: ``load(weights=...)``; the official ``wav2lip_gan.pth`` / ``wav2lip.pth`` found by
``talkbench doctor``'s search path; the shipped ``talkbench/checkpoints/wav2lip-synth.safetensors``. The
protocol gives 128-px face crops: the adapter resizes them to Wav2Lip's 96 px (bilinear, as
``inference.py``), uses the protocol's reference frame (the first frame) as the identity input
(official inference feeds the current unmasked frame, which the protocol withholds), and resizes the
output back to the request size. A checkpoint whose card has a ``face_box`` (trained with
``--face-box``) gets that region of the crop as its face instead, as the official pipeline feeds its
detector box; the output is pasted hard into the box, and the rest of the frame is the pose prior's
upper half and the reference frame's lower half (the protocol withholds the target's). These choices
are written into each result's ``meta``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from baselines.wav2lip.checkpoint import load_wav2lip
from baselines.wav2lip.preprocess import box_pixels, mel_chunks, model_inputs
from talkbench.errors import MethodError
from talkbench.io.audio import wav2lip_mel
from talkbench.methods.base import Method
from talkbench.types import GenRequest, GenResult, MethodCard

ADAPTER_NOTES = ("protocol crops resized to 96x96 (bilinear) and back; reference input = protocol reference "
                 "frame; BGR inside the model; mel chunks of 16 steps at int(i*80/fps)")


def default_weights() -> Path | None:
    from talkbench.weights import find_weights, shipped_weights

    return find_weights("wav2lip_gan.pth") or find_weights("wav2lip.pth") or shipped_weights("wav2lip-synth")


def paste(r: GenRequest, faces_rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Faces resized into ``box`` of a canvas made of the pose prior's upper half and the reference
    frame's lower half (the protocol withholds the target's)."""
    x0, y0, x1, y1 = box_pixels(box, r.size, r.size)
    out = r.pose_prior.copy()
    out[:, r.size // 2 :] = r.reference[r.size // 2 :]
    for t, f in enumerate(faces_rgb):
        out[t, y0:y1, x0:x1] = cv2.resize(f, (x1 - x0, y1 - y0))
    return out


class Wav2LipMethod(Method):
    """Also the base of the other Wav2Lip-shaped generators (one mel window and one face pair per frame,
    frames independent): a subclass says how it loads, what its face input is and how its output maps
    to pixels."""

    card = MethodCard(name="wav2lip", version="1", native_size=96, audio_frontend="wav2lip-mel (80x16 per frame)",
                      licence="Wav2Lip: non-commercial research licence (official weights)",
                      paper="Prajwal et al., A Lip Sync Expert Is All You Need, ACM MM 2020", notes=ADAPTER_NOTES,
                      supports=("mask",))

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self.model = None
        self.device = "cpu"
        self.weights_path: Path | None = None
        self.face_box: tuple[float, float, float, float] | None = None

    def default_weights(self) -> Path | None:
        return default_weights()

    def missing_weights_message(self) -> str:
        return ("no Wav2Lip weights: pass --weights wav2lip=wav2lip_gan.pth, put the official file in "
                "$TALKBENCH_WEIGHTS, or train one with `talkbench train wav2lip`")

    def load_model(self, path: Path) -> torch.nn.Module:
        return load_wav2lip(path, "generator")

    def model_faces(self, r: GenRequest) -> np.ndarray:
        """(T, 6, S, S) float32 model input for a request."""
        return model_inputs(r.pose_prior, r.reference, box=self.face_box)

    def to_bgr(self, y: np.ndarray) -> np.ndarray:
        """Model output (T, S, S, 3) float to uint8 BGR (Wav2Lip: sigmoid in [0, 1], truncated)."""
        return (y * 255.0).clip(0, 255).astype(np.uint8)

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        path = Path(weights) if weights else self.default_weights()
        if path is None:
            raise MethodError(self.missing_weights_message())
        from talkbench.weights import read_card

        self.model = self.load_model(path).to(device)
        self.device, self.weights_path = device, path
        box = read_card(path).get("config", {}).get("face_box") if path.suffix == ".safetensors" else None
        self.face_box = tuple(float(v) for v in box) if box else None

    @torch.no_grad()
    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        if self.model is None:
            raise MethodError("call load() first")
        results = []
        for r in requests:
            try:
                audio = r.masked_audio  # masked audio = silence in those frames (no mask token)
                mel = wav2lip_mel(audio)
                if np.isnan(mel).any():
                    raise MethodError("mel spectrogram has NaN (silent or corrupt audio)")
                chunks = torch.from_numpy(mel_chunks(mel, r.num_frames, r.fps))[:, None]
                faces = torch.from_numpy(self.model_faces(r))
                outs = []
                for i in range(0, r.num_frames, self.batch_size):
                    y = self.model(chunks[i : i + self.batch_size].to(self.device), faces[i : i + self.batch_size].to(self.device))
                    outs.append(y.float().cpu())
                bgr = self.to_bgr(torch.cat(outs).permute(0, 2, 3, 1).numpy())
                rgb = np.ascontiguousarray(bgr[..., ::-1])
                if self.face_box is not None:
                    frames = paste(r, rgb, self.face_box)
                elif rgb.shape[1] != r.size:
                    frames = np.stack([cv2.resize(f, (r.size, r.size)) for f in rgb])
                else:
                    frames = rgb
                meta = {"adapter": self.card.notes, "face_box": list(self.face_box) if self.face_box else None}
                results.append(GenResult(r.sample_id, frames, meta=meta))
            except MethodError as exc:
                results.append(GenResult(r.sample_id, None, error=exc.reason))
        return results
