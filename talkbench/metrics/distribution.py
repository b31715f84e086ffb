"""Dataset-level metrics: FID (Inception-V3 pool3, pytorch-fid weights) and FVD (I3D Kinetics-400
logits of 16-frame clips at 224).

Per sample the scorer computes feature rows of the generated and the ground-truth crops
(``features``); the runner keeps them on disk (``RUN_DIR/features/<metric>/<method>/<sample>.npz``) and
at the end of the run ``compute`` pools each method's rows over all samples and returns the Fréchet
distance to the pooled ground-truth rows of the same samples, with a bootstrap interval over samples
(:func:`talkbench.metrics.functional.distribution.frechet_with_bootstrap`). The ground truth's own
reference score is the distance between its two halves (even vs odd samples).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from talkbench.errors import MetricError
from talkbench.metrics._nets_runtime import batched, frame_indices, record, to_tensor
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.metrics.functional.distribution import frechet_with_bootstrap


class _FrechetScorer:
    level = "dataset"
    requires = ("reference",)
    metric = ""

    def __init__(self, bootstrap: int, seed: int) -> None:
        self.bootstrap, self.seed = int(bootstrap), int(seed)
        self._ref_cache: tuple[Any, np.ndarray] | None = None

    def _rows(self, frames: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def features(self, item: ScoreInput) -> tuple[np.ndarray, np.ndarray]:
        if item.reference is None:
            raise MetricError(f"{self.name} compares with the ground truth, but no reference frames were given")
        # Every method of a sample shares the ground truth: its rows are computed once (and reused as
        # the generated rows of the ground-truth method itself).
        key = (item.sample_id, item.reference.shape, hash(item.reference[:: max(1, len(item.reference) // 4)].tobytes()))
        if self._ref_cache is None or self._ref_cache[0] != key:
            self._ref_cache = (key, self._rows(item.reference))
        ref = self._ref_cache[1]
        same = item.generated.shape == item.reference.shape and np.array_equal(item.generated, item.reference)
        return (ref if same else self._rows(item.generated)), ref

    def compute(self, generated: list[np.ndarray], reference: list[np.ndarray]) -> dict[str, Any]:
        r = frechet_with_bootstrap(generated, reference, resamples=self.bootstrap, seed=self.seed)
        return {"value": r.value, "low": r.low, "high": r.high, "n": r.n_samples, "rows": list(r.n_rows),
                "dim": r.dim, "resamples": r.resamples, "warning": r.warning}

    def score(self, item: ScoreInput) -> dict[str, float]:
        raise MetricError(f"{self.name} is a dataset-level metric: run it with `talkbench run`, not per video")


class FIDScorer(_FrechetScorer):
    name = "fid"

    def __init__(self, device: str = "cpu", weights: str | None = None, frame_step: int = 1,
                 max_frames: int | None = None, batch: int = 8, bootstrap: int = 50, seed: int = 0,
                 **_: Any) -> None:
        from talkbench.metrics.nets.inception import load_fid_inception
        from talkbench.metrics.nets.weights import resolve_net_weights

        super().__init__(bootstrap, seed)
        path = resolve_net_weights("inception-fid", weights)
        self.model = load_fid_inception(path).to(device)
        self.device, self.batch = device, batch
        self.frame_step, self.max_frames = int(frame_step), max_frames
        self.record = record(path)
        tag = f"fid-inception-{self.record['sha256'][:12]}-step{self.frame_step}-{max_frames or 'all'}-1"
        self.outputs = (MetricInfo("fid", False, "paired", tag, "Fréchet Inception distance to the ground-truth "
                                   "frames of the same samples (pool3, frames pooled over the dataset)",
                                   level="dataset", label="FID"),)

    def provenance(self) -> dict[str, Any]:
        return {"inception": self.record, "protocol": {
            "weights": f"{Path(self.record['path']).name} (sha256 {self.record['sha256'][:12]})",
            "frames": (f"frames 0, {self.frame_step}, {2 * self.frame_step}, ..." if self.frame_step > 1 else "all frames")
            + (f", at most {self.max_frames} per clip" if self.max_frames else "") + "; generated and ground truth alike",
            "crop": "protocol face crop", "resize": "bilinear to 299x299 (torch, align_corners=False) as pytorch-fid",
            "input": "RGB [0, 1] -> [-1, 1]", "features": "pool3 2048-d",
            "pooling": "all frames of all samples pooled per side",
            "interval": f"bootstrap over samples ({self.bootstrap} resamples, bias-shifted percentile)",
            "ground_truth": "FID between even and odd samples of the ground truth"}}

    def _rows(self, frames: np.ndarray) -> np.ndarray:
        frames = frames[frame_indices(len(frames), self.frame_step, self.max_frames)]
        return batched(self.model, to_tensor(frames, 0, 1), self.batch, self.device).astype(np.float32)


class FVDScorer(_FrechetScorer):
    name = "fvd"

    def __init__(self, device: str = "cpu", weights: str | None = None, clip_length: int = 16, clips: int = 1,
                 start: int = 0, size: int = 224, bootstrap: int = 50, seed: int = 0, **_: Any) -> None:
        from talkbench.metrics.nets.i3d import load_i3d
        from talkbench.metrics.nets.weights import resolve_net_weights

        super().__init__(bootstrap, seed)
        path = resolve_net_weights("i3d-kinetics400", weights)
        self.model = load_i3d(path).to(device)
        self.device = device
        self.clip_length, self.clips, self.start, self.size = int(clip_length), int(clips), int(start), int(size)
        self.record = record(path)
        tag = (f"fvd-i3d-{self.record['sha256'][:12]}-{self.clip_length}f{self.size}-x{self.clips}"
               f"-from{self.start}-1")
        self.outputs = (MetricInfo("fvd", False, "paired", tag, "Fréchet video distance (I3D Kinetics-400 logits "
                                   "of 16-frame clips) to the ground-truth clips of the same samples",
                                   level="dataset", label="FVD"),)

    def provenance(self) -> dict[str, Any]:
        return {"i3d": self.record, "protocol": {
            "weights": f"{Path(self.record['path']).name} (sha256 {self.record['sha256'][:12]})",
            "frames": f"{self.clips} clip(s) of {self.clip_length} consecutive frames, the first at frame "
                      f"{self.start}, evenly spaced to the end",
            "crop": "protocol face crop", "resize": f"bilinear (cv2 INTER_LINEAR) to {self.size}x{self.size}",
            "input": "RGB [-1, 1]", "features": "400 Kinetics logits, mean over time",
            "pooling": "one row per clip, pooled over the dataset",
            "interval": f"bootstrap over samples ({self.bootstrap} resamples, bias-shifted percentile)"}}

    def _rows(self, frames: np.ndarray) -> np.ndarray:
        from talkbench.metrics.nets.i3d import clip_starts

        usable = len(frames) - self.start
        if usable < self.clip_length:
            raise MetricError(f"FVD needs at least {self.start + self.clip_length} frames "
                              f"({self.clip_length}-frame clips from frame {self.start}), got {len(frames)}")
        rows = []
        for s in clip_starts(usable, self.clip_length, self.clips):
            clip = frames[self.start + s: self.start + s + self.clip_length]
            if clip.shape[1:3] != (self.size, self.size):
                clip = np.stack([cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_LINEAR) for f in clip])
            x = to_tensor(clip, -1, 1).permute(1, 0, 2, 3)[None]  # (1, 3, T, H, W)
            rows.append(batched(self.model, x, 1, self.device)[0])
        return np.stack(rows).astype(np.float32)
