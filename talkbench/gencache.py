"""Cross-run generation cache: a method's output for one request, kept under the talkbench cache.

Two run directories that evaluate the same method (name + version), with the same weights (sha256),
on the same inputs (sample id + a content hash of what the method sees: reference frame, pose prior,
driving audio) under the same request options (masked frames, context window) and protocol (crop
size, crop policy, device kind) share one generation: the second run loads the frames instead of
calling ``Method.generate``. Frames are stored losslessly, so cached and fresh outputs score
identically: FFV1 (range coder, large context, one GOP; RGB as ``bgr0``, bit-exact) inside a small
``.npz`` with the frames' shape, about a third of the zlib-compressed raw frames that entries written
before held (1.3 MB against 3.9 MB for a 122-frame 128x128 clip). Such older entries (a ``frames``
array) are still read.

Only methods whose loaded weights carry a sha256 are cached: without a content hash of the weights
(``gt``, ``static``, ``precomputed`` folders, an external command without a YAML) the output cannot
be keyed safely, and those methods are cheap or already read from disk. Writes are atomic; an
unreadable entry is a miss and is replaced.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkbench.cache import atomic_write, cache_dir
from talkbench.types import GenRequest

log = logging.getLogger(__name__)
FORMAT = 1  # bump when the key changes (the file layout is read by its contents: see _decode)
FFV1_OPTIONS = {"level": "3", "coder": "1", "context": "1", "g": "100000", "threads": "1"}


def encode_frames(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> FFV1 in Matroska, as a uint8 array (lossless: ``decode_frames`` gives
    the same bytes back)."""
    import av

    frames = np.ascontiguousarray(frames)
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as c:
        s = c.add_stream("ffv1", rate=25, options=FFV1_OPTIONS)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "bgr0"
        for img in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return np.frombuffer(buf.getvalue(), np.uint8)


def decode_frames(data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The frames ``encode_frames`` stored; a ValueError when their number or size is not ``shape``."""
    import av

    with av.open(io.BytesIO(data.tobytes()), "r", format="matroska") as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    out = np.stack(frames) if frames else np.zeros((0, *shape[1:]), np.uint8)
    if out.shape != tuple(shape):
        raise ValueError(f"decoded {out.shape}, stored shape {tuple(shape)}")
    return out


def _decode(z: Any) -> np.ndarray:
    if "ffv1" in z:
        return decode_frames(z["ffv1"], tuple(int(x) for x in z["shape"]))
    return z["frames"]  # entries written before FFV1: zlib-compressed raw frames


def request_fingerprint(request: GenRequest) -> str:
    """sha256 over everything a method may read from a request (except the oracle ground truth)."""
    h = hashlib.sha256()
    for arr in (request.reference, request.pose_prior, request.audio):
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(json.dumps([request.fps, request.sample_rate, list(request.mask_frames), request.context_frames]).encode())
    return h.hexdigest()


def av_error() -> type[Exception]:
    import av

    return av.FFmpegError


@dataclass
class GenCache:
    """Get/put generated frames. ``stats`` counts hits, misses, stores and uncached methods for run.json."""

    enabled: bool = True
    root: Path | None = None
    stats: dict[str, Any] = field(default_factory=lambda: {"hits": 0, "misses": 0, "stored": 0, "uncached": {}})

    def __post_init__(self) -> None:
        if self.root is None:
            self.root = cache_dir() / "generated"
        self.root = Path(self.root)

    def key(self, method: Any, spec: str, request: GenRequest, protocol: dict[str, Any]) -> str | None:
        """The cache key of ``method`` (a loaded Method) on ``request``, or None when not cacheable."""
        if not self.enabled:
            return None
        try:
            info = method.weights_info() or {}
        except Exception as exc:  # a method whose provenance fails is simply not cached
            info = {"error": str(exc)}
        sha = info.get("sha256")
        if not sha:
            self.stats["uncached"].setdefault(spec, "no weights sha256 (output cannot be keyed)")
            return None
        card = method.card
        blob = json.dumps({
            "format": FORMAT, "method": card.name, "version": card.version, "weights_sha256": sha,
            "sample_id": request.sample_id, "inputs": request_fingerprint(request),
            "mask_frames": list(request.mask_frames), "context_frames": request.context_frames,
            "protocol": protocol,
        }, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str | None) -> np.ndarray | None:
        """Cached frames for ``key`` or None (a miss; also for a damaged entry)."""
        if key is None:
            return None
        p = self.path(key)
        if not p.exists():
            self.stats["misses"] += 1
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                frames = _decode(z)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, av_error()) as exc:
            log.warning("generation cache entry %s unreadable (%s): regenerating", p, exc)
            self.stats["misses"] += 1
            return None
        self.stats["hits"] += 1
        return frames

    def put(self, key: str | None, frames: np.ndarray, meta: dict[str, Any] | None = None) -> None:
        """Store ``frames`` atomically; a full disk only costs the cache entry, never the run."""
        if key is None:
            return
        try:
            data = encode_frames(frames)
            with atomic_write(self.path(key)) as f:
                np.savez(f, ffv1=data, shape=np.array(frames.shape, np.int64),
                         meta=np.array(json.dumps(meta or {}, default=str)))
            self.stats["stored"] += 1
        except (OSError, av_error()) as exc:
            log.warning("cannot write the generation cache (%s): continuing without it", exc)

    def record(self) -> dict[str, Any]:
        """What run.json says about the cache for this invocation."""
        return {"enabled": self.enabled, "dir": str(self.root), **self.stats}
