"""ATVGnet's inference preprocessing (lelechen63/ATVGnet ``code/demo.py``), reimplemented.

Face (``crop_image`` + ``generator_demo_example_lips``), on the reference frame only:
1. dlib frontal detector (upsample 1) + 68-point predictor on the grey image; the first face;
2. a square of half-side ``r = int(0.64 * h)`` around the box centre, sliced as numpy slices it (a box
   reaching past the top or left edge gives the official code an empty crop: a failure here), resized to
   163x163 (INTER_AREA), landmarks scaled with it;
3. template ``base_68`` (eyes open: ``sum(y[37:39] - y[40:42]) < -9``) or ``base_68_close``; a similarity
   from the template's points 27..44 to the crop's (``skimage`` ``SimilarityTransform.estimate``), the crop
   warped into the template frame (bilinear, black outside), ``* 255`` truncated to uint8, rows and columns
   1..128 -> the 128x128 example image;
4. landmarks detected again on that crop (the last face found); no face: a failure.

Audio: 1920 zeros (3 video frames) on both ends, ``python_speech_features.mfcc(winstep=0.01)`` without c0,
for frame i the MFCC rows ``4i .. 4i + 27`` (28x12: 7 video frames of context). The official loop stops one
frame short of the audio's length; 640 more zeros at the end give every video frame its window.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkbench.io.audio import mfcc as psf_mfcc

PAD = 1920
PAD_FRAC = 0.25
CROP = 163
SIZE = 128


class FacePipelineError(Exception):
    """The official face pipeline cannot handle this image (the reason is the message)."""


@dataclass(frozen=True)
class Aligned:
    image: np.ndarray  # (128, 128, 3) uint8 RGB, the example image
    landmarks: np.ndarray  # (68, 2) re-detected on ``image``
    to_aligned: np.ndarray  # (2, 3) affine: input-frame pixel -> aligned-crop pixel
    template: str  # "open" | "close"
    valid: np.ndarray | None = None  # (128, 128) bool: aligned pixels that came from the face crop (not the warp's black)


def mfcc_windows(audio: np.ndarray, num_frames: int, sample_rate: int = 16000) -> np.ndarray:
    """(num_frames, 28, 12) float32 MFCC windows of 16 kHz float audio."""
    if sample_rate != 16000:
        raise ValueError("ATVGnet's MFCC windows need 16 kHz audio")
    spf = sample_rate // 25
    sig = np.asarray(audio, np.float64).reshape(-1)[: num_frames * spf]
    sig = np.concatenate([np.zeros(PAD), sig, np.zeros(PAD + spf + max(0, num_frames * spf - len(sig)))])
    m = psf_mfcc(sig, sample_rate, winstep=0.01)[:, 1:]
    idx = 4 * np.arange(num_frames)[:, None] + np.arange(28)[None]
    return m[idx].astype(np.float32)


def _dlib_landmarks(gray: np.ndarray, which: str) -> tuple[np.ndarray, object] | None:
    from talkbench.faces.models import hog_detector, shape_predictor

    rects = hog_detector()(gray, 1)
    if len(rects) == 0:
        return None
    rect = rects[0] if which == "first" else rects[len(rects) - 1]
    shape = shape_predictor("landmarks68")(gray, rect)
    pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], np.int64)
    return pts, rect


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama, as skimage's ``SimilarityTransform.estimate``) mapping ``src``
    points onto ``dst``, as a 3x3 matrix."""
    from skimage import transform as tf

    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if hasattr(tf.SimilarityTransform, "from_estimate"):  # skimage >= 0.26
        t = tf.SimilarityTransform.from_estimate(src, dst)
        ok = bool(t)
    else:
        t = tf.SimilarityTransform()
        ok = t.estimate(src, dst)
    if not ok or not np.isfinite(t.params).all():
        raise FacePipelineError("degenerate landmarks: no similarity to the template")
    return np.asarray(t.params, np.float64)


