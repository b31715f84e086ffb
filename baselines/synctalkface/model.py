"""SyncTalkFace (Park et al., AAAI 2022): a Wav2Lip-style U-Net at 128 px whose audio embedding is fused
with a lip embedding recalled from the Audio-Lip Memory, re-implemented from the authors' deleted
training code (jinny960812/SyncTalkFace commit 9d5d08db; facts in ``docs/synctalkface.md``).

Module trees follow that code so its checkpoint dict loads strictly:

- ``SyncTalkFaceGenerator`` (the authors' ``Wav2Lip``, saved as ``model_state_dict``): ``mem``
  (:class:`AudioLipMemory`), ``lip_encoder`` (Conv3d over 5 lower-half frames, then 2-D blocks to a
  512-d embedding; used in training only), ``face_encoder_blocks`` (Wav2Lip's at 128 px: the last block
  has kernel 4 at 4x4) and Wav2Lip's generator ``audio_encoder``;
- ``SyncTalkFaceDecoder`` (``Wav2Lip_decoder``, ``dec_state_dict``): Wav2Lip's decoder with a first
  transposed convolution of kernel 4, output ``Tanh`` (images in [-1, 1]);
- ``QualityDiscriminator128`` (``Wav2Lip_disc_qual`` at 128, ``disc_state_dict``);
- ``SyncNet128`` (the 128-px ``SyncNet_color``): two more face-encoder stages than Wav2Lip's, so the
  96-px Wav2Lip expert does not fit it.

The convolution blocks are Wav2Lip's (same ``conv_block`` layout). ``width`` scales every channel count
(the memory's 512 too; the 96 slots stay) for the CPU-trained synthetic preset; 1.0 is the authors' size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from baselines.wav2lip.model import (
    Conv2d,
    Conv2dTranspose,
    NoNormConv2d,
    QualityDiscriminator,
    _audio_encoder,
    _res,
    _scaler,
)

SIZE = 128
T = 5
SLOTS = 96
RADIUS = 16.0


@dataclass
class MemoryOut:
    """What the memory returns for N queries (N = frames)."""

    te_fusion: torch.Tensor  # (N, C): audio embedding fused with the lip recalled by key addressing
    key_add: torch.Tensor  # (N, slots): softmax(radius * cos(q_embd(audio), key))
    tr_fusion: torch.Tensor | None = None  # (N, C): fused with the lip recalled by value addressing
    value_add: torch.Tensor | None = None  # (N, slots)
    recon_loss: torch.Tensor | None = None  # MSE(value_add @ value, v_embd(lip).detach())
    add_loss: torch.Tensor | None = None  # KL(value_add.detach() || key_add), batch mean
    lip: torch.Tensor | None = None  # (N, C): the lip encoder's embedding of each frame's window


class AudioLipMemory(nn.Module):
    """Key memory addressed by the audio, value memory addressed by the lip embedding (training); the
    recalled value is concatenated to the audio embedding and fused 2C -> C after dropout 0.5."""

    def __init__(self, dim: int = 512, slots: int = SLOTS, radius: float = RADIUS) -> None:
        super().__init__()
        self.key = nn.Parameter(torch.empty(slots, dim).normal_(0, 0.5))
        self.value = nn.Parameter(torch.empty(slots, dim).normal_(0, 0.5))
        self.q_embd = nn.Linear(dim, dim)
        self.v_embd = nn.Linear(dim, dim)
        self.fusion = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(0.5)
        self.radius = radius

    def address(self, query: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """softmax over slots of radius x the cosine between each query and each slot."""
        return torch.softmax(self.radius * F.normalize(query, dim=1) @ F.normalize(slots, dim=1).T, dim=1)

    def _fuse(self, audio: torch.Tensor, lip: torch.Tensor) -> torch.Tensor:
        return self.fusion(self.dropout(torch.cat([audio, lip], dim=1)))

    def forward(self, audio: torch.Tensor, lip: torch.Tensor | None = None) -> MemoryOut:
        key_add = self.address(self.q_embd(audio), self.key)
        out = MemoryOut(te_fusion=self._fuse(audio, key_add @ self.value), key_add=key_add)
        if lip is not None:
            out.lip = lip
            embd = self.v_embd(lip)
            out.value_add = self.address(embd, self.value)
            recalled = out.value_add @ self.value
            out.recon_loss = F.mse_loss(recalled, embd.detach())
            out.tr_fusion = self._fuse(audio, recalled)
            # KL(value || key) with the value address as the (detached) target, as F.kl_div(log key, value).
            out.add_loss = F.kl_div(torch.log(key_add + 1e-13), out.value_add.detach(), reduction="batchmean")
        return out


class _Squeeze(nn.Module):
    """(N, C, 1, H, W) -> (N, C, H, W): the Conv3d has consumed the 5 frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(2)


def lip_encoder(c) -> nn.Sequential:
    """5 frames (N, 3, 5, 128, 128) with the upper half zeroed -> (N, C, 1, 1)."""
    return nn.Sequential(
        nn.Conv3d(3, c(64), kernel_size=(5, 7, 7), stride=2, padding=(0, 3, 3)), _Squeeze(),
        Conv2d(c(64), c(64), 3, 2, 1), _res(c(64)), _res(c(64)), _res(c(64)),
        Conv2d(c(64), c(128), 3, 2, 1), _res(c(128)), _res(c(128)),
        Conv2d(c(128), c(256), 3, 2, 1), _res(c(256)), _res(c(256)),
        Conv2d(c(256), c(512), 3, 2, 1), _res(c(512)),
        Conv2d(c(512), c(512), 4, 1, 0), Conv2d(c(512), c(512), 1, 1, 0),
    )


