"""SyncTalkFace as a talkbench Method.

No inference code was ever published; inference follows what the authors' training code implies:
128x128 BGR faces in [-1, 1], input [target with its lower half zeroed | reference], one Wav2Lip mel
window (16 steps at ``int(i * 80 / fps)``) per frame, the lip recalled from the memory by the audio alone
(key addressing; the lip encoder and value addressing are training-only), the ``Tanh`` output mapped
back to [0, 255]. The frames of a 5-frame training window are independent at inference (batch norm in
eval mode, per-frame memory), so frames are batched freely. The protocol's reference frame is the
identity input (training used a window from another start of the same clip). A checkpoint whose card
has a ``face_box`` gets that region of the crop as its face and its output pasted back into it, as the
Wav2Lip adapter does. ``@mask=N``: the masked frames' audio is zeroed (no mask token), as for Wav2Lip.

Weights, in order: ``load(weights=...)`` (the authors' ``{"model_state_dict", "dec_state_dict",
"disc_state_dict"}`` or our safetensors); ``synctalkface.ckpt`` on ``talkbench doctor``'s search path;
the shipped ``talkbench/checkpoints/synctalkface-synth.safetensors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from baselines.synctalkface.checkpoint import load_synctalkface
from baselines.synctalkface.model import SIZE
from baselines.wav2lip.preprocess import box_pixels, mel_chunks, model_inputs
from talkbench.errors import MethodError
from talkbench.io.audio import wav2lip_mel
from talkbench.methods.base import Method
from talkbench.types import GenRequest, GenResult, MethodCard

ADAPTER_NOTES = ("re-implementation (no official inference code or weights); protocol crops at 128 px, BGR in "
                 "[-1, 1], lower half zeroed, reference input = protocol reference frame, lip recalled from the "
                 "Audio-Lip Memory by the audio alone; mel chunks of 16 steps at int(i*80/fps)")
OFFICIAL_NAME = "synctalkface.ckpt"


def default_weights() -> Path | None:
    from talkbench.weights import find_weights, shipped_weights

    return find_weights(OFFICIAL_NAME) or shipped_weights("synctalkface-synth")


def model_faces(pose_prior_rgb: np.ndarray, reference_rgb: np.ndarray,
                box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """(T, 6, 128, 128) float32 in [-1, 1], BGR: [target, lower half 0 | reference]."""
    x = model_inputs(pose_prior_rgb, reference_rgb, SIZE, box) * 2.0 - 1.0
    x[:, :3, SIZE // 2 :] = 0.0
    return x


def paste(r: GenRequest, faces_rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Faces resized into ``box`` of a canvas made of the pose prior's upper half and the reference
    frame's lower half (the protocol withholds the target's)."""
    x0, y0, x1, y1 = box_pixels(box, r.size, r.size)
    out = r.pose_prior.copy()
    out[:, r.size // 2 :] = r.reference[r.size // 2 :]
    for t, f in enumerate(faces_rgb):
        out[t, y0:y1, x0:x1] = cv2.resize(f, (x1 - x0, y1 - y0))
    return out


class SyncTalkFaceMethod(Method):
    card = MethodCard(name="synctalkface", version="1", native_size=SIZE, audio_frontend="wav2lip-mel (80x16 per frame)",
                      licence="re-implementation; weights trained here (the authors published none)",
                      paper="Park et al., SyncTalkFace: Talking Face Generation with Precise Lip-Syncing via "
                            "Audio-Lip Memory, AAAI 2022", notes=ADAPTER_NOTES, supports=("mask",))

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self.model = None
        self.device = "cpu"
        self.weights_path: Path | None = None
        self.face_box: tuple[float, float, float, float] | None = None

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        path = Path(weights) if weights else default_weights()
        if path is None:
            raise MethodError("no SyncTalkFace weights: pass --weights synctalkface=FILE (the authors' training "
                              f"checkpoint dict or our safetensors), put {OFFICIAL_NAME} in $TALKBENCH_WEIGHTS, or "
                              "train one with `talkbench train synctalkface`")
        from talkbench.weights import read_card

        self.model = load_synctalkface(path).to(device)
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
                audio = r.masked_audio
                mel = wav2lip_mel(audio)
                if np.isnan(mel).any():
                    raise MethodError("mel spectrogram has NaN (silent or corrupt audio)")
                chunks = torch.from_numpy(mel_chunks(mel, r.num_frames, r.fps))[:, None]
                faces = torch.from_numpy(model_faces(r.pose_prior, r.reference, self.face_box))
                outs = []
                for i in range(0, r.num_frames, self.batch_size):
                    y = self.model(chunks[i : i + self.batch_size].to(self.device), faces[i : i + self.batch_size].to(self.device))
                    outs.append(y.float().cpu())
                bgr = ((torch.cat(outs).permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
                rgb = np.ascontiguousarray(bgr[..., ::-1])
                if self.face_box is not None:
                    frames = paste(r, rgb, self.face_box)
                elif r.size != SIZE:
                    frames = np.stack([cv2.resize(f, (r.size, r.size)) for f in rgb])
                else:
                    frames = rgb
                meta = {"adapter": ADAPTER_NOTES, "face_box": list(self.face_box) if self.face_box else None}
                results.append(GenResult(r.sample_id, frames, meta=meta))
            except MethodError as exc:
                results.append(GenResult(r.sample_id, None, error=exc.reason))
        return results
