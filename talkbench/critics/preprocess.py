"""syncnet_python's crop policy (``run_pipeline.py`` ``crop_video``) on our own tracker.

Per frame: ``s = max(w, h) / 2`` and the box centre, each median-filtered over time (kernel 13);
the frame is padded by ``int(s * (1 + 2 * 0.4))`` with the constant 110; rows
``[cy - s, cy + s * 1.8]`` and columns ``[cx - 1.4 s, cx + 1.4 s]`` (a square of side 2.8 s, shifted
down to include the chin), resized to 224x224. Unlike run_pipeline's ``min_track=100``, clips of any
length are cropped (and scored); frames where the face is lost hold the nearest box.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.signal import medfilt

CROP_SCALE = 0.4
PAD_VALUE = 110


def syncnet_crops(frames_rgb: np.ndarray, boxes: np.ndarray, size: int = 224) -> np.ndarray:
    """(T, size, size, 3) **BGR** crops, as SyncNet consumes them."""
    s = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    k = 13 if len(boxes) >= 13 else (len(boxes) if len(boxes) % 2 else len(boxes) - 1)
    if k >= 3:
        s, cy, cx = medfilt(s, k), medfilt(cy, k), medfilt(cx, k)
    out = np.empty((len(frames_rgb), size, size, 3), np.uint8)
    for t, frame in enumerate(frames_rgb):
        bs = s[t]
        bsi = int(bs * (1 + 2 * CROP_SCALE))
        padded = np.pad(frame[:, :, ::-1], ((bsi, bsi), (bsi, bsi), (0, 0)), constant_values=PAD_VALUE)
        my, mx = cy[t] + bsi, cx[t] + bsi
        face = padded[int(my - bs): int(my + bs * (1 + 2 * CROP_SCALE)),
                      int(mx - bs * (1 + CROP_SCALE)): int(mx + bs * (1 + CROP_SCALE))]
        out[t] = cv2.resize(face, (size, size))
    return out
