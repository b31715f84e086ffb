"""Wav2Lip's inference-time preprocessing (Rudrabha/Wav2Lip ``inference.py``), reimplemented.

- mel chunks: 16 mel steps per video frame, chunk i starting at ``int(i * 80 / fps)``; a chunk that
  would run past the end is the last 16 steps (``mel[:, -16:]``);
- input: 96x96 crops in BGR / 255, the lower half (rows 48..95) zeroed, concatenated with the
  reference crop on the channel axis; output sigmoid BGR, resized back into the face region.

The official full-frame steps (detector box padded by (0, 10, 0, 0), boxes averaged over 5 frames,
hard paste into the frame) are not needed: the harness hands every method the protocol's face crops.
"""

from __future__ import annotations

import cv2
import numpy as np

MEL_STEP = 16


def mel_chunks(mel: np.ndarray, num_frames: int, fps: float = 25.0) -> np.ndarray:
    """(num_frames, 80, 16) windows of an (80, N) Wav2Lip mel."""
    if mel.shape[1] < MEL_STEP:
        mel = np.pad(mel, ((0, 0), (0, MEL_STEP - mel.shape[1])), constant_values=mel.min(initial=-4.0))
    mult = 80.0 / fps
    out = []
    for i in range(num_frames):
        start = int(i * mult)
        out.append(mel[:, -MEL_STEP:] if start + MEL_STEP > mel.shape[1] else mel[:, start : start + MEL_STEP])
    return np.stack(out).astype(np.float32)


Box = tuple[float, float, float, float]


def box_pixels(box: Box, height: int, width: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) fractions of a crop -> pixel bounds, clipped to the crop."""
    x0, y0, x1, y1 = box
    bx = (max(0, round(x0 * width)), max(0, round(y0 * height)),
          min(width, round(x1 * width)), min(height, round(y1 * height)))
    if bx[2] - bx[0] < 8 or bx[3] - bx[1] < 8:
        raise ValueError(f"face box {box} leaves less than 8 px of a {width}x{height} crop")
    return bx


def to_faces(frames_rgb: np.ndarray, box: Box | None = None, size: int = 96) -> np.ndarray:
    """(T, H, W, 3) RGB crops -> (T, size, size, 3) BGR uint8: the ``box`` region (whole crop if None),
    resized bilinearly as ``inference.py`` resizes its face boxes."""
    if box is not None:
        x0, y0, x1, y1 = box_pixels(box, *frames_rgb.shape[1:3])
        frames_rgb = frames_rgb[:, y0:y1, x0:x1]
    return np.stack([cv2.resize(np.ascontiguousarray(f), (size, size)) for f in frames_rgb])[..., ::-1].copy()


def model_inputs(pose_prior_rgb: np.ndarray, reference_rgb: np.ndarray, size: int = 96,
                 box: Box | None = None) -> np.ndarray:
    """(T, 6, 96, 96) float32: [masked target | reference] faces (``box`` of the crops) in BGR / 255."""
    tgt = to_faces(pose_prior_rgb, box, size).astype(np.float32) / 255.0
    tgt[:, size // 2 :] = 0.0
    ref = to_faces(reference_rgb[None], box, size)[0].astype(np.float32) / 255.0
    ref = np.broadcast_to(ref, tgt.shape)
    return np.concatenate([tgt, ref], axis=3).transpose(0, 3, 1, 2).copy()