def align_reference(frame_rgb: np.ndarray, template: np.ndarray, template_close: np.ndarray, pad: float = PAD_FRAC) -> Aligned:
    """The official example-image pipeline on one RGB frame (see the module docstring). ``pad``: the frame is
    first extended by this fraction of its side on every edge (edge pixels repeated): the protocol's crops
    are tight around the face, and the official 0.64*h square was meant for whole frames."""
    from skimage import transform as tf

    p = int(round(pad * frame_rgb.shape[0]))
    if p:
        frame_rgb = cv2.copyMakeBorder(np.ascontiguousarray(frame_rgb), p, p, p, p, cv2.BORDER_REPLICATE)
    bgr = np.ascontiguousarray(frame_rgb[..., ::-1])
    found = _dlib_landmarks(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), "first")
    if found is None:
        raise FacePipelineError("dlib found no face in the reference frame")
    pts, rect = found
    x, y, w, h = rect.left(), rect.top(), rect.right() - rect.left(), rect.bottom() - rect.top()
    cx, cy, r = x + int(0.5 * w), y + int(0.5 * h), int(0.64 * h)
    nx, ny = cx - r, cy - r
    if nx < 0 or ny < 0:
        raise FacePipelineError(f"the 0.64*h square around the face ({nx},{ny},{2 * r}px) leaves the frame "
                                "(the official crop is empty)")
    roi = bgr[ny : ny + 2 * r, nx : nx + 2 * r]
    if roi.size == 0 or r < 2:
        raise FacePipelineError("empty face crop")
    roi = cv2.resize(roi, (CROP, CROP), interpolation=cv2.INTER_AREA)
    scale = CROP / (2.0 * r)
    lm = (pts - np.array([nx, ny])) * scale
    tpl = template if np.sum(lm[37:39, 1] - lm[40:42, 1]) < -9 else template_close
    # skimage's warp takes the output->input map: template frame -> 163-px crop
    m = similarity(tpl[27:45], lm[27:45])
    dst = tf.warp(roi, tf.SimilarityTransform(matrix=m), output_shape=(CROP, CROP))
    dst = np.array(dst * 255, dtype=np.uint8)[1:129, 1:129]
    valid = tf.warp(np.ones((CROP, CROP)), tf.SimilarityTransform(matrix=m), output_shape=(CROP, CROP))[1:129, 1:129] > 0.999
    again = _dlib_landmarks(cv2.cvtColor(dst, cv2.COLOR_BGR2GRAY), "last")
    if again is None:
        raise FacePipelineError("dlib found no face in the aligned 128-px crop")
    # input frame -> 163 crop (scale about the square) -> template frame (inverse of m) -> minus 1 (the crop)
    a = np.array([[scale, 0, (p - nx) * scale], [0, scale, (p - ny) * scale], [0, 0, 1]])
    b = np.linalg.inv(m) @ a
    b[:2, 2] -= 1.0
    return Aligned(np.ascontiguousarray(dst[..., ::-1]), again[0].astype(np.float64), b[:2],
                   "open" if tpl is template else "close", valid)


def align_to_template(frames_rgb: np.ndarray, lmarks: np.ndarray, template: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training-side alignment with known landmarks (the synthetic corpus's exact ones): every frame warped
    by the similarity of its own points 27..44 onto ``template - 1`` (the 128-px crop's frame), as the
    official data preparation warps every LRW frame to the template (``lrw_data.py``, commit 02d8f8f): head
    rotation, scale and translation are taken out, so what is left in the landmarks is the face's own motion
    (mouth, eyes), the part AT-net can predict from audio. Returns aligned frames (T, 128, 128, 3), landmarks
    (T, 68, 2) and the (T, 2, 3) affines."""
    dst = template[27:45] - 1.0
    ms = np.stack([similarity(lm[27:45], dst)[:2] for lm in lmarks])
    out = np.stack([cv2.warpAffine(f, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                    for f, m in zip(frames_rgb, ms)])
    pts = np.einsum("tpj,tij->tpi", lmarks, ms[:, :, :2]) + ms[:, None, :, 2]
    return out, pts.astype(np.float32), ms


def to_model_image(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1] (ToTensor + Normalize(0.5, 0.5))."""
    x = rgb.astype(np.float32) / 127.5 - 1.0
    return np.moveaxis(x, -1, -3).copy()


def from_model_image(x: np.ndarray) -> np.ndarray:
    """float (..., 3, H, W) in [-1, 1] -> uint8 RGB (..., H, W, 3). Clipped, not ``scipy.misc.imsave``'s
    per-image min-max stretch (recorded as a deviation)."""
    return np.clip((np.moveaxis(x, -3, -1) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def paste_back(generated_rgb: np.ndarray, background_rgb: np.ndarray, to_aligned: np.ndarray,
               valid: np.ndarray | None = None) -> np.ndarray:
    """Aligned 128-px frames (T, 128, 128, 3) back into input-frame geometry over ``background_rgb``
    (T, S, S, 3): every input pixel whose aligned position falls inside the generated crop (and inside
    ``valid``, the part of the crop that came from the face image) takes it."""
    size = background_rgb.shape[1]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    ones = np.ones((SIZE, SIZE), np.float32) if valid is None else valid.astype(np.float32)
    mask = cv2.warpAffine(ones, to_aligned, (size, size), flags=flags,
                          borderMode=cv2.BORDER_CONSTANT)[..., None]
    mask = (mask > 0.999).astype(np.float32)
    out = np.empty_like(background_rgb)
    for t, (g, bg) in enumerate(zip(generated_rgb, background_rgb)):
        w = cv2.warpAffine(g, to_aligned, (size, size), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        out[t] = (mask * w + (1 - mask) * bg).astype(np.uint8)
    return out
