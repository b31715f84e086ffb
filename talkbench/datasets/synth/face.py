"""Procedural identities and the frame renderer of the synthetic corpus.

A face is its 68 iBUG landmarks: a mean shape (the average dlib shape of 21 real frontal portraits,
normalised to an inter-ocular distance of 1 with the eye centre at the origin) deformed by the
identity (face width, jaw, eye, brow, nose and mouth geometry), the articulation (mouth contours
and chin from :mod:`articulation`), blinks and head pose. Rendering draws skin, hair, eyes, brows,
nose, lips, oral cavity, teeth and tongue from those landmarks with anti-aliasing (2x supersampling
plus ``cv2.LINE_AA``), so the landmarks written to the sidecar are exact by construction.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from talkbench.datasets.synth.articulation import PARAMS

TEMPLATE = np.array([
    (-1.042, 0.013), (-1.033, 0.303), (-0.991, 0.590), (-0.932, 0.876),
    (-0.840, 1.152), (-0.690, 1.401), (-0.500, 1.618), (-0.272, 1.796),
    (-0.001, 1.853), (0.284, 1.808), (0.544, 1.652), (0.777, 1.449),
    (0.960, 1.207), (1.073, 0.925), (1.135, 0.625), (1.175, 0.319),
    (1.192, 0.012), (-0.910, -0.211), (-0.784, -0.344), (-0.594, -0.374),
    (-0.399, -0.337), (-0.217, -0.256), (0.160, -0.263), (0.360, -0.344),
    (0.573, -0.374), (0.780, -0.335), (0.935, -0.207), (-0.024, -0.033),
    (-0.029, 0.167), (-0.039, 0.366), (-0.044, 0.571), (-0.231, 0.705),
    (-0.137, 0.744), (-0.032, 0.778), (0.081, 0.743), (0.188, 0.708),
    (-0.687, -0.000), (-0.572, -0.072), (-0.424, -0.067), (-0.299, 0.027),
    (-0.436, 0.055), (-0.581, 0.057), (0.297, 0.025), (0.423, -0.069),
    (0.572, -0.069), (0.695, -0.000), (0.580, 0.056), (0.433, 0.057),
    (-0.415, 1.081), (-0.277, 1.003), (-0.133, 0.964), (-0.021, 0.991),
    (0.096, 0.963), (0.259, 1.004), (0.427, 1.079), (0.268, 1.242),
    (0.106, 1.320), (-0.021, 1.333), (-0.143, 1.319), (-0.283, 1.242),
    (-0.347, 1.092), (-0.132, 1.066), (-0.021, 1.077), (0.097, 1.065),
    (0.355, 1.087), (0.099, 1.158), (-0.021, 1.173), (-0.135, 1.158),
], dtype=np.float64)

SKIN = np.array([(255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 96), (160, 100, 70), (120, 76, 50),
                 (92, 58, 40), (232, 190, 172)], np.float64)
HAIR = np.array([(30, 24, 20), (70, 45, 25), (120, 80, 40), (200, 170, 110), (150, 60, 30), (110, 110, 110),
                 (20, 20, 25)], np.float64)


@dataclass(frozen=True)
class Identity:
    """Every knob of one procedural face (stored in the clip's meta sidecar)."""

    index: int
    face_width: float
    jaw_width: float
    chin_length: float
    eye_size: float
    eye_spacing: float
    brow_height: float
    brow_thickness: float
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_thickness: float
    skin: tuple[float, float, float]
    lip: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_volume: float
    iris: tuple[float, float, float]
    background_top: tuple[float, float, float]
    background_bottom: tuple[float, float, float]
    light: float

    def to_dict(self) -> dict:
        return asdict(self)


def make_identity(index: int, seed: int = 0) -> Identity:
    rng = np.random.default_rng([seed, index, 7])
    skin = SKIN[rng.integers(len(SKIN))] * rng.uniform(0.92, 1.05) + rng.normal(0, 6, 3)
    lip = np.clip(skin * np.array([0.85, 0.55, 0.55]) + rng.normal(0, 8, 3), 30, 255)
    bg1, bg2 = rng.uniform(40, 230, 3), rng.uniform(40, 230, 3)
    return Identity(
        index=index, face_width=rng.uniform(0.92, 1.08), jaw_width=rng.uniform(0.88, 1.08),
        chin_length=rng.uniform(0.92, 1.1), eye_size=rng.uniform(0.85, 1.2), eye_spacing=rng.uniform(0.95, 1.05),
        brow_height=rng.uniform(-0.06, 0.06), brow_thickness=rng.uniform(0.04, 0.09), nose_length=rng.uniform(0.9, 1.1),
        nose_width=rng.uniform(0.85, 1.2), mouth_width=rng.uniform(0.88, 1.12), lip_thickness=rng.uniform(0.8, 1.3),
        skin=tuple(np.clip(skin, 20, 255)), lip=tuple(lip), hair=tuple(HAIR[rng.integers(len(HAIR))]),
        hair_volume=rng.uniform(0.0, 1.0), iris=tuple(rng.uniform(20, 140, 3)),
        background_top=tuple(bg1), background_bottom=tuple(bg2), light=rng.uniform(-0.25, 0.25),
    )


def _mouth(identity: Identity, a: dict[str, float]) -> np.ndarray:
    """Mouth landmarks 48-67 (20, 2) in template units from articulation parameters."""
    cx, cy = -0.021, 1.04
    w = 0.42 * identity.mouth_width * (1 + 0.16 * a["spread"] - 0.22 * a["round"])
    opening = 0.36 * a["jaw"] * (1 - a["closure"]) * (1 - 0.75 * a["labiodental"])
    tu = 0.075 * identity.lip_thickness * (1 + 0.35 * a["round"])
    tl = 0.095 * identity.lip_thickness * (1 + 0.35 * a["round"])
    inner_up = cy - 0.35 * opening
    inner_lo = cy + 0.65 * opening
    # labiodental: the lower lip tucks up under the upper teeth.
    inner_lo -= 0.04 * a["labiodental"]
    iw = 0.82 * w
    xs_up = np.array([-0.62, -0.28, 0.0, 0.28, 0.62])
    upper = np.stack([cx + xs_up * w, inner_up - tu * np.array([0.6, 1.0, 0.8, 1.0, 0.6])], 1)
    lower = np.stack([cx + np.array([0.62, 0.3, 0.0, -0.3, -0.62]) * w,
                      inner_lo + tl * np.array([0.55, 0.95, 1.05, 0.95, 0.55])], 1)
    left, right = np.array([cx - w, (inner_up + inner_lo) / 2]), np.array([cx + w, (inner_up + inner_lo) / 2])
    inner_upper = np.stack([cx + np.array([-0.3, 0.0, 0.3]) * iw, inner_up + np.array([0.008, 0.0, 0.008])], 1)
    inner_lower = np.stack([cx + np.array([0.3, 0.0, -0.3]) * iw, inner_lo - np.array([0.008, 0.0, 0.008])], 1)
    return np.concatenate([left[None], upper, right[None], lower,
                           np.array([[cx - iw, left[1]]]), inner_upper, np.array([[cx + iw, right[1]]]), inner_lower])


def face_landmarks(identity: Identity, artic: np.ndarray, blink: float = 0.0) -> np.ndarray:
    """68 landmarks (template units, before pose) for one frame."""
    a = dict(zip(PARAMS, artic))
    p = TEMPLATE.copy()
    p[:, 0] *= identity.face_width
    jaw = p[0:17]
    jaw[:, 0] *= np.interp(jaw[:, 1], [0, 1.85], [1.0, identity.jaw_width])
    drop = 0.22 * a["jaw"] * np.clip((jaw[:, 1] - 0.6) / 1.25, 0, 1)  # the chin follows the jaw
    jaw[:, 1] = jaw[:, 1] * np.where(jaw[:, 1] > 1.0, identity.chin_length, 1.0) + drop
    p[17:27, 1] += identity.brow_height
    for eye in (slice(36, 42), slice(42, 48)):
        c = p[eye].mean(0)
        e = (p[eye] - c) * identity.eye_size
        e[:, 1] *= 1 - 0.9 * blink
        p[eye] = c * np.array([identity.eye_spacing, 1]) + e
    nose = slice(27, 36)
    p[nose, 1] = p[27, 1] + (p[nose, 1] - p[27, 1]) * identity.nose_length
    p[31:36, 0] = -0.03 + (p[31:36, 0] + 0.03) * identity.nose_width
    p[48:68] = _mouth(identity, a)
    return p


def pose_matrix(size: int, angle: float, dx: float, dy: float, scale: float) -> np.ndarray:
    """Template units -> pixels: the face fills the frame like LRS2's face-centred crops."""
    s = size * 0.27 * scale
    c, si = np.cos(angle), np.sin(angle)
    r = np.array([[c, -si], [si, c]]) * s
    t = np.array([size * (0.5 + dx), size * (0.36 + dy)])
    return np.concatenate([r, t[:, None]], 1)


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _poly(img, pts, color, ss):
    cv2.fillPoly(img, [np.round(pts * ss * 16).astype(np.int32)], tuple(float(c) for c in color), cv2.LINE_AA, shift=4)


@functools.lru_cache(maxsize=16)
def _background(top: tuple, bottom: tuple, big: int) -> np.ndarray:
    """Vertical background gradient (cached: it only depends on the identity and the frame size)."""
    ramp = np.linspace(0, 1, big)[:, None, None]
    return np.ascontiguousarray(np.broadcast_to(np.array(top) * (1 - ramp) + np.array(bottom) * ramp,
                                                (big, big, 3)).astype(np.uint8))


@functools.lru_cache(maxsize=16)
def _shade_lut(light: float, big: int) -> np.ndarray:
    """(big, 256) table of ``uint8(clip(v * shade[x]))`` for a left-to-right light ramp: the same values
    as multiplying the frame by the ramp, at half the cost of the float multiply per frame."""
    shade = np.linspace(1 - light, 1 + light, big)
    return np.clip(np.arange(256)[None, :] * shade[:, None], 0, 255).astype(np.uint8)


def render(identity: Identity, lm_px: np.ndarray, artic: np.ndarray, size: int, m: np.ndarray, ss: int = 2) -> np.ndarray:
    """Draw one RGB uint8 frame of ``size`` from pixel landmarks ``lm_px`` (68, 2)."""
    a = dict(zip(PARAMS, artic))
    big = size * ss
    img = _background(tuple(identity.background_top), tuple(identity.background_bottom), big).copy()
    skin = np.array(identity.skin)
    hair = np.array(identity.hair)
    # Hair behind the head, then the head (jaw line closed by a forehead arc).
    head_c = apply(m, np.array([[0.07, -0.2]]))[0]
    unit = np.linalg.norm(m[:, 0])
    ang = np.degrees(np.arctan2(m[1, 0], m[0, 0]))
    axes = (int(1.35 * unit * identity.face_width * ss * (1 + 0.15 * identity.hair_volume)), int(1.75 * unit * ss))
    cv2.ellipse(img, (int(head_c[0] * ss), int((head_c[1] - 0.15 * unit) * ss)), axes, ang, 0, 360,
                tuple(float(c) for c in hair), -1, cv2.LINE_AA)
    forehead = apply(m, np.stack([np.linspace(1.19 * identity.face_width, -1.04 * identity.face_width, 15),
                                  -0.25 - 0.75 * np.sin(np.linspace(0, np.pi, 15))], 1))
    _poly(img, np.concatenate([lm_px[0:17], forehead]), skin, ss)
    # Fringe over the top of the forehead.
    fringe = apply(m, np.stack([np.linspace(-1.1, 1.25, 12) * identity.face_width,
                                -0.75 - 0.35 * np.sin(np.linspace(0, np.pi, 12)) - 0.05 * identity.hair_volume], 1))
    _poly(img, np.concatenate([fringe, apply(m, np.array([[1.3 * identity.face_width, -1.3], [-1.2 * identity.face_width, -1.3]]))]), hair, ss)
    # Shading: side light and a darker jaw line.
    img = _shade_lut(identity.light, big)[np.arange(big)[None, :, None], img]
    lw = max(1, int(0.012 * unit * ss))
    cv2.polylines(img, [np.round(lm_px[0:17] * ss * 16).astype(np.int32)], False, tuple(float(c) for c in skin * 0.7),
                  lw, cv2.LINE_AA, shift=4)
    # Eyes: white, iris, pupil, lids.
    for eye in (slice(36, 42), slice(42, 48)):
        pts = lm_px[eye]
        _poly(img, pts, (245, 245, 240), ss)
        c = pts.mean(0)
        r = 0.42 * np.linalg.norm(pts[3] - pts[0]) / 2 * 1.0
        h = np.abs(pts[[1, 2]].mean(0)[1] - pts[[4, 5]].mean(0)[1])
        if h > 0.5:
            cv2.circle(img, (int(c[0] * ss * 16), int(c[1] * ss * 16)), int(min(r, h * 0.9) * ss * 16),
                       tuple(float(v) for v in identity.iris), -1, cv2.LINE_AA, shift=4)
            cv2.circle(img, (int(c[0] * ss * 16), int(c[1] * ss * 16)), int(min(r, h) * 0.45 * ss * 16), (10, 10, 10), -1,
                       cv2.LINE_AA, shift=4)
        cv2.polylines(img, [np.round(pts * ss * 16).astype(np.int32)], True, (40, 30, 30), lw, cv2.LINE_AA, shift=4)
    # Brows.
    bw = max(1, int(identity.brow_thickness * unit * ss))
    for brow in (slice(17, 22), slice(22, 27)):
        cv2.polylines(img, [np.round(lm_px[brow] * ss * 16).astype(np.int32)], False,
                      tuple(float(c) for c in hair * 0.8), bw, cv2.LINE_AA, shift=4)
    # Nose: bridge shadow and nostrils.
    cv2.polylines(img, [np.round(lm_px[27:31] * ss * 16).astype(np.int32)], False, tuple(float(c) for c in skin * 0.8),
                  lw, cv2.LINE_AA, shift=4)
    cv2.polylines(img, [np.round(lm_px[31:36] * ss * 16).astype(np.int32)], False, tuple(float(c) for c in skin * 0.55),
                  lw + 1, cv2.LINE_AA, shift=4)
    # Mouth: lips (outer), oral cavity (inner), teeth and tongue inside the cavity.
    lip = np.array(identity.lip)
    _poly(img, lm_px[48:60], lip, ss)
    inner = lm_px[60:68]
    gap = inner[[5, 6, 7]][:, 1].mean() - inner[[1, 2, 3]][:, 1].mean()
    if gap > 0.3:
        mask = np.zeros((big, big), np.uint8)
        cv2.fillPoly(mask, [np.round(inner * ss * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
        cavity = np.zeros_like(img)
        cavity[:] = (70, 20, 25)
        top_y = inner[[1, 2, 3]][:, 1].mean()
        if a["teeth"] > 0.05:
            th = gap * 0.45 * a["teeth"] + 0.5
            x0, x1 = inner[0, 0], inner[4, 0]
            cv2.rectangle(cavity, (int(x0 * ss), int(top_y * ss)), (int(x1 * ss), int((top_y + th) * ss)), (236, 232, 220), -1)
        if a["tongue"] > 0.05 or gap > 2:
            tc = inner[[5, 6, 7]].mean(0)
            cv2.ellipse(cavity, (int(tc[0] * ss), int((tc[1] - gap * 0.15 * (1 + a["tongue"])) * ss)),
                        (int(abs(inner[4, 0] - inner[0, 0]) * 0.32 * ss), int(max(1, gap * 0.3 * ss))), 0, 0, 360,
                        (200, 90, 100), -1, cv2.LINE_AA)
        # Blend only inside the cavity's bounding box: alpha is 0 elsewhere, so the frame is unchanged there.
        ys, xs = np.nonzero(mask)
        if len(ys):
            win = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
            alpha = (mask[win].astype(np.float32) / 255)[..., None]
            img[win] = (img[win] * (1 - alpha) + cavity[win] * alpha).astype(np.uint8)
    else:
        cv2.polylines(img, [np.round(inner * ss * 16).astype(np.int32)], True, tuple(float(c) for c in lip * 0.55),
                      lw, cv2.LINE_AA, shift=4)
    if a["labiodental"] > 0.3:  # upper teeth resting on the lower lip
        x0, x1 = lm_px[61, 0], lm_px[63, 0]
        y = lm_px[62, 1]
        cv2.rectangle(img, (int(x0 * ss), int((y - 0.6) * ss)), (int(x1 * ss), int((y + 1.2 * a["labiodental"]) * ss)),
                      (236, 232, 220), -1)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
