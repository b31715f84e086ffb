"""Face-centred crops and the cached :func:`load_clip` used by the runner and trainers.

Protocol crop policy ``tb-square``: a square of side ``scale * max(w, h)`` of the tracked dlib box,
centred on the box centre moved down by ``shift * side`` (dlib boxes stop at the brows and the chin;
the square then holds the whole face with a little margin, like LRS2's face-centred crops), boxes
median-smoothed over time, pixels outside the frame replicated from the edge, resized with area
interpolation. Landmarks are predicted on the full-resolution frame inside the tracked box and mapped
into crop pixels.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from talkbench.cache import cache_dir, file_fingerprint, params_key, save_npz_atomic
from talkbench.errors import FaceNotFoundError, MediaError, NoAudioError
from talkbench.faces.detect import FaceDetector
from talkbench.faces.landmarks import LandmarkPredictor
from talkbench.faces.track import smooth_boxes, track_faces_info
from talkbench.io.audio import load_audio
from talkbench.io.video import iter_video, truncation_problem
from talkbench.types import PROTOCOL_FPS, PROTOCOL_SIZE, PROTOCOL_SR, Clip, Sample

log = logging.getLogger(__name__)
CROP_VERSION = "2"  # 2: truncation check, audio-overlap policy, face counts


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


AUDIO_TOLERANCE_S = 0.08  # two frames: AAC priming and muxers leave a few ms either way


def _fit_audio(audio: np.ndarray, num_frames: int, fps: float, sr: int) -> tuple[np.ndarray, float]:
    need = round(num_frames * sr / fps)
    mismatch = (len(audio) - need) / sr
    if len(audio) < need:
        audio = np.pad(audio, (0, need - len(audio)))
    return audio[:need].astype(np.float32), mismatch


def _audio_overlap(audio: np.ndarray | None, num_frames: int) -> tuple[int, str | None]:
    """Audio-shorter-than-video policy: frames past the end of the audio are not scored (zero-padded
    audio made LSE meaningless); within ``AUDIO_TOLERANCE_S`` the audio is padded instead."""
    if audio is None:
        return num_frames, None
    video_s, audio_s = num_frames / PROTOCOL_FPS, len(audio) / PROTOCOL_SR
    if video_s - audio_s <= AUDIO_TOLERANCE_S:
        return num_frames, None
    keep = int(len(audio) * PROTOCOL_FPS // PROTOCOL_SR)
    if keep < 1:
        raise MediaError(f"the audio is {audio_s:.2f} s long: it covers no frame of the {video_s:.2f} s video")
    return keep, (f"audio ({audio_s:.2f} s) is shorter than the video ({video_s:.2f} s): only the {keep} of "
                  f"{num_frames} frames with audio are used")


def _stream(video: Path, chunk_frames: int):
    return iter_video(video, fps=PROTOCOL_FPS, chunk_frames=chunk_frames)


def load_clip(
    sample: Sample,
    size: int | None = PROTOCOL_SIZE,
    crop: Literal["auto", "none"] = "auto",
    cache: bool = True,
    detect_every: int = 5,
    scale: float = 1.5,
    shift: float = 0.1,
    landmarks: bool = True,
    allow_no_audio: bool = False,
    chunk_frames: int = 8,
) -> Clip:
    """Decode ``sample`` at 25 fps / 16 kHz, crop the face to ``size`` and predict landmarks.

    ``crop="none"``: the frames are the crop; ``size=None`` keeps their native size, else they are
    resized. Decoding streams ``chunk_frames`` at a time (``crop="auto"`` decodes twice: once to
    track, once to crop), so memory holds the crops, not the source frames.

    Checks: a file that decodes to fewer frames than its container declares is a :class:`MediaError`
    (truncated); audio shorter than the video by more than ``AUDIO_TOLERANCE_S`` keeps only the frames
    with audio (``clip.meta["notes"]`` says so), shorter mismatches are padded
    (``clip.meta["audio_mismatch_s"]``). No audio stream: :class:`NoAudioError`, or with
    ``allow_no_audio`` an empty ``clip.audio`` and ``clip.meta["no_audio"]``. ``clip.meta["faces"]``:
    how many faces the tracker saw and which one it followed (:data:`talkbench.faces.track.PICK_RULE`).
    Frames where the face was lost keep the nearest box and NaN landmarks
    (``clip.meta["frames_without_face"]``).

    Cached on disk keyed by the video's (and audio's) content fingerprint and every parameter.
    """
    if crop not in ("auto", "none"):
        raise ValueError(f"crop must be 'auto' or 'none', got {crop!r}")
    if size is None and crop == "auto":
        size = PROTOCOL_SIZE
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
                meta = json.loads(str(z["meta"]))
                if meta.get("no_audio") and not allow_no_audio:
                    raise NoAudioError("no audio stream", sample.audio_path or video)
                return Clip(
                    sample_id=sample.sample_id, frames=z["frames"], audio=z["audio"],
                    landmarks=z["landmarks"] if "landmarks" in z else None, crop_policy=str(z["policy"]),
                    meta={**meta, "cache": str(path), "windows": z["windows"]},
                )
        except (OSError, ValueError, KeyError) as exc:  # a corrupt cache entry is recomputed
            log.warning("ignoring unreadable cache entry %s (%s)", path, exc)

    try:
        audio: np.ndarray | None = load_audio(sample.audio_path or video, PROTOCOL_SR)
    except NoAudioError:
        if not allow_no_audio:
            raise
        audio = None
    predictor = LandmarkPredictor() if landmarks else None
    faces: dict = {}
    if crop == "none":
        parts = []
        for chunk in _stream(video, chunk_frames):
            h, w = chunk.shape[1:3]
            if size is not None and (h, w) != (size, size):
                win = np.tile(np.array([0, 0, w, h], np.float64), (len(chunk), 1))
                chunk = crop_frames(chunk, win, size)
            parts.append(chunk)
        crops = np.concatenate(parts) if len(parts) > 1 else parts[0]
        h, w = crops.shape[1:3]
        windows = np.tile(np.array([0, 0, w, h], np.float64), (len(crops), 1))
        boxes = None
        if landmarks:
            boxes, tinfo = track_faces_info(crops, FaceDetector(upsample=1, max_side=0), detect_every=detect_every)
            faces = tinfo.as_dict()
        missing = np.isnan(boxes).any(axis=1) if boxes is not None else np.zeros(len(crops), bool)
        policy = f"none(native {w}x{h})" if size is None else f"none(resize={size})"
        lms = None
        if predictor is not None and boxes is not None:
            lms = np.full((len(crops), 68, 2), np.nan, np.float32)
            for t in np.flatnonzero(~missing):
                lms[t] = predictor.predict(crops[t], boxes[t])
    else:
        detector = FaceDetector()
        frames_iter = (chunk[0] for chunk in _stream(video, 1))  # tracking needs one frame at a time
        boxes, tinfo = track_faces_info(frames_iter, detector, detect_every=detect_every)
        faces = tinfo.as_dict()
        boxes = smooth_boxes(boxes, 5)
        filled, missing = _fill_missing(boxes)
        if missing.all():
            raise FaceNotFoundError("no face found in any frame", video)
        windows = square_boxes(filled, scale, shift)
        crops = np.empty((len(windows), size, size, 3), np.uint8)
        lms = np.full((len(windows), 68, 2), np.nan, np.float32) if predictor is not None else None
        t0 = 0
        for chunk in _stream(video, chunk_frames):
            chunk = chunk[: max(0, len(windows) - t0)]
            crops[t0 : t0 + len(chunk)] = crop_frames(chunk, windows[t0 : t0 + len(chunk)], size)
            if lms is not None:
                for i in np.flatnonzero(~missing[t0 : t0 + len(chunk)]):
                    t = t0 + i
                    pts = predictor.predict(chunk[i], boxes[t])
                    lms[t] = (pts - windows[t, :2]) * (size / (windows[t, 2] - windows[t, 0]))
            t0 += len(chunk)
        policy = f"tb-square(scale={scale},shift={shift},smooth=5,every={detect_every},{detector.policy})->{size}"
    if problem := truncation_problem(video, len(crops), PROTOCOL_FPS):
        raise MediaError(problem, video)
    notes: list[str] = []
    # Recorded against the whole video, before any trimming to the audio.
    whole_mismatch = 0.0 if audio is None else (len(audio) / PROTOCOL_SR - len(crops) / PROTOCOL_FPS)
    keep, note = _audio_overlap(audio, len(crops))
    if note:
        notes.append(note)
        crops, windows, missing = crops[:keep], windows[:keep], missing[:keep]
        lms = lms[:keep] if lms is not None else None
    no_audio = audio is None
    if audio is None:
        audio, mismatch = np.zeros(0, np.float32), 0.0
    else:
        audio, _ = _fit_audio(audio, len(crops), PROTOCOL_FPS, PROTOCOL_SR)
        mismatch = whole_mismatch
    if faces.get("persistent_faces", 0) > 1:
        notes.append(f"{faces['persistent_faces']} faces in most frames: followed the {faces['pick']} "
                     f"(rule: {faces['rule']})")
    meta = {"frames_without_face": int(missing.sum()), "audio_mismatch_s": mismatch, "faces": faces,
            "notes": notes, "no_audio": no_audio}
    if cache:
        arrays = {"frames": crops, "audio": audio, "windows": windows, "policy": np.array(policy),
                  "meta": np.array(json.dumps(meta))}
        if lms is not None:
            arrays["landmarks"] = lms
        save_npz_atomic(path, **arrays)
    return Clip(
        sample_id=sample.sample_id, frames=crops, audio=audio, landmarks=lms, crop_policy=policy,
        meta={**meta, "cache": str(path) if cache else None, "windows": windows},
    )
