"""LPIPS scorer (paired): LPIPS v0.1 with the AlexNet trunk, per frame against the ground truth, mean
over frames. Weights: torchvision's ``alexnet-owt-7be5be79.pth`` (trunk) and the lpips package's
``alex.pth`` heads, found in the weight folders (heads also in an installed ``lpips``), or given as
``trunk=`` / ``heads=``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from talkbench.metrics._nets_runtime import batched, record, to_tensor
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.metrics.pairing import pair_frames


class LPIPSScorer:
    name = "lpips"
    requires = ("reference",)

    def __init__(self, device: str = "cpu", trunk: str | None = None, heads: str | None = None,
                 batch: int = 16, **_: Any) -> None:
        from talkbench.metrics.nets.alexnet import load_lpips_alex
        from talkbench.metrics.nets.weights import resolve_net_weights

        trunk_path = resolve_net_weights("alexnet", trunk)
        heads_path = resolve_net_weights("lpips-alex", heads)
        self.model = load_lpips_alex(trunk_path, heads_path).to(device)
        self.device, self.batch = device, batch
        self.records = {"trunk": record(trunk_path), "heads": record(heads_path)}
        tag = f"lpips-alex-v0.1-{self.records['trunk']['sha256'][:12]}-{self.records['heads']['sha256'][:12]}-1"
        self.outputs = (MetricInfo("lpips", False, "paired", tag,
                                   "LPIPS v0.1 (AlexNet), per frame vs ground truth, mean over frames",
                                   label="LPIPS"),)

    def provenance(self) -> dict[str, Any]:
        weights = ", ".join(f"{Path(r['path']).name} (sha256 {r['sha256'][:12]})" for r in self.records.values())
        return {**self.records, "protocol": {"frames": "all (paired, trimmed to the shorter clip)", "weights": weights,
                                             "input": "protocol crop RGB scaled to [-1, 1], no resize",
                                             "pooling": "mean over frames"}}

    def score(self, item: ScoreInput) -> dict[str, float]:
        gen, ref, _ = pair_frames(item.generated, item.reference)
        a, b = to_tensor(gen, -1, 1), to_tensor(ref, -1, 1)
        d = batched(lambda x: self.model(x[:, 0], x[:, 1]), torch.stack([a, b], 1), self.batch, self.device)
        return {"lpips": float(np.mean(d))}