class SyncTalkFaceGenerator(nn.Module):
    """Encoders and memory: per frame, faces (N, 6, 128, 128) [masked target | reference] and mels
    (N, 1, 80, 16); in training also lip windows (N, 3, 5, 128, 128). Returns the memory output and the
    face features the decoder concatenates (U-Net skips)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = _scaler(width)
        self.width = width
        self.mem = AudioLipMemory(c(512))
        self.lip_encoder = lip_encoder(c)
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(6, c(16), 7, 1, 3)),
            nn.Sequential(Conv2d(c(16), c(32), 3, 2, 1), _res(c(32)), _res(c(32))),
            nn.Sequential(Conv2d(c(32), c(64), 3, 2, 1), _res(c(64)), _res(c(64)), _res(c(64))),
            nn.Sequential(Conv2d(c(64), c(128), 3, 2, 1), _res(c(128)), _res(c(128))),
            nn.Sequential(Conv2d(c(128), c(256), 3, 2, 1), _res(c(256)), _res(c(256))),
            nn.Sequential(Conv2d(c(256), c(512), 3, 2, 1), _res(c(512))),
            nn.Sequential(Conv2d(c(512), c(512), 4, 1, 0), Conv2d(c(512), c(512), 1, 1, 0)),
        ])
        self.audio_encoder = _audio_encoder(c, 1)

    def encode_lip(self, lip: torch.Tensor) -> torch.Tensor:
        return self.lip_encoder(lip).flatten(1)

    def forward(self, audio: torch.Tensor, face: torch.Tensor,
                lip: torch.Tensor | None = None) -> tuple[MemoryOut, list[torch.Tensor]]:
        a = self.audio_encoder(audio).flatten(1)
        out = self.mem(a, None if lip is None else self.encode_lip(lip))
        feats, y = [], face
        for block in self.face_encoder_blocks:
            y = block(y)
            feats.append(y)
        return out, feats


class SyncTalkFaceDecoder(nn.Module):
    """Fused embedding (N, C) and the encoder features -> (N, 3, 128, 128) in [-1, 1] (BGR)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = _scaler(width)
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(c(512), c(512), 1, 1, 0)),
            nn.Sequential(Conv2dTranspose(2 * c(512), c(512), 4, 1, 0), _res(c(512))),
            nn.Sequential(Conv2dTranspose(2 * c(512), c(512), 3, 2, 1, 1), _res(c(512)), _res(c(512))),
            nn.Sequential(Conv2dTranspose(c(512) + c(256), c(384), 3, 2, 1, 1), _res(c(384)), _res(c(384))),
            nn.Sequential(Conv2dTranspose(c(384) + c(128), c(256), 3, 2, 1, 1), _res(c(256)), _res(c(256))),
            nn.Sequential(Conv2dTranspose(c(256) + c(64), c(128), 3, 2, 1, 1), _res(c(128)), _res(c(128))),
            nn.Sequential(Conv2dTranspose(c(128) + c(32), c(64), 3, 2, 1, 1), _res(c(64)), _res(c(64))),
        ])
        self.output_block = nn.Sequential(Conv2d(c(64) + c(16), c(32), 3, 1, 1), nn.Conv2d(c(32), 3, 1, 1, 0), nn.Tanh())

    def forward(self, emb: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        x = emb[:, :, None, None]
        for block, skip in zip(self.face_decoder_blocks, reversed(feats)):
            x = torch.cat((block(x), skip), dim=1)
        return self.output_block(x)


class SyncTalkFace(nn.Module):
    """Inference: the memory recalls the lip from the audio alone (key addressing).
    audio (N, 1, 80, 16), face (N, 6, 128, 128) in [-1, 1] -> (N, 3, 128, 128) in [-1, 1]."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.width = width
        self.generator = SyncTalkFaceGenerator(width)
        self.decoder = SyncTalkFaceDecoder(width)

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        out, feats = self.generator(audio, face)
        return self.decoder(out.te_fusion, feats)


class SyncNet128(nn.Module):
    """The 128-px expert: lower halves of 5 BGR frames in [0, 1] (N, 15, 64, 128) and a mel window
    (N, 1, 80, 16) -> L2-normalised (audio, face) embeddings."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c = _scaler(width)
        self.width = width
        self.face_encoder = nn.Sequential(
            Conv2d(15, c(32), 7, 1, 3),
            Conv2d(c(32), c(64), 5, (1, 2), 1), _res(c(64)), _res(c(64)),
            Conv2d(c(64), c(128), 3, 2, 1), _res(c(128)), _res(c(128)), _res(c(128)),
            Conv2d(c(128), c(256), 3, 2, 1), _res(c(256)), _res(c(256)),
            Conv2d(c(256), c(512), 3, 2, 1), _res(c(512)), _res(c(512)),
            Conv2d(c(512), c(512), 3, 2, 1), _res(c(512)), _res(c(512)),
            Conv2d(c(512), c(512), 4, 1, 0), Conv2d(c(512), c(512), 1, 1, 0),
        )
        self.audio_encoder = _audio_encoder(c, 2)

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.normalize(self.audio_encoder(audio).flatten(1), p=2, dim=1)
        f = F.normalize(self.face_encoder(face).flatten(1), p=2, dim=1)
        return a, f


class QualityDiscriminator128(QualityDiscriminator):
    """Wav2Lip's visual quality discriminator at 128 px: the last block has kernel 4 (4x4 -> 1x1)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__(width)
        c = _scaler(width)
        self.face_encoder_blocks[6] = nn.Sequential(NoNormConv2d(c(512), c(512), 4, 1, 0),
                                                    NoNormConv2d(c(512), c(512), 1, 1, 0))
