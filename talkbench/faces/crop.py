"""Face-centred crops and the cached :func:`load_clip` used by the runner and trainers.

Protocol crop policy ``tb-square``: a square of side ``scale * max(w, h)`` of the tracked dlib box,
centred on the box centre moved down by ``shift * side`` (dlib boxes stop at the brows and the chin;
the square then holds the whole face with a little margin, like LRS2's face-centred crops), boxes
median-smoothed over time, pixels outside the frame replicated from the edge, resized with area
interpolation. Landmarks are predicted on the full-resolution frame inside the tracked box and mapped
into crop pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from talkbench.cache import cache_dir, file_fingerprint, params_key, save_npz_atomic
from talkbench.errors import FaceNotFoundError, MediaError
from talkbench.faces.detect import FaceDetector
from talkbench.faces.landmarks import LandmarkPredictor
from talkbench.faces.track import smooth_boxes, track_faces
from talkbench.io.audio import load_audio
from talkbench.io.video import read_video
from talkbench.types import PROTOCOL_FPS, PROTOCOL_SIZE, PROTOCOL_SR, Clip, Sample

log = logging.getLogger(__name__)
CROP_VERSION = "1"


def square_boxes(boxes: np.ndarray, scale: float = 1.5, shift: float = 0.1) -> np.ndarray:
    """Face boxes (T, 4) -> square crop windows (T, 4) (x0, y0, x1, y1) per the crop policy."""
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    side = scale * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cy = cy + shift * side
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def crop_frames(frames: np.ndarray, windows: np.ndarray, size: int) -> np.ndarray:
    """Crop square ``windows`` (T, 4) out of ``frames`` (T, H, W, 3) and resize to ``size``."""
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for t, (frame, win) in enumerate(zip(frames, windows)):
        x0, y0, x1, y1 = win
        side = x1 - x0
        # An affine warp does crop + resize + edge replication in one step.
        s = size / side
        m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        out[t] = cv2.warpAffine(frame, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
    return out


def _fill_missing(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hold the nearest valid box over NaN rows; returns (filled, missing mask)."""
    missing = np.isnan(boxes).any(axis=1)
    if missing.all():
        return boxes, missing
    idx = np.flatnonzero(~missing)
    nearest = idx[np.clip(np.searchsorted(idx, np.arange(len(boxes))), 0, len(idx) - 1)]
    prev = idx[np.clip(np.searchsorted(idx, np.arange(len(boxes))) - 1, 0, len(idx) - 1)]
    pick = np.where(np.abs(prev - np.arange(len(boxes))) <= np.abs(nearest - np.arange(len(boxes))), prev, nearest)
    return boxes[pick], missing


def _fit_audio(audio: np.ndarray, num_frames: int, fps: float, sr: int) -> tuple[np.ndarray, float]:
    need = round(num_frames * sr / fps)
    mismatch = (len(audio) - need) / sr
    if len(audio) < need:
        audio = np.pad(audio, (0, need - len(audio)))
    return audio[:need].astype(np.float32), mismatch


def load_clip(
    sample: Sample,
    size: int = PROTOCOL_SIZE,
    crop: Literal["auto", "none"] = "auto",
    cache: bool = True,
    detect_every: int = 5,
    scale: float = 1.5,
    shift: float = 0.1,
    landmarks: bool = True,
) -> Clip:
    """Decode ``sample`` at 25 fps / 16 kHz, crop the face to ``size`` and predict landmarks.

    Cached on disk keyed by the video's (and audio's) content fingerprint and every parameter, so a
    second call does no decoding or detection. Audio is padded/trimmed to the video's length; the
    mismatch (seconds) is in ``clip.meta["audio_mismatch_s"]``. Frames where the face was lost keep the
    nearest box and NaN landmarks; their count is ``clip.meta["frames_without_face"]``.
    """
    if crop not in ("auto", "none"):
        raise ValueError(f"crop must be 'auto' or 'none', got {crop!r}")
    video = Path(sample.video_path)
    if not video.exists():
        raise MediaError("file not found", video)
    key_parts = {
        "video": file_fingerprint(video),
        "audio": file_fingerprint(sample.audio_path) if sample.audio_path else None,
        "size": size, "crop": crop, "every": detect_every, "scale": scale, "shift": shift,
        "landmarks": landmarks, "v": CROP_VERSION,
    }
    path = cache_dir() / "crops" / f"{params_key(**key_parts)}.npz"
    if cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return Clip(
                    sample_id=sample.sample_id, frames=z["frames"], audio=z["audio"],
                    landmarks=z["landmarks"] if "landmarks" in z else None, crop_policy=str(z["policy"]),
                    meta={"frames_without_face": int(z["missing"]), "audio_mismatch_s": float(z["mismatch"]),
                          "cache": str(path), "windows": z["windows"]},
                )
        except (OSError, ValueError, KeyError) as exc:  # a corrupt cache entry is recomputed
            log.warning("ignoring unreadable cache entry %s (%s)", path, exc)

    frames = read_video(video, fps=PROTOCOL_FPS)
    audio = load_audio(sample.audio_path or video, PROTOCOL_SR)
    audio, mismatch = _fit_audio(audio, len(frames), PROTOCOL_FPS, PROTOCOL_SR)
    predictor = LandmarkPredictor() if landmarks else None
    if crop == "none":
        h, w = frames.shape[1:3]
        windows = np.tile(np.array([0, 0, w, h], np.float64), (len(frames), 1))
        crops = crop_frames(frames, windows, size) if (h, w) != (size, size) else frames.copy()
        boxes = track_faces(crops, FaceDetector(upsample=1, max_side=0), detect_every=detect_every) if landmarks else None
        missing = np.isnan(boxes).any(axis=1) if boxes is not None else np.zeros(len(frames), bool)
        policy = f"none(resize={size})"
        lms = None
        if predictor is not None and boxes is not None:
            lms = np.full((len(crops), 68, 2), np.nan, np.float32)
            for t in np.flatnonzero(~missing):
                lms[t] = predictor.predict(crops[t], boxes[t])
    else:
        detector = FaceDetector()
        boxes = track_faces(frames, detector, detect_every=detect_every)
        boxes = smooth_boxes(boxes, 5)
        filled, missing = _fill_missing(boxes)
        if missing.all():
            raise FaceNotFoundError("no face found in any frame", video)
        windows = square_boxes(filled, scale, shift)
        crops = crop_frames(frames, windows, size)
        policy = f"tb-square(scale={scale},shift={shift},smooth=5,every={detect_every},{detector.policy})->{size}"
        lms = None
        if predictor is not None:
            lms = np.full((len(frames), 68, 2), np.nan, np.float32)
            for t in np.flatnonzero(~missing):
                pts = predictor.predict(frames[t], boxes[t])
                s = size / (windows[t, 2] - windows[t, 0])
                lms[t] = (pts - windows[t, :2]) * s
    n_missing = int(missing.sum())
    if cache:
        arrays = {"frames": crops, "audio": audio, "windows": windows, "policy": np.array(policy),
                  "missing": np.array(n_missing), "mismatch": np.array(mismatch)}
        if lms is not None:
            arrays["landmarks"] = lms
        save_npz_atomic(path, **arrays)
    return Clip(
        sample_id=sample.sample_id, frames=crops, audio=audio, landmarks=lms, crop_policy=policy,
        meta={"frames_without_face": n_missing, "audio_mismatch_s": mismatch, "cache": str(path) if cache else None,
              "windows": windows},
    )
