"""PC-AVS as a talkbench Method.

Weights, in order: ``load(weights=...)`` (a folder with the official ``latest_net_{G,V,E,A_sync}.pth``
or one of our safetensors files); the official folder found under ``$TALKBENCH_WEIGHTS/pcavs/`` (and
the other weight folders ``talkbench doctor`` lists); the shipped ``checkpoints/pcavs-synth.safetensors``.

Per request:
- alignment: 68 dlib landmarks on the protocol's reference frame (the first frame; the target frames'
  lower halves are withheld, so the inner mouth cannot be measured on them) give one similarity
  transform to PC-AVS's 224 template, used for every frame (``align.clip_transforms`` on that frame:
  the per-frame mouth-offset correction has a single frame to work with); no face found is a per-item
  error;
- inputs: reference and pose-prior frames warped, load-time cropped and resized to 224 (then to the
  checkpoint's size), RGB in [-1, 1]; the driving pose is the pose prior's own frames (the protocol's
  pose prior: target frames, lower half masked);
- audio: RMS 0.1, lws-style STFT, 80 mels, 4 rows per frame, a 20-row window per frame; every frame
  gets a window (silence-padded mel, see ``audio.EDGE_POLICY``); ``@mask=N`` frames' audio is zeroed
  before the front-end; ``@ctx=K`` is not honoured (the model's window is fixed at 5 frames);
- generation: audio mouth feature x 1.2, pose-driven output, noise from a ``torch.Generator`` seeded
  with 0 for every clip (deterministic; the official code seeds the global RNG with 0 once);
- output: the 224 frames are brought back into the protocol crop by the inverse of the alignment and
  crop; crop pixels the aligned square does not cover keep the pose prior's upper half and the
  reference frame's lower half.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from baselines.pcavs.align import CANVAS, clip_transforms, from_model_output, to_model_input
from baselines.pcavs.audio import EDGE_POLICY, frame_windows, melspectrogram
from baselines.pcavs.checkpoint import find_official, load_pcavs, weights_files
from talkbench.errors import MethodError
from talkbench.methods.base import Method
from talkbench.types import GenRequest, GenResult, MethodCard

ADAPTER_NOTES = ("alignment from dlib-68 landmarks of the reference frame to the 224 template (one transform per "
                 "clip), load-time crop rows 0-191 cols 16-207; driving pose = pose prior frames; mouth feature x1.2; "
                 f"{EDGE_POLICY}; noise seed 0 per clip; output inverse-warped into the protocol crop")
NOISE_SEED = 0


def default_weights() -> Path | None:
    from talkbench.weights import shipped_weights

    return find_official() or shipped_weights("pcavs-synth")


def reference_landmarks(reference: np.ndarray) -> tuple[np.ndarray, str]:
    """dlib 68 landmarks of the reference crop; no face is a per-item error (a shape predictor run on a
    guessed box always returns a plausible-looking shape, even on a blank image)."""
    from talkbench.faces.landmarks import detect_landmarks

    lm = detect_landmarks(reference[None])[0]
    if not np.isfinite(lm).all():
        raise MethodError("no face landmarks on the reference frame (dlib found no face)")
    return lm, "detected"


class PCAVSMethod(Method):
    card = MethodCard(name="pcavs", version="1", native_size=224,
                      audio_frontend="PC-AVS lws mel (RMS 0.1, 1280/160, 80 mels 125-7600 Hz, 80x20 per frame)",
                      licence="PC-AVS: CC-BY-4.0 code; official weights under the authors' terms",
                      paper="Zhou et al., Pose-Controllable Talking Face Generation by Implicitly Modularized "
                            "Audio-Visual Representation, CVPR 2021", notes=ADAPTER_NOTES, supports=("mask",))

    def __init__(self, batch_size: int = 16) -> None:
        self.batch_size = batch_size
        self.model = None
        self.device = "cpu"
        self.weights_path: Path | None = None

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        path = Path(weights) if weights else default_weights()
        if path is None:
            raise MethodError("no PC-AVS weights: pass --weights pcavs=DIR (the folder with latest_net_{G,V,E,A_sync}.pth), "
                              "put that folder at $TALKBENCH_WEIGHTS/pcavs/, or train one with `talkbench train pcavs`")
        self.model = load_pcavs(path).to(device)
        self.device, self.weights_path = device, path

    def weights_info(self) -> dict:
        if self.weights_path is None:
            return {}
        files = weights_files(self.weights_path)
        if self.weights_path.is_dir():
            import hashlib

            # one digest for the run's identity: sha256 of the four files' sha256 in G, V, E, A_sync order
            joint = hashlib.sha256("".join(f["sha256"] for f in files.values()).encode()).hexdigest()
            return {"path": str(self.weights_path.resolve()), "sha256": joint, "files": files}
        return next(iter(files.values()))

    def _inputs(self, frames: np.ndarray, m: np.ndarray) -> torch.Tensor:
        size = self.model.cfg.size
        out = []
        for f in frames:
            x = to_model_input(f, m)
            if size != CANVAS:
                x = cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA)
            out.append(x)
        return torch.from_numpy(np.stack(out).transpose(0, 3, 1, 2).copy())

    @torch.no_grad()
    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        if self.model is None:
            raise MethodError("call load() first")
        return [self._one(r) for r in requests]

    def _one(self, r: GenRequest) -> GenResult:
        try:
            lm, how = reference_landmarks(r.reference)
            m = clip_transforms(lm[None])[0]
            audio = r.masked_audio  # masked audio = silence in those frames (PC-AVS has no mask token)
            if r.sample_rate != 16000:
                raise MethodError(f"PC-AVS needs 16 kHz audio, got {r.sample_rate} Hz")
            windows = torch.from_numpy(frame_windows(melspectrogram(audio), r.num_frames))
            ref = self._inputs(r.reference[None], m).to(self.device)
            poses = self._inputs(r.pose_prior, m)
            gen = torch.Generator(device=self.device).manual_seed(NOISE_SEED)
            outs = []
            for i in range(0, r.num_frames, self.batch_size):
                y = self.model.generate(ref, windows[i : i + self.batch_size].to(self.device),
                                        poses[i : i + self.batch_size].to(self.device), gen)
                outs.append(y.float().cpu())
            imgs = ((torch.cat(outs).permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
            frames = r.pose_prior.copy()
            half = r.size // 2
            frames[:, half:] = r.reference[half:]
            for t, img in enumerate(imgs):
                if img.shape[0] != CANVAS:
                    img = cv2.resize(img, (CANVAS, CANVAS), interpolation=cv2.INTER_LINEAR)
                back, cover = from_model_output(img, m, r.size)
                frames[t][cover] = back[cover]
            return GenResult(r.sample_id, frames, meta={"adapter": ADAPTER_NOTES, "landmarks": how,
                                                         "coverage": float(cover.mean())})
        except MethodError as exc:
            return GenResult(r.sample_id, None, error=exc.reason)
