"""Audio2Head's inference-time preprocessing (wangsuzhen/Audio2Head ``inference.py``), reimplemented.

- audio: ffmpeg turns any input into 16 kHz mono s16 (``-ac 1 -ar 16000``); the int16 samples are
  mean-removed and divided by their peak; per 10 ms: 13 MFCC + 26 log filterbank energies
  (python_speech_features defaults) + WORLD harvest F0 (``frame_period=10``) with unvoiced gaps
  filled (leading/trailing runs held, inner runs linearly interpolated) + the voiced flag = 41-d;
  4 rows per 25 fps video frame, ``frames = len(features) // 4``;
- image: RGB resized to 256 x 256 (cv2 bilinear), float in [0, 1];
- pose: audio2pose outputs in [-1, 1] de-normalised with fixed per-component ranges into a rotation
  vector and a translation; each pose drawn as a projected 3-D box (cv2.projectPoints, f = 233.333,
  c = 128) with value 255, thickness 2, on a zero 256 x 256 float canvas;
- windows: 64 frames every 32; the first keeps frames [0, 48), the others [16, 48); past the end the
  audio is zero blocks and the pose is the last pose (row ``frames`` of the T + 1 poses).

The one-frame pose offset: audio2pose returns T + 1 poses, row 0 from the image alone, and frame t
is drawn with row t, so each frame's pose has seen audio up to frame t - 1 only. Kept as official.
"""

from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np
from scipy.signal import resample_poly

from talkbench.errors import MediaError

SAMPLE_RATE = 16000
FEATURE_DIM = 41
ROWS_PER_FRAME = 4
IMAGE_SIZE = 256
SEQ_LEN = 64
POSE_MIN = np.array([-0.639, -0.501, -0.47, -102.6, -32.5, 184.6], dtype=np.float32)
POSE_MAX = np.array([0.411, 0.547, 0.433, 159.1, 116.5, 376.5], dtype=np.float32)
CAMERA = np.array([[233.333, 0, 128], [0, 233.333, 128], [0, 0, 1]], dtype=np.float64)


def _box_points() -> np.ndarray:
    rear, front, depth = 75.0, 100.0, 100.0
    sq = [(-1, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]
    return np.array([(rear * x, rear * y, 0.0) for x, y in sq] + [(front * x, front * y, depth) for x, y in sq])


BOX_3D = _box_points()


# ----------------------------------------------------------------------------- audio


def to_pcm16(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """What ``ffmpeg -ac 1 -ar 16000 -acodec pcm_s16le`` makes of float audio in [-1, 1]: channels
    averaged (a (N, C) or (C, N) array with C <= 8), resampled to 16 kHz, scaled by 32768, rounded,
    clipped. Integer input is taken as int16 full scale."""
    x = np.asarray(audio)
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / 32768.0
    x = x.astype(np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] <= 8 and x.shape[0] > x.shape[1] else x.mean(axis=0)
    elif x.ndim != 1:
        raise ValueError(f"audio must be 1-D or (samples, channels), got shape {x.shape}")
    if sample_rate != SAMPLE_RATE:
        from math import gcd

        g = gcd(int(sample_rate), SAMPLE_RATE)
        x = resample_poly(x, SAMPLE_RATE // g, int(sample_rate) // g)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def fill_unvoiced(f0: np.ndarray, voiced: np.ndarray) -> np.ndarray:
    """Unvoiced F0 gaps filled as Audio2Head's ``inter_pitch``: a leading run takes the first voiced
    value, a trailing run the last, an inner run the straight line between its voiced neighbours;
    all-unvoiced input stays as it is (zeros)."""
    y = np.asarray(f0, dtype=np.float64).copy()
    idx = np.flatnonzero(voiced)
    if len(idx) == 0:
        return y
    y[: idx[0]] = y[idx[0]]
    y[idx[-1] + 1 :] = y[idx[-1]]
    for a, b in pairwise(idx):
        if b - a > 1:
            y[a + 1 : b] = y[a] + (y[b] - y[a]) * np.arange(1, b - a) / (b - a)
    return y


def audio_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, source: str = "<audio>") -> np.ndarray:
    """(N, 41) float32 features at 100 Hz: 13 MFCC, 26 log filterbank, filled F0, voiced flag.

    Raises MediaError for audio that is digitally silent (the official peak division would give NaN)
    or shorter than one 25 ms analysis window."""
    import python_speech_features as psf

    try:
        import pyworld
    except ImportError as exc:  # pragma: no cover - the extra is declared in pyproject
        raise MediaError("Audio2Head's F0 needs pyworld: pip install 'talkbench[audio2head]'", source) from exc
    pcm = to_pcm16(audio, sample_rate)
    if len(pcm) < 400:
        raise MediaError(f"audio too short for Audio2Head features ({len(pcm)} samples at 16 kHz)", source)
    x = pcm.astype(np.float64)
    x = x - x.mean()
    peak = np.abs(x).max()
    if peak == 0:
        raise MediaError("audio is digitally silent: Audio2Head's peak normalisation is undefined", source)
    x = x / peak
    a = psf.mfcc(x, SAMPLE_RATE)
    b = psf.logfbank(x, SAMPLE_RATE)
    f0, _ = pyworld.harvest(x, SAMPLE_RATE, frame_period=10)
    voiced = (f0 != 0.0).astype(np.float64)
    f0 = fill_unvoiced(f0, voiced)
    n = min(len(a), len(b), len(f0))
    return np.concatenate([a[:n], b[:n], f0[:n, None], voiced[:n, None]], axis=1).astype(np.float32)


def padded_length(num_frames: int, sample_rate: int) -> int:
    """Samples needed for ``4 * num_frames`` feature rows (25 ms windows every 10 ms at 16 kHz)."""
    need16 = 400 + 160 * (ROWS_PER_FRAME * num_frames - 1)
    return int(np.ceil(need16 * sample_rate / SAMPLE_RATE)) + 1


def features_for_frames(audio: np.ndarray, sample_rate: int, num_frames: int,
                        source: str = "<audio>") -> tuple[np.ndarray, int]:
    """(4 * num_frames, 41) features and the number of zero samples appended so that they cover every
    frame (a clip of exactly num_frames * 640 samples gives one feature row too few)."""
    audio = np.asarray(audio, np.float32)
    pad = max(0, padded_length(num_frames, sample_rate) - len(audio))
    if pad:
        audio = np.concatenate([audio, np.zeros((pad, *audio.shape[1:]), np.float32)])
    return audio_features(audio, sample_rate, source)[: ROWS_PER_FRAME * num_frames], pad


def frame_blocks(features: np.ndarray) -> np.ndarray:
    """(frames, 4, 41): 4 consecutive feature rows per 25 fps video frame; a trailing part block is dropped."""
    frames = len(features) // ROWS_PER_FRAME
    return np.ascontiguousarray(features[: frames * ROWS_PER_FRAME].reshape(frames, ROWS_PER_FRAME, features.shape[1]))


# ----------------------------------------------------------------------------- image and pose


def reference_image(rgb: np.ndarray) -> np.ndarray:
    """(3, 256, 256) float32 in [0, 1] from an (H, W, 3|4) uint8 RGB(A) image, as ``inference.py``."""
    img = np.ascontiguousarray(rgb[..., :3])
    if img.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
        img = cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE))
    # skimage's img_as_float32 multiplies by 1/255 (not a division: they differ in the last bit)
    return np.multiply(img, 1.0 / 255, dtype=np.float32).transpose(2, 0, 1).copy()


