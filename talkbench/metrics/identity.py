"""Identity similarity (CSIM) with dlib's face-recognition ResNet (``face-recognition-models``).

For each generated frame: HOG detection (upsampled once, crops are small), 5-point alignment, the
128-d dlib embedding, cosine similarity with the embedding of the reference identity (the first
ground-truth frame, or ``ScoreInput.meta["identity_frame"]``). Frames without a detected face are
counted, not scored.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from talkbench.errors import MetricError
from talkbench.faces.detect import FaceDetector, _as_rgb
from talkbench.faces.models import dlib_model_path, shape_predictor
from talkbench.metrics.base import MetricInfo, ScoreInput


@lru_cache(maxsize=1)
def _recognizer():  # -> dlib.face_recognition_model_v1
    import dlib

    return dlib.face_recognition_model_v1(str(dlib_model_path("recognition")))


def face_embedding(frame: np.ndarray, detector: FaceDetector | None = None) -> np.ndarray | None:
    """dlib 128-d embedding of the best face in ``frame`` (None when no face is found)."""
    import dlib

    detector = detector or FaceDetector(upsample=1, max_side=0)
    img = _as_rgb(frame)
    found = detector.detect(img)
    if len(found) == 0:
        return None
    x1, y1, x2, y2 = (int(round(v)) for v in found[0, :4])
    shape = shape_predictor("landmarks5")(img, dlib.rectangle(x1, y1, x2, y2))
    return np.asarray(_recognizer().compute_face_descriptor(img, shape), np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


class IdentityScorer:
    name = "csim"
    requires = ("reference",)
    outputs = (MetricInfo("csim", True, "paired", "csim-dlib-resnet-v1-1",
                          "cosine similarity of dlib face embeddings to the reference identity", label="CSIM"),)

    def __init__(self, device: str = "cpu", **_: Any) -> None:
        self.detector = FaceDetector(upsample=1, max_side=0)

    def provenance(self) -> dict[str, Any]:
        return {"embedding": "dlib_face_recognition_resnet_model_v1 (face-recognition-models 0.3.0)"}

    def score(self, item: ScoreInput) -> dict[str, float]:
        ident = item.meta.get("identity_frame")
        if ident is None:
            if item.reference is None or len(item.reference) == 0:
                raise MetricError("csim needs a reference identity frame")
            ident = item.reference[0]
        ref_emb = face_embedding(ident, self.detector)
        if ref_emb is None:
            raise MetricError("no face in the reference identity frame")
        sims = []
        for frame in item.generated:
            e = face_embedding(frame, self.detector)
            if e is not None:
                sims.append(cosine(e, ref_emb))
        if not sims:
            raise MetricError("no face found in any generated frame")
        return {"csim": float(np.mean(sims)), "csim_frames_scored": float(len(sims)),
                "csim_frames_missing": float(len(item.generated) - len(sims))}
