"""Face tracking: detect every k frames, follow one face by IoU, interpolate short gaps, smooth.

Pick rule with several faces (``PICK_RULE``): the track follows the face chosen at the first detection:
the largest box, where boxes whose areas agree to within a tenth of the largest count as equal and
the one nearest the frame centre wins. It does not look at the audio (syncnet_python's pipeline picks
the track whose mouth moves with the audio), so :func:`track_faces_info` counts the faces seen and
callers report a clip with several persistent faces. A face lost for longer than ``max_gap`` frames
leaves NaN rows that callers report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import medfilt

from talkbench.faces.detect import FaceDetector


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box ``a`` (4,) against boxes ``b`` (N, 4+)."""
    x1 = np.maximum(a[0], b[:, 0])
    y1 = np.maximum(a[1], b[:, 1])
    x2 = np.minimum(a[2], b[:, 2])
    y2 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def _pick_initial(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 - w / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 - h / 2
    centrality = -np.hypot(cx, cy) / max(h, w)
    return boxes[np.lexsort((centrality, np.round(areas / areas.max(), 1)))[-1]]


PICK_RULE = "largest face at the first detection (areas within 10% tie; then nearest the centre)"


@dataclass
class TrackInfo:
    """How many faces the detector saw: ``max_faces`` in any detection, ``persistent`` = the count
    seen in at least half of the detections; ``pick`` says which face the track followed."""

    detections: int = 0
    max_faces: int = 0
    persistent: int = 0
    pick: str = ""
    counts: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"detections": self.detections, "max_faces": self.max_faces, "persistent_faces": self.persistent,
                "pick": self.pick, "rule": PICK_RULE}


def track_faces(
    frames: Iterable[np.ndarray],
    detector: FaceDetector | None = None,
    detect_every: int = 5,
    max_gap: int = 25,
    min_iou: float = 0.3,
) -> np.ndarray:
    """Boxes ``(T, 4)`` (x1, y1, x2, y2; NaN where the face is lost) for one face across frames.

    Detection runs on frames ``0, k, 2k, ...`` and again on every frame after a miss until the face
    is found; rows in between are linearly interpolated between the detections that bracket them.
    """
    return track_faces_info(frames, detector, detect_every, max_gap, min_iou)[0]


def track_faces_info(
    frames: Iterable[np.ndarray],
    detector: FaceDetector | None = None,
    detect_every: int = 5,
    max_gap: int = 25,
    min_iou: float = 0.3,
) -> tuple[np.ndarray, TrackInfo]:
    """:func:`track_faces` plus the face counts (frames are consumed once, so they may stream)."""
    info = TrackInfo()
    detector = detector or FaceDetector()
    keyed: dict[int, np.ndarray] = {}
    current: np.ndarray | None = None
    t = 0
    missed = False
    shape = None
    for t, frame in enumerate(frames):
        shape = frame.shape[:2]
        if t % detect_every != 0 and not missed:
            continue
        boxes = detector.detect(frame)
        info.counts.append(len(boxes))
        if len(boxes) == 0:
            missed = True
            continue
        if current is None:
            cand = _pick_initial(boxes, shape)
            if len(boxes) > 1:
                rank = 1 + int(np.sum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                                      > (cand[2] - cand[0]) * (cand[3] - cand[1])))
                info.pick = (f"face {rank} by size of {len(boxes)} at frame {t}, box "
                             f"({cand[0]:.0f},{cand[1]:.0f})-({cand[2]:.0f},{cand[3]:.0f})")
        else:
            ious = iou(current, boxes)
            j = int(np.argmax(ious))
            if ious[j] < min_iou:
                # Another face or a jump: keep the track only if the old face is gone for long.
                last_t = max(keyed) if keyed else -(10**9)
                if t - last_t <= max_gap:
                    missed = True
                    continue
                cand = _pick_initial(boxes, shape)
            else:
                cand = boxes[j]
        current = cand[:4].astype(np.float64)
        keyed[t] = current
        missed = False
    n = t + 1 if shape is not None else 0
    out = np.full((n, 4), np.nan)
    if info.counts:
        info.detections = len(info.counts)
        info.max_faces = max(info.counts)
        info.persistent = int(np.sort(info.counts)[::-1][(len(info.counts) - 1) // 2])
    if not keyed:
        return out, info
    ts = np.array(sorted(keyed))
    vals = np.stack([keyed[k] for k in ts])
    for i in range(len(ts)):
        out[ts[i]] = vals[i]
        if i + 1 < len(ts) and ts[i + 1] - ts[i] <= max(max_gap, detect_every):
            a, b = ts[i], ts[i + 1]
            w = (np.arange(a + 1, b) - a)[:, None] / (b - a)
            out[a + 1 : b] = vals[i] * (1 - w) + vals[i + 1] * w
    # Hold the ends for up to one detection period (frames before the first / after the last detection).
    first, last = ts[0], ts[-1]
    out[max(0, first - detect_every) : first] = vals[0]
    out[last + 1 : min(n, last + detect_every)] = vals[-1]
    return out, info


def smooth_boxes(boxes: np.ndarray, kernel: int = 5) -> np.ndarray:
    """Median-filter each coordinate over time (odd ``kernel``), ignoring NaN gaps' neighbours."""
    if kernel <= 1 or len(boxes) < 2:
        return boxes.copy()
    kernel = kernel if kernel % 2 else kernel + 1
    out = boxes.copy()
    valid = ~np.isnan(boxes).any(axis=1)
    # Filter each contiguous valid run separately so a NaN never leaks into a median.
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return out
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    for run in runs:
        seg = boxes[run]
        k = min(kernel, len(run) if len(run) % 2 else len(run) - 1)
        if k > 1:
            padded = np.pad(seg, ((k // 2, k // 2), (0, 0)), mode="edge")
            out[run] = np.stack([medfilt(padded[:, c], k)[k // 2 : k // 2 + len(run)] for c in range(4)], axis=1)
    return out