def denormalise_pose(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 6) network outputs -> rotation vectors (T, 3) and translations (T, 3)."""
    p = (np.asarray(poses, dtype=np.float32) + 1) / 2 * (POSE_MAX - POSE_MIN) + POSE_MIN
    return p[:, :3].copy(), p[:, 3:].copy()


def normalise_pose(rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Inverse of :func:`denormalise_pose` (training targets)."""
    p = np.concatenate([np.asarray(rot, np.float32), np.asarray(trans, np.float32)], axis=-1)
    return (p - POSE_MIN) / (POSE_MAX - POSE_MIN) * 2 - 1


def project_box(rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """(10, 2) int32 image points of the annotation box (truncated toward zero, as ``np.int32``)."""
    pts, _ = cv2.projectPoints(BOX_3D, np.asarray(rot, np.float64).reshape(3, 1),
                               np.asarray(trans, np.float64).reshape(3, 1), CAMERA, np.zeros((4, 1)))
    return np.int32(pts.reshape(-1, 2))


def draw_pose(rot: np.ndarray, trans: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """(256, 256) float64 canvas with the projected box drawn at 255 (rear square, front square and
    three of the four connecting edges, thickness 2; OpenCV draws non-8-bit images without
    anti-aliasing even when asked for LINE_AA, as the official call does)."""
    img = np.zeros((size, size), np.float64)
    p = project_box(rot, trans)
    cv2.polylines(img, [p], True, (255, 255, 255), 2, cv2.LINE_AA)
    for a, b in ((1, 6), (2, 7), (3, 8)):
        cv2.line(img, tuple(int(v) for v in p[a]), tuple(int(v) for v in p[b]), (255, 255, 255), 2, cv2.LINE_AA)
    return img


# ----------------------------------------------------------------------------- windows


def windows(frames: int, seq_len: int = SEQ_LEN) -> list[tuple[int, int, int]]:
    """(start, keep_from, keep_to) of each window the official loop uses: start every seq_len // 2,
    keep [0, 3/4 seq_len) of the first and [1/4, 3/4) of the others, until ``frames`` are kept."""
    out, total = [], 0
    for start in range(0, frames, seq_len // 2):
        lo = 0 if start == 0 else seq_len // 4
        hi = min(seq_len // 4 * 3, lo + frames - total)
        out.append((start, lo, hi))
        total += hi - lo
        if total >= frames:
            break
    return out


def window_inputs(blocks: np.ndarray, rot: np.ndarray, trans: np.ndarray, start: int,
                  seq_len: int = SEQ_LEN) -> tuple[np.ndarray, np.ndarray]:
    """Audio (64, 4, 41) float32 and pose maps (64, 256, 256) float32 of the window at ``start``:
    zero audio and the last pose (row ``len(rot) - 1``) past the end."""
    frames = len(blocks)
    audio = np.zeros((seq_len, ROWS_PER_FRAME, blocks.shape[-1]), np.float32)
    poses = np.zeros((seq_len, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    for j in range(seq_len):
        t = start + j
        if t < frames:
            audio[j] = blocks[t]
            poses[j] = draw_pose(rot[t], trans[t])
        else:
            poses[j] = draw_pose(rot[-1], trans[-1])
    return audio, poses
