"""LRW word classifier with the module tree and state-dict keys of mpc001's ``lrw_resnet18_mstcn``.

Architecture facts matched (mpc001/Lipreading_using_Temporal_Convolutional_Networks at 0cc99fa,
``lipreading/model.py``, ``lipreading/models/resnet.py``, ``lipreading/models/tcn.py``,
``configs/lrw_resnet18_mstcn.json``):

* ``frontend3D``: Conv3d(1, 64, k=(5,7,7), s=(1,2,2), p=(2,3,3), no bias) -> BatchNorm3d -> activation ->
  MaxPool3d(k=(1,3,3), s=(1,2,2), p=(0,1,1)); keys ``frontend3D.0/1/2``.
* ``trunk``: ResNet-18 without stem (``layer1..layer4`` of 2 BasicBlocks, 64/128/256/512 channels,
  ``conv1/bn1/relu1/conv2/bn2/relu2`` + ``downsample.0/1`` = 1x1 conv + BN), global average pool.
* ``tcn``: multi-scale multi-branch TCN: 4 levels (dilation 2**i) of ``MultibranchTemporalBlock`` with
  kernel sizes (3, 5, 7); each level has ``cbcr0_k`` and ``cbcr1_k`` branches (Conv1d with bias ->
  BatchNorm1d -> symmetric chomp, made contiguous -> activation) of 256 channels each (768 per level),
  a 1x1 Conv1d ``downsample`` (present on every level: the official test is ``n_inputs // n_kernels != n_outputs``,
  true for 512 and 768 inputs alike) and a final activation; ``tcn.tcn_output`` Linear(768, 500).
  Logits are the TCN output averaged over time, then the Linear layer.
* Activation: the 2022 config (``resnet18_mstcn_video``, 88.9% on LRW) uses Swish (no parameters); the
  2020 config used PReLU (``num_parameters`` = channels, keys ``...relu1.weight`` etc.). Both are
  supported; :func:`load_lipreader` picks the one the checkpoint's keys imply.
* Official files are dicts with ``model_state_dict``.

``width`` scales every channel count (1.0 = official) so a small critic can be trained on a CPU; only
width 1.0 with 500 classes loads official weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn as nn

from talkbench.errors import CheckpointError

Activation = Literal["swish", "prelu", "relu"]


class Swish(nn.Module):
    """x * sigmoid(x) (parameter-free, like the official Swish)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def _act(kind: Activation, channels: int) -> nn.Module:
    if kind == "swish":
        return Swish()
    if kind == "prelu":
        return nn.PReLU(num_parameters=channels)
    if kind == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {kind!r}")


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, act: Activation) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = _act(act, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                           if stride != 1 or cin != cout else None)
        self.relu2 = _act(act, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu2(out + res)


class ResNetTrunk(nn.Module):
    """ResNet-18 stages 1-4 + global average pool: (N, C, H, W) -> (N, 512*width)."""

    def __init__(self, inplanes: int, planes: Sequence[int], act: Activation) -> None:
        super().__init__()
        cin = inplanes
        for i, p in enumerate(planes):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, p, stride, act), BasicBlock(p, p, 1, act)))
            cin = p
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


