"""Official-layout files with seeded (meaningless) weights, for tests and for demonstrating the
metrics where the real files are absent. Numbers computed with them measure nothing: their sha256
differs from the official files', so the metric versions (which carry the sha256 prefix) never
collide with real ones, and every file is written beside a ``SEEDED-NOT-OFFICIAL.txt`` note."""

from __future__ import annotations

from pathlib import Path

import torch

from talkbench.metrics.nets.weights import NETS, save_seeded

ALL = ("inception-fid", "i3d-kinetics400", "alexnet", "lpips-alex", "arcface")


def write_seeded_weights(folder: str | Path, nets: tuple[str, ...] = ALL, seed: int = 0,
                         arcface_depth: int = 50) -> dict[str, Path]:
    """Write each net's first official file name into ``folder`` (skipping files already there)."""
    from talkbench.metrics.nets.alexnet import AlexNetFeatures, LPIPSHeads
    from talkbench.metrics.nets.i3d import InceptionI3d
    from talkbench.metrics.nets.inception import FIDInceptionV3
    from talkbench.metrics.nets.iresnet import IResNet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SEEDED-NOT-OFFICIAL.txt").write_text(
        "Weights in this folder were made by talkbench.metrics.nets.seeded.write_seeded_weights from a seed:\n"
        "official key layouts, meaningless values. Metrics computed with them test the plumbing only.\n")
    builders = {"inception-fid": FIDInceptionV3, "i3d-kinetics400": InceptionI3d, "alexnet": AlexNetFeatures,
                "lpips-alex": LPIPSHeads, "arcface": lambda: IResNet(arcface_depth)}
    names = {n: NETS[n].files[0] for n in nets}
    if "arcface" in names:
        names["arcface"] = f"arcface_r{arcface_depth}.pth"
    out = {}
    for net, fname in names.items():
        path = folder / fname
        if not path.exists():
            torch.manual_seed(seed)
            save_seeded(builders[net](), path, seed)
        out[net] = path
    return out
