"""ATVGnet as a talkbench Method.

Weights, in order: ``load(weights=...)`` (the official folder with ``atnet_lstm_18.pth``,
``generator_23.pth`` and ``basics/*.npy``, or one of our ``.safetensors``); the folder ``atvgnet/`` found by
``talkbench doctor``'s search path; the shipped ``talkbench/checkpoints/atvgnet-synth.safetensors`` (with its
``-basis.npz``).

Per request, as ``demo.py``: the reference frame goes through the official face pipeline
(:func:`baselines.atvgnet.preprocess.align_reference`; where it fails the item fails, with the reason);
its example landmark -> 6 PCA coefficients; AT-net on the 28x12 MFCC windows -> coefficients per frame
(the official exaggeration of coefficients 1..5 for the official weights; our card says whether);
back-projected landmarks + the example image -> VG-net at batch 1 (so, as in the official demo, every
frame is one conv-GRU step from a zero state, and chunking the frames changes nothing). The 128-px
outputs go back into the protocol crop through the inverse of the alignment, over the reference frame
(ATVGnet does not use the pose prior). Masked frames (the masked-audio experiment) get silent audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from baselines.atvgnet.checkpoint import ATVGnet, load_atvgnet
from baselines.atvgnet.landmarks import EXAGGERATION
from baselines.atvgnet.preprocess import (
    FacePipelineError,
    align_reference,
    from_model_image,
    mfcc_windows,
    paste_back,
    to_model_image,
)
from talkbench.errors import MethodError
from talkbench.methods.base import Method
from talkbench.types import GenRequest, GenResult, MethodCard

ADAPTER_NOTES = ("official face pipeline on the reference frame padded by 25% (edge pixels) so the official square "
                 "fits the tight protocol crop (dlib, 0.64*h square -> 163 px, similarity to the "
                 "template, 128-px crop, landmarks re-detected; failures per item); 28x12 MFCC windows; VG-net at "
                 "batch 1; output clipped to uint8 (not imsave's min-max) and warped back into the protocol crop over "
                 "the reference frame")
CHUNK = 32


def default_weights() -> Path | None:
    from talkbench.weights import find_weights, shipped_weights

    return find_weights("atvgnet") or shipped_weights("atvgnet-synth")


class ATVGnetMethod(Method):
    card = MethodCard(name="atvgnet", version="1", native_size=128,
                      audio_frontend="MFCC 28x12 per frame (python_speech_features, 7 frames of context)",
                      licence="ATVGnet: no licence file in lelechen63/ATVGnet (official weights: research use)",
                      paper="Chen et al., Hierarchical Cross-Modal Talking Face Generation with Dynamic Pixel-Wise Loss, CVPR 2019",
                      notes=ADAPTER_NOTES, supports=("mask",))

    def __init__(self) -> None:
        self.net: ATVGnet | None = None
        self.device = "cpu"
        self.weights_path: Path | None = None

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        path = Path(weights) if weights else default_weights()
        if path is None:
            raise MethodError("no ATVGnet weights: pass --weights atvgnet=DIR (the folder holding atnet_lstm_18.pth, "
                              "generator_23.pth and basics/), put that folder as atvgnet/ in $TALKBENCH_WEIGHTS, or "
                              "train one with `talkbench train atvgnet`")
        self.net = load_atvgnet(path)
        self.net.atnet.to(device)
        self.net.vgnet.to(device)
        self.device, self.weights_path = device, path

    def weights_info(self) -> dict:
        from talkbench.weights import weights_record

        if self.net is None or self.weights_path is None:
            return {}
        if self.weights_path.is_dir():
            import hashlib

            files = [weights_record(p) for p in self.net.files]
            # one digest for the pair (run identity), from the files' own sha256 in a fixed order
            digest = hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()
            return {"folder": str(self.weights_path), "sha256": digest, "files": files, "basis": self.net.space.source}
        return {**weights_record(self.weights_path), "basis": weights_record(self.net.files[1])}

    @torch.no_grad()
    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        if self.net is None:
            raise MethodError("call load() first")
        return [self._one(r) for r in requests]

    def _one(self, r: GenRequest) -> GenResult:
        assert self.net is not None
        net, space, dev = self.net, self.net.space, self.device
        try:
            aligned = align_reference(r.reference, space.template, space.template_close)
        except FacePipelineError as exc:
            return GenResult(r.sample_id, None, error=f"ATVGnet face pipeline: {exc}")
        audio = r.masked_audio
        mfcc = torch.from_numpy(mfcc_windows(audio, r.num_frames, r.sample_rate))[None].to(dev)
        ex_coefs = space.to_coefs(space.example(aligned.landmarks)).astype(np.float32)
        coefs = net.atnet(torch.from_numpy(ex_coefs)[None].to(dev), mfcc)[0].cpu().numpy()
        if net.exaggerate:
            coefs[:, 1:6] *= EXAGGERATION
        lmarks = torch.from_numpy(space.from_coefs(coefs).astype(np.float32))
        ex_l = torch.from_numpy(space.from_coefs(ex_coefs).astype(np.float32))[None].to(dev)
        image = torch.from_numpy(to_model_image(aligned.image))[None].to(dev)
        outs = []
        for i in range(0, r.num_frames, CHUNK):
            outs.append(net.vgnet(image, lmarks[None, i : i + CHUNK].to(dev), ex_l)[0][0].float().cpu().numpy())
        faces = from_model_image(np.concatenate(outs))
        background = np.broadcast_to(r.reference, (r.num_frames, *r.reference.shape))
        frames = paste_back(faces, background, aligned.to_aligned, aligned.valid)
        meta = {"adapter": ADAPTER_NOTES, "template": aligned.template, "exaggerate": net.exaggerate,
                "landmark_space": space.kind}
        return GenResult(r.sample_id, frames, meta=meta)
