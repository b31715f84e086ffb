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

from pathlib import Path

import numpy as np
import torch

from baselines.synctalkface.checkpoint import load_synctalkface
from baselines.synctalkface.model import SIZE
from baselines.wav2lip.adapter import Wav2LipMethod
from baselines.wav2lip.preprocess import model_inputs
from talkbench.types import GenRequest, MethodCard

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


class SyncTalkFaceMethod(Wav2LipMethod):
    """The Wav2Lip adapter's loop (frames independent at inference) with SyncTalkFace's inputs and output."""

    card = MethodCard(name="synctalkface", version="1", native_size=SIZE, audio_frontend="wav2lip-mel (80x16 per frame)",
                      licence="re-implementation; weights trained here (the authors published none)",
                      paper="Park et al., SyncTalkFace: Talking Face Generation with Precise Lip-Syncing via "
                            "Audio-Lip Memory, AAAI 2022", notes=ADAPTER_NOTES, supports=("mask",))

    def default_weights(self) -> Path | None:
        return default_weights()

    def missing_weights_message(self) -> str:
        return ("no SyncTalkFace weights: pass --weights synctalkface=FILE (the authors' training checkpoint dict "
                f"or our safetensors), put {OFFICIAL_NAME} in $TALKBENCH_WEIGHTS, or train one with "
                "`talkbench train synctalkface`")

    def load_model(self, path: Path) -> torch.nn.Module:
        return load_synctalkface(path)

    def model_faces(self, r: GenRequest) -> np.ndarray:
        return model_faces(r.pose_prior, r.reference, self.face_box)

    def to_bgr(self, y: np.ndarray) -> np.ndarray:
        """``Tanh`` output in [-1, 1] to [0, 255], rounded."""
        return ((y + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
