"""Photo identities: a real frontal portrait whose mouth and jaw are warped by the articulation.

The portrait's 68 dlib landmarks are found once; a similarity transform puts them where the
procedural renderer would put the face (same framing, so the corpora mix). Each frame moves the
mouth and chin landmarks by the articulation's displacement from the rest posture (measured on the
procedural face model), warps the image piecewise-affinely over a Delaunay triangulation of the
landmarks plus the frame border, paints the oral cavity and teeth inside the inner lip contour, and
applies the head pose. Photo identities are opt-in (``build_corpus(..., photo=True)``): the default
corpus must not depend on a folder that may be absent.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.spatial import Delaunay

from talkbench.datasets.synth.articulation import PARAMS
from talkbench.datasets.synth.face import apply, face_landmarks, make_identity, pose_matrix
from talkbench.errors import DatasetError

# The suite's real portraits (shared/data/real/portraits beside the repository), or $TALKBENCH_PORTRAITS.
PORTRAITS = Path(os.environ.get("TALKBENCH_PORTRAITS")
                 or Path(__file__).resolve().parents[4] / "shared" / "data" / "real" / "portraits")
REST = np.array([0.05, 0.0, 0.0, 0.6, 0.0, 0.0, 0.0])
MOVING = np.r_[4:13, 48:68]  # lower jaw and lips: the points articulation moves


def portraits(folder: str | Path = PORTRAITS) -> list[Path]:
    """Portrait files (sorted, so indices are stable); empty when the folder is missing."""
    p = Path(folder)
    if not p.is_dir():
        return []
    return sorted(q for q in p.iterdir() if q.suffix.lower() in (".jpg", ".jpeg", ".png"))


@dataclass
class PhotoFace:
    """A portrait aligned into a ``size`` frame, with its landmarks in that frame."""

    image: np.ndarray  # (size, size, 3) RGB uint8
    landmarks: np.ndarray  # (68, 2)
    source: str
    sha256: str

    @classmethod
    def load(cls, path: str | Path, size: int) -> PhotoFace:
        from talkbench.faces.detect import FaceDetector
        from talkbench.faces.landmarks import detect_landmarks

        path = Path(path)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError("cannot read portrait image", path)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        scale = min(1.0, 640 / max(rgb.shape[:2]))  # HOG on a bounded image: speed, same geometry
        small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        boxes = FaceDetector(upsample=1, max_side=0).detect(small)
        if not len(boxes):
            raise DatasetError("no face found in portrait", path)
        best = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
        lm = detect_landmarks(small[None], best[None, :4])[0] / scale
        target = apply(pose_matrix(size, 0.0, 0.0, 0.0, 1.0), face_landmarks(make_identity(0), REST))
        m, _ = cv2.estimateAffinePartial2D(lm.astype(np.float32), target.astype(np.float32))
        img = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        return cls(img, (lm @ m[:, :2].T + m[:, 2]).astype(np.float64), path.name,
                   hashlib.sha256(path.read_bytes()).hexdigest())


def _warp_triangles(src_img: np.ndarray, src: np.ndarray, dst: np.ndarray, tri: np.ndarray, moved: np.ndarray) -> np.ndarray:
    out = src_img.copy()
    h, w = src_img.shape[:2]
    for t in tri:
        if not moved[t].any():
            continue  # unchanged triangle: identity warp
        s, d = src[t].astype(np.float32), dst[t].astype(np.float32)
        x0, y0 = np.floor(d.min(0)).astype(int)
        x1, y1 = np.ceil(d.max(0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        a = cv2.getAffineTransform(s, d - np.array([x0, y0], np.float32))
        patch = cv2.warpAffine(src_img, a, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(mask, np.round((d - [x0, y0]) * 16).astype(np.int32), 255, cv2.LINE_AA, shift=4)
        al = (mask.astype(np.float32) / 255)[..., None]
        region = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = (region * (1 - al) + patch * al).astype(np.uint8)
    return out


def render_photo(face: PhotoFace, artic: np.ndarray, m: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One frame and its 68 landmarks: the portrait with articulation ``artic`` under head pose ``m``
    (a pose matrix from :func:`face.pose_matrix`; its deviation from the neutral pose is applied)."""
    ident = make_identity(0)
    unit = pose_matrix(size, 0.0, 0.0, 0.0, 1.0)
    delta = (face_landmarks(ident, artic) - face_landmarks(ident, REST)) @ unit[:, :2].T
    dst = face.landmarks.copy()
    dst[MOVING] += delta[MOVING] * (np.linalg.norm(face.landmarks[45] - face.landmarks[36]) / np.linalg.norm(
        apply(unit, face_landmarks(ident, REST))[45] - apply(unit, face_landmarks(ident, REST))[36]))
    border = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1], [size / 2, 0], [size / 2, size - 1],
                       [0, size / 2], [size - 1, size / 2]], np.float64)
    src_all, dst_all = np.vstack([face.landmarks, border]), np.vstack([dst, border])
    tri = Delaunay(src_all).simplices
    moved = np.zeros(len(src_all), bool)
    moved[MOVING] = True
    img = _warp_triangles(face.image, src_all, dst_all, tri, moved)
    a = dict(zip(PARAMS, artic))
    inner = dst[60:68]
    gap = inner[[5, 6, 7]][:, 1].mean() - inner[[1, 2, 3]][:, 1].mean()
    if gap > 0.3:  # the portrait's closed mouth has no cavity to stretch: paint one
        cav = img.copy()
        cv2.fillPoly(cav, [np.round(inner * 16).astype(np.int32)], (70, 20, 25), cv2.LINE_AA, shift=4)
        if a["teeth"] > 0.05:
            top = inner[[1, 2, 3]][:, 1].mean()
            th = gap * 0.45 * a["teeth"] + 0.5
            teeth = np.array([[inner[0, 0], top], [inner[4, 0], top], [inner[4, 0], top + th], [inner[0, 0], top + th]])
            tm = np.zeros(img.shape[:2], np.uint8)
            cv2.fillPoly(tm, [np.round(inner * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
            tb = cav.copy()
            cv2.fillPoly(tb, [np.round(teeth * 16).astype(np.int32)], (236, 232, 220), cv2.LINE_AA, shift=4)
            cav = np.where(tm[..., None] > 0, tb, cav)
        img = cav
    # Head pose: the similarity between the neutral pose and this frame's pose, about the frame.
    g = m[:, :2] @ np.linalg.inv(unit[:, :2])
    pose = np.concatenate([g, (m[:, 2] - g @ unit[:, 2])[:, None]], 1)
    img = cv2.warpAffine(img, pose, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return img, apply(pose, dst).astype(np.float32)
