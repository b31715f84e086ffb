"""68-point facial landmarks (iBUG order): dlib by default; face-alignment (FAN) as an optional
backend only when its weights are already on disk (it is never allowed to download)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from talkbench.errors import TalkbenchError
from talkbench.faces.detect import FaceDetector, _as_rgb
from talkbench.faces.models import shape_predictor

MOUTH = slice(48, 68)
FAN_WEIGHTS = "2DFAN4-11f355bf06.pth.tar"


def fan_weights_path() -> Path | None:
    """Where face-alignment would look for its 2D-FAN weights (torch hub cache), if the file is there."""
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    p = hub / FAN_WEIGHTS
    return p if p.exists() else None


class LandmarkPredictor:
    """Predict 68 landmarks for a face box in an RGB frame."""

    def __init__(self, backend: Literal["dlib", "face-alignment"] = "dlib", device: str = "cpu") -> None:
        self.backend = backend
        if backend == "dlib":
            self._sp = shape_predictor("landmarks68")
        elif backend == "face-alignment":
            if fan_weights_path() is None:
                raise TalkbenchError(
                    f"face-alignment backend needs {FAN_WEIGHTS} in the torch hub cache "
                    "($TORCH_HOME/hub/checkpoints); talkbench never downloads it. Use backend='dlib'."
                )
            import face_alignment  # optional dependency

            self._fa = face_alignment.FaceAlignment(
                face_alignment.LandmarksType.TWO_D, device=device, flip_input=False, compile=False
            )
        else:
            raise ValueError(f"unknown landmark backend {backend!r}")

    @property
    def policy(self) -> str:
        return f"{self.backend}-68"

    def predict(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """``(68, 2)`` float32 (x, y) pixels for the face in ``box`` (x1, y1, x2, y2)."""
        img = _as_rgb(frame)
        if self.backend == "dlib":
            import dlib

            rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))
            shape = self._sp(img, rect)
            return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        preds = self._fa.get_landmarks_from_image(img, detected_faces=[np.asarray(box[:4], np.float32)])
        return np.asarray(preds[0][:, :2], np.float32)


def detect_landmarks(
    frames: np.ndarray,
    boxes: np.ndarray | None = None,
    predictor: LandmarkPredictor | None = None,
    detector: FaceDetector | None = None,
) -> np.ndarray:
    """Landmarks ``(T, 68, 2)`` float32, NaN rows where no face.

    ``boxes``: ``(T, 4)`` or ``(4,)`` face boxes to use (NaN rows = no face); None detects per frame
    (e.g. on generated crops). Passing boxes skips detection entirely.
    """
    predictor = predictor or LandmarkPredictor()
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    out = np.full((len(frames), 68, 2), np.nan, np.float32)
    if boxes is not None:
        boxes = np.asarray(boxes, np.float64)
        if boxes.ndim == 1:
            boxes = np.broadcast_to(boxes, (len(frames), 4))
    else:
        detector = detector or FaceDetector(upsample=1, max_side=0)
    for t, frame in enumerate(frames):
        if boxes is not None:
            box = boxes[t]
            if np.isnan(box).any():
                continue
        else:
            found = detector.detect(frame)
            if len(found) == 0:
                continue
            box = found[0, :4]
        out[t] = predictor.predict(frame, box)
    return out
