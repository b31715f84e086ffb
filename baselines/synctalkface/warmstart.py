"""Warm start of the SyncTalkFace generator and decoder from a trained Wav2Lip generator of the same width
(a CPU-budget aid, not in the authors' recipe; off unless ``--init-generator`` is given).

The U-Nets share every layer but two, so Wav2Lip's weights map over with conversions that keep the
function where the shapes allow:

- inputs in [-1, 1] instead of [0, 1]: the first convolution's weights are halved and their sum added
  to its bias (exact away from the zero padding; the masked half, 0 in both, differs);
- ``Tanh`` output instead of ``Sigmoid``: 2 sigmoid(z) - 1 = tanh(z / 2), so the last 1x1 convolution is
  halved (exact);
- the kernel-4 bottleneck layers (4x4 -> 1x1 and back at 128 px) get Wav2Lip's 3x3 kernels in their
  top-left corner, zeros elsewhere (approximate: a 3x3 map becomes a 4x4 one);
- the memory's fusion starts as [identity | 0], so the decoder first sees the audio embedding alone, as
  Wav2Lip's decoder did; the memory slots, its embeddings and the lip encoder keep their random init.
"""

from __future__ import annotations

from pathlib import Path

import torch

from baselines.synctalkface.model import SyncTalkFaceDecoder, SyncTalkFaceGenerator
from talkbench.errors import CheckpointError
from talkbench.weights import load_weights_file, strip_prefix


def _fit(src: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if src.shape == shape:
        return src
    if src.dim() == 4 and src.shape[:2] == shape[:2] and all(a <= b for a, b in zip(src.shape[2:], shape[2:])):
        out = torch.zeros(shape, dtype=src.dtype)
        out[:, :, : src.shape[2], : src.shape[3]] = src
        return out
    raise ValueError(f"{tuple(src.shape)} does not fit {tuple(shape)}")


@torch.no_grad()
def init_from_wav2lip(gen: SyncTalkFaceGenerator, dec: SyncTalkFaceDecoder, path: str | Path) -> int:
    """Copy a Wav2Lip generator (``path``: our safetensors or the official layout) into ``gen``/``dec``;
    returns the number of tensors copied."""
    sd = strip_prefix(load_weights_file(path), "module.")
    targets = {**{k: v for k, v in gen.state_dict().items() if k.startswith(("face_encoder_blocks.", "audio_encoder."))},
               **{f"dec::{k}": v for k, v in dec.state_dict().items()}}
    new_gen, new_dec = {}, {}
    for key, own in targets.items():
        name = key.removeprefix("dec::")
        if name not in sd:
            raise CheckpointError(f"not a Wav2Lip generator: no {name}", path)
        try:
            t = _fit(sd[name].to(own.dtype), own.shape)
        except ValueError as exc:
            raise CheckpointError(f"{name}: {exc} (a Wav2Lip generator of another width?)", path) from exc
        (new_dec if key.startswith("dec::") else new_gen)[name] = t.clone()
    w = new_gen["face_encoder_blocks.0.0.conv_block.0.weight"]
    new_gen["face_encoder_blocks.0.0.conv_block.0.bias"] = new_gen["face_encoder_blocks.0.0.conv_block.0.bias"] + 0.5 * w.sum(dim=(1, 2, 3))
    new_gen["face_encoder_blocks.0.0.conv_block.0.weight"] = 0.5 * w
    new_dec["output_block.1.weight"] = 0.5 * new_dec["output_block.1.weight"]
    new_dec["output_block.1.bias"] = 0.5 * new_dec["output_block.1.bias"]
    gen.load_state_dict(new_gen, strict=False)
    dec.load_state_dict(new_dec, strict=True)
    c = gen.mem.fusion.out_features
    gen.mem.fusion.weight.zero_()
    gen.mem.fusion.weight[:, :c] = torch.eye(c)
    gen.mem.fusion.bias.zero_()
    return len(new_gen) + len(new_dec)
