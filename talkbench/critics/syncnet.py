"""SyncNet "S" (Chung & Zisserman 2016, the released v2 model) with the module structure and
state-dict keys of ``syncnet_v2.model`` (joonson/syncnet_python ``SyncNetModel.py``): four
``nn.Sequential`` stacks ``netcnnaud``, ``netfcaud``, ``netcnnlip``, ``netfclip`` whose indices give
the keys (``netcnnaud.0.weight`` ...), so the official file loads strictly.

Inputs: audio MFCC windows ``(N, 1, 13, 20)`` (int16-scale python_speech_features MFCC, 20 steps =
5 video frames); video ``(N, 3, 5, 224, 224)`` BGR in 0-255, unnormalised. Outputs: 1024-d
embeddings, not L2-normalised.

``width`` scales every channel count (1.0 = the official model); smaller widths are for critics
trained on the synthetic corpus on a CPU. Only width 1.0 loads official weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from talkbench.weights import load_state_dict_strict, load_weights_file


def _c(n: int, width: float) -> int:
    return max(8, round(n * width))


class SyncNetS(nn.Module):
    def __init__(self, width: float = 1.0, embed_dim: int = 1024) -> None:
        super().__init__()
        self.width = width
        c = lambda n: _c(n, width)  # noqa: E731
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, c(64), 3, 1, 1), nn.BatchNorm2d(c(64)), nn.ReLU(inplace=True),
            nn.MaxPool2d(1, 1),
            nn.Conv2d(c(64), c(192), 3, 1, 1), nn.BatchNorm2d(c(192)), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, (1, 2)),
            nn.Conv2d(c(192), c(384), 3, padding=1), nn.BatchNorm2d(c(384)), nn.ReLU(inplace=True),
            nn.Conv2d(c(384), c(256), 3, padding=1), nn.BatchNorm2d(c(256)), nn.ReLU(inplace=True),
            nn.Conv2d(c(256), c(256), 3, padding=1), nn.BatchNorm2d(c(256)), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, (2, 2)),
            nn.Conv2d(c(256), c(512), (5, 4), padding=0), nn.BatchNorm2d(c(512)), nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(
            nn.Linear(c(512), c(512)), nn.BatchNorm1d(c(512)), nn.ReLU(), nn.Linear(c(512), embed_dim),
        )
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, c(96), (5, 7, 7), (1, 2, 2), 0), nn.BatchNorm3d(c(96)), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(c(96), c(256), (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            nn.Conv3d(c(256), c(256), (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.Conv3d(c(256), c(256), (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.Conv3d(c(256), c(256), (1, 3, 3), padding=(0, 1, 1)), nn.BatchNorm3d(c(256)), nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            nn.Conv3d(c(256), c(512), (1, 6, 6), padding=0), nn.BatchNorm3d(c(512)), nn.ReLU(inplace=True),
        )
        self.netfclip = nn.Sequential(
            nn.Linear(c(512), c(512)), nn.BatchNorm1d(c(512)), nn.ReLU(), nn.Linear(c(512), embed_dim),
        )

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCC windows -> (N, 1024)."""
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def lip_conv(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, 224, 224) -> (B, 512, T - 4): after the first layer every kernel is 1 frame deep,
        so one pass over a whole clip yields the conv features of all T - 4 five-frame windows."""
        return self.netcnnlip(x).flatten(3).squeeze(3)

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) windows -> (N, 1024)."""
        return self.netfclip(self.netcnnlip(x).flatten(1))

    def lip_embeddings(self, clip: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """Embeddings ``(T - 4, 1024)`` of every 5-frame window of a (3, T, 224, 224) clip, computed in
        overlapping chunks of ``chunk`` windows (bounded memory, identical result)."""
        t = clip.shape[1]
        feats = []
        for start in range(0, t - 4, chunk):
            stop = min(t, start + chunk + 4)
            conv = self.lip_conv(clip[None, :, start:stop])  # (1, 512, n)
            feats.append(self.netfclip(conv[0].T))
        return torch.cat(feats)


def load_syncnet(path: str | Path, width: float | None = None) -> SyncNetS:
    """Load official ``syncnet_v2.model`` (weights_only torch file) or our safetensors (whose card
    gives the width). Strict: missing/unexpected keys and shape mismatches are reported by name."""
    from talkbench.weights import read_card

    sd = load_weights_file(path)
    if width is None:
        width = float(read_card(path).get("config", {}).get("width", 1.0)) if str(path).endswith(".safetensors") else 1.0
    model = SyncNetS(width=width)
    load_state_dict_strict(model, sd, path)
    return model.eval()