class ConvBatchChompAct(nn.Module):
    """Conv1d (bias) -> BN -> symmetric chomp of ``padding`` (half each side) -> activation."""

    def __init__(self, cin: int, cout: int, k: int, dilation: int, act: Activation) -> None:
        super().__init__()
        self.pad = (k - 1) * dilation
        self.conv = nn.Conv1d(cin, cout, k, padding=self.pad, dilation=dilation)
        self.batchnorm = nn.BatchNorm1d(cout)
        self.non_lin = _act(act, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.batchnorm(self.conv(x))
        h = self.pad // 2
        if h:
            # .contiguous() as the official Chomp1d: Swish on a strided view takes another vectorised
            # path in torch and its logits then differ from the official model's in the last bits.
            out = out[:, :, h:-h].contiguous()
        return self.non_lin(out)


class MultibranchTemporalBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernels: Sequence[int], dilation: int, dropout: float,
                 act: Activation) -> None:
        super().__init__()
        self.n = len(kernels)
        branch = cout // self.n
        for i, k in enumerate(kernels):
            setattr(self, f"cbcr0_{i}", ConvBatchChompAct(cin, branch, k, dilation, act))
        self.dropout0 = nn.Dropout(dropout)
        for i, k in enumerate(kernels):
            setattr(self, f"cbcr1_{i}", ConvBatchChompAct(branch * self.n, branch, k, dilation, act))
        self.dropout1 = nn.Dropout(dropout)
        # Official condition (kept for key compatibility): ``cin // n_kernels != cout``.
        self.downsample = nn.Conv1d(cin, branch * self.n, 1) if cin // self.n != branch * self.n else None
        self.relu_final = _act(act, branch * self.n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dropout0(torch.cat([getattr(self, f"cbcr0_{i}")(x) for i in range(self.n)], 1))
        out = self.dropout1(torch.cat([getattr(self, f"cbcr1_{i}")(out) for i in range(self.n)], 1))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu_final(out + res)


class MultibranchTCN(nn.Module):
    def __init__(self, cin: int, channels: int, layers: int, kernels: Sequence[int], dropout: float,
                 act: Activation) -> None:
        super().__init__()
        self.network = nn.Sequential(*[
            MultibranchTemporalBlock(cin if i == 0 else channels, channels, kernels, 2**i, dropout, act)
            for i in range(layers)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class MultiscaleMultibranchTCN(nn.Module):
    """``tcn``: (B, T, C) features -> (B, classes) logits, averaging over each clip's valid length."""

    def __init__(self, cin: int, channels: int, layers: int, kernels: Sequence[int], dropout: float,
                 act: Activation, num_classes: int) -> None:
        super().__init__()
        self.mb_ms_tcn = MultibranchTCN(cin, channels, layers, kernels, dropout, act)
        self.tcn_output = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor, lengths: Sequence[int] | None = None) -> torch.Tensor:
        out = self.mb_ms_tcn(x.transpose(1, 2))  # (B, C, T)
        if lengths is None:
            lengths = [out.shape[2]] * out.shape[0]
        # Per clip, as the official ``_average_batch`` (also without lengths, so the rounding is the same).
        pooled = torch.stack([out[i, :, : int(n)].mean(1) for i, n in enumerate(lengths)])
        return self.tcn_output(pooled)


@dataclass(frozen=True)
class LipReaderConfig:
    """Shape of a lip reader. Defaults = the official ``lrw_resnet18_mstcn`` (2022 config)."""

    width: float = 1.0
    num_classes: int = 500
    act: Activation = "swish"
    kernels: tuple[int, ...] = (3, 5, 7)
    tcn_layers: int = 4
    hidden: int = 256  # per-branch TCN channels at width 1.0
    dropout: float = 0.2

    def channels(self, base: int) -> int:
        return max(4, int(round(base * self.width)))


class LipReader(nn.Module):
    """``frontend3D`` + ResNet-18 ``trunk`` + multi-scale TCN ``tcn``.

    Input: (B, 1, T, 88, 88) normalised grayscale mouth ROIs (see :mod:`talkbench.critics.mouth_roi`).
    Output: (B, num_classes) logits.
    """

    def __init__(self, config: LipReaderConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or LipReaderConfig()
        c0 = cfg.channels(64)
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, c0, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False),
            nn.BatchNorm3d(c0),
            _act(cfg.act, c0),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        planes = [cfg.channels(p) for p in (64, 128, 256, 512)]
        self.trunk = ResNetTrunk(c0, planes, cfg.act)
        tcn_channels = cfg.channels(cfg.hidden) * len(cfg.kernels)
        self.tcn = MultiscaleMultibranchTCN(planes[-1], tcn_channels, cfg.tcn_layers, cfg.kernels, cfg.dropout,
                                            cfg.act, cfg.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # He-style init as the official model (normal(0, sqrt(2 / (prod(kernel) * out_channels)))).
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                n = float(torch.tensor(m.kernel_size).prod()) * m.out_channels
                nn.init.normal_(m.weight, 0.0, (2.0 / n) ** 0.5)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, H, W) -> per-frame trunk features (B, T', C)."""
        b = x.shape[0]
        x = self.frontend3D(x)
        t = x.shape[2]
        x = x.transpose(1, 2).reshape(b * t, x.shape[1], x.shape[3], x.shape[4])
        return self.trunk(x).view(b, t, -1)

    def forward(self, x: torch.Tensor, lengths: Sequence[int] | None = None) -> torch.Tensor:
        return self.tcn(self.features(x), lengths)


def _unwrap(obj: Any, path: str | Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    elif isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a state dict (or a dict with 'model_state_dict'), got {type(obj).__name__}",
                              path)
    return {k[7:] if k.startswith("module.") else k: v for k, v in obj.items()}


def config_from_state_dict(sd: Mapping[str, torch.Tensor], card: Mapping[str, Any] | None = None) -> LipReaderConfig:
    """Infer the shape (activation, width, classes) from the keys, or take it from a card's ``config``."""
    if card and isinstance(card.get("config", {}).get("model"), Mapping):
        m = dict(card["config"]["model"])
        m["kernels"] = tuple(m.get("kernels", (3, 5, 7)))
        return LipReaderConfig(**m)
    w = sd.get("frontend3D.0.weight")
    out = sd.get("tcn.tcn_output.weight")
    if w is None or out is None:
        missing = [k for k in ("frontend3D.0.weight", "tcn.tcn_output.weight") if k not in sd]
        raise CheckpointError(f"not a lip-reader state dict: missing keys {', '.join(missing)}")
    act: Activation = "prelu" if "frontend3D.2.weight" in sd else "swish"
    return LipReaderConfig(width=w.shape[0] / 64, num_classes=int(out.shape[0]), act=act)


def load_lipreader(path: str | Path, config: LipReaderConfig | None = None) -> LipReader:
    """Load a lip reader strictly from an official ``.pth``/``.pth.tar`` (``weights_only=True``) or our
    safetensors; missing, unexpected or mis-shaped keys raise :class:`CheckpointError` naming them."""
    from talkbench.weights import load_safetensors, load_state_dict_strict, load_torch_checkpoint, read_card

    p = Path(path)
    if p.suffix == ".safetensors":
        sd = load_safetensors(p)
        card = read_card(p)
    else:
        sd = _unwrap(load_torch_checkpoint(p), p)
        card = {}
    try:
        cfg = config or config_from_state_dict(sd, card)
    except CheckpointError as exc:
        raise CheckpointError(exc.reason, p) from exc
    model = LipReader(cfg)
    load_state_dict_strict(model, sd, p)
    return model.eval()


def config_dict(cfg: LipReaderConfig) -> dict[str, Any]:
    """JSON-ready config (for cards)."""
    d = asdict(cfg)
    d["kernels"] = list(cfg.kernels)
    return d
