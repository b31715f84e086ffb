"""ArcFace identity similarity (``csim-arcface``): cosine similarity of insightface IResNet embeddings
(r100 / r50, PyTorch ``backbone.pth`` layout) of each generated frame with the reference identity (the
first ground-truth frame, or ``meta["identity_frame"]``), mean over frames.

Alignment (``align``): ``"landmarks5"`` (default, insightface's protocol) warps each frame to 112 x 112
with the similarity transform that maps 5 points (eye centres, nose tip, mouth corners from dlib's 68
landmarks, predicted in the ground-truth face box shared with LMD) onto the ArcFace template;
``"resize"`` resizes the whole crop to 112 x 112 with no alignment (the ViCo challenge's CSIM).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from talkbench.errors import MetricError
from talkbench.metrics._nets_runtime import batched, frame_indices, record, to_tensor
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.metrics.pairing import pair_frames


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """(68, 2) -> (5, 2): image-left eye centre, image-right eye centre, nose tip, mouth corners."""
    lm = np.asarray(landmarks68, np.float64)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


class ArcFaceScorer:
    name = "csim-arcface"
    requires = ("reference",)

    def __init__(self, device: str = "cpu", weights: str | None = None, align: str = "landmarks5",
                 frame_step: int = 1, max_frames: int | None = None, batch: int = 16, **_: Any) -> None:
        from talkbench.metrics.nets.iresnet import load_arcface
        from talkbench.metrics.nets.weights import resolve_net_weights

        if align not in ("landmarks5", "resize"):
            raise MetricError(f"align must be 'landmarks5' or 'resize', got {align!r}")
        path = resolve_net_weights("arcface", weights)
        self.model = load_arcface(path).to(device)
        self.device, self.align, self.batch = device, align, batch
        self.frame_step, self.max_frames = int(frame_step), max_frames
        self.record = record(path)
        tag = (f"arcface-r{self.model.depth}-{self.record['sha256'][:12]}-{align}-step{self.frame_step}"
               f"-{max_frames or 'all'}-1")
        self.outputs = (MetricInfo("csim_arcface", True, "paired", tag,
                                   "cosine similarity of ArcFace embeddings to the reference identity",
                                   label="CSIM (ArcFace)"),)

    def provenance(self) -> dict[str, Any]:
        return {"arcface": self.record, "protocol": {
            "frames": (f"generated frames 0, {self.frame_step}, {2 * self.frame_step}, ..." if self.frame_step > 1 else "all generated frames") + (f" (at most {self.max_frames})" if
                      self.max_frames else "") + " vs the first ground-truth frame",
            "weights": f"{Path(self.record['path']).name} (sha256 {self.record['sha256'][:12]})",
            "crop": "112x112 aligned to the ArcFace 5-point template from dlib-68 landmarks"
            if self.align == "landmarks5" else "protocol crop resized to 112x112 (no alignment)",
            "input": "RGB (x/255 - 0.5)/0.5", "pooling": "mean cosine over frames with a face"}}

    def _faces(self, frames: np.ndarray, landmarks: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        from talkbench.metrics.nets.iresnet import align_arcface

        if self.align == "resize":
            return np.stack([cv2.resize(f, (112, 112), interpolation=cv2.INTER_LINEAR) for f in frames]), \
                np.ones(len(frames), bool)
        ok = ~np.isnan(landmarks).any(axis=(1, 2))
        faces = np.zeros((len(frames), 112, 112, 3), np.uint8)
        for t in np.flatnonzero(ok):
            faces[t] = align_arcface(frames[t], five_points(landmarks[t]))
        return faces, ok

    def _embed(self, faces: np.ndarray) -> np.ndarray:
        e = batched(self.model, to_tensor(faces, -1, 1), self.batch, self.device)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    def score(self, item: ScoreInput) -> dict[str, float]:
        gen, ref, _ = pair_frames(item.generated, item.reference)
        keep = frame_indices(len(gen), self.frame_step, self.max_frames)
        lms = None if item.reference_landmarks is None else np.asarray(item.reference_landmarks)[keep]
        item = replace(item, generated=gen[keep], reference=ref[keep], reference_landmarks=lms)
        gen, ref, ident = item.generated, item.reference, item.meta.get("identity_frame")
        own_ident = ident is None  # the first ground-truth frame: its landmarks are already there
        ident = ref[0] if own_ident else np.asarray(ident)
        if self.align == "landmarks5":
            from talkbench.metrics.landmarks import _landmarks_pair, resolve_box_source

            box = resolve_box_source("auto", item, len(gen))
            gen_lm, ref_lm = _landmarks_pair(gen, ref, box, item.reference_landmarks)
            if own_ident:
                id_lm = ref_lm[:1]
            else:
                from talkbench.faces.landmarks import detect_landmarks

                id_lm = detect_landmarks(ident[None])
        else:
            gen_lm = id_lm = None
        id_face, id_ok = self._faces(ident[None], id_lm)
        if not id_ok[0]:
            raise MetricError("csim-arcface: no face landmarks in the reference identity frame")
        faces, ok = self._faces(gen, gen_lm)
        if not ok.any():
            raise MetricError("csim-arcface: no face landmarks in any generated frame")
        sims = self._embed(faces[ok]) @ self._embed(id_face)[0]
        return {"csim_arcface": float(sims.mean()), "csim_arcface_frames_scored": float(ok.sum()),
                "csim_arcface_frames_missing": float((~ok).sum())}
