"""Already generated videos as a method (the most common way to evaluate one's own outputs).

``PrecomputedMethod(folder)`` matches each request's ``sample_id`` to a file in ``folder``: the id
itself (``6330311066473698535/00011.mp4``), or the id with ``/`` replaced by ``_`` or ``__``, with
any common video extension. Generated videos are decoded at 25 fps and brought to the request's crop:
``crop="auto"`` detects, tracks and crops the face like the ground truth; ``crop="none"`` treats the
file as the crop already and only resizes it. Frame counts are matched to the ground truth (trimmed,
or the last frame repeated for at most 2 frames; larger mismatches fail the item). ``report()`` lists
requested ids without a file and files that matched no request.

Use it from the CLI with ``--methods precomputed --weights precomputed=FOLDER`` (the folder plays the
role of the weights and is recorded in the run record) or register a named instance in a plug-in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from talkbench.datasets.base import VIDEO_EXTS
from talkbench.errors import MethodError, TalkbenchError
from talkbench.methods.base import Method
from talkbench.types import GenRequest, GenResult, MethodCard, Sample

MAX_PAD = 2


class PrecomputedMethod(Method):
    card = MethodCard(name="precomputed", version="1", native_size=0, audio_frontend="none",
                      notes="videos generated elsewhere, matched to sample ids")

    def __init__(self, folder: str | Path | None = None, crop: str = "auto") -> None:
        self.folder = Path(folder) if folder else None
        self.crop = crop
        self.files: dict[str, Path] = {}
        self.used: set[str] = set()
        self.missing: list[str] = []

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        folder = Path(weights) if weights else self.folder
        if folder is None or not folder.is_dir():
            raise MethodError("precomputed needs a folder of videos: --weights precomputed=FOLDER", folder)
        self.folder = folder
        self.files = {p.relative_to(folder).with_suffix("").as_posix(): p for p in sorted(folder.rglob("*"))
                      if p.suffix.lower() in VIDEO_EXTS}
        if not self.files:
            raise MethodError("no videos found", folder)

    def weights_info(self) -> dict:
        return {"path": str(self.folder), "files": len(self.files)}

    def _find(self, sample_id: str) -> Path | None:
        for key in (sample_id, sample_id.replace("/", "_"), sample_id.replace("/", "__"), Path(sample_id).name):
            if key in self.files:
                self.used.add(key)
                return self.files[key]
        return None

    def _frames(self, path: Path, r: GenRequest) -> np.ndarray:
        return frames_for_request(path, r, self.crop)

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        out = []
        for r in requests:
            path = self._find(r.sample_id)
            if path is None:
                self.missing.append(r.sample_id)
                out.append(GenResult(r.sample_id, None, error=f"no precomputed video for {r.sample_id} in {self.folder}"))
                continue
            try:
                out.append(GenResult(r.sample_id, self._frames(path, r), meta={"file": str(path), "crop": self.crop}))
            except TalkbenchError as exc:
                out.append(GenResult(r.sample_id, None, error=str(exc)))
        return out

    def report(self) -> dict:
        """Requested ids without a file, and files never matched (so far)."""
        return {"missing": list(self.missing), "unmatched": sorted(set(self.files) - self.used)}


def frames_for_request(path: Path, r: GenRequest, crop: str = "auto") -> np.ndarray:
    """Decode a generated video and bring it to the request's crop size and frame count."""
    if crop == "none":
        from talkbench.io.video import read_video

        frames = read_video(path)
        frames = np.stack([cv2.resize(f, (r.size, r.size), interpolation=cv2.INTER_AREA) for f in frames])
    else:
        from talkbench.faces.crop import load_clip

        frames = load_clip(Sample("precomputed", "", r.sample_id, path), size=r.size, landmarks=False).frames
    n = r.num_frames
    if len(frames) < n - MAX_PAD:
        raise MethodError(f"{len(frames)} frames but the ground truth has {n}", path)
    if len(frames) < n:
        frames = np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), axis=0)])
    return frames[:n]
