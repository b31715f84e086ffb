"""Loading SyncTalkFace weights.

- The authors' training checkpoint (``train.py`` of commit 9d5d08db): ``torch.save({"model_state_dict",
  "dec_state_dict", "disc_state_dict"})`` (no ``module.`` prefix: it saves ``model.module``), read with
  ``weights_only=True``; each part is loaded strictly and a missing part is named.
- The 128-px expert: ``{"state_dict": ...}`` with ``module.`` stripped (the authors' ``load_checkpoint``).
  The 96-px Wav2Lip expert (``lipsync_expert.pth``) has three fewer face-encoder layers and is refused by
  name, before any shape error.
- Our own safetensors: the generator under ``generator.`` and the decoder under ``decoder.`` (the
  :class:`~baselines.synctalkface.model.SyncTalkFace` state dict), the expert as its own state dict.

Widths are read from the tensors (the memory's and the last layers' channel count / 512), so scaled
models load without a card.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from baselines.synctalkface.model import (
    QualityDiscriminator128,
    SyncNet128,
    SyncTalkFace,
    SyncTalkFaceDecoder,
    SyncTalkFaceGenerator,
)
from talkbench.errors import CheckpointError
from talkbench.weights import (
    load_safetensors,
    load_state_dict_strict,
    load_torch_checkpoint,
    load_weights_file,
    strip_prefix,
)

PARTS = ("model_state_dict", "dec_state_dict", "disc_state_dict")
WAV2LIP_EXPERT_LAYERS = 17  # SyncNet_color at 96 px: face_encoder.0 .. face_encoder.16
EXPERT_LAYERS = 19


def _width(sd: Mapping[str, torch.Tensor], key: str, dim: int, source: str | Path) -> float:
    if key not in sd:
        raise CheckpointError(f"missing key {key} (not a SyncTalkFace state dict?)", source)
    return float(sd[key].shape[dim]) / 512.0


def read_authors_checkpoint(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """The three state dicts of an authors'-layout training checkpoint, ``module.`` stripped."""
    obj = load_torch_checkpoint(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected the authors' checkpoint dict {{{', '.join(PARTS)}}}, got {type(obj).__name__}", path)
    if "state_dict" in obj and not any(p in obj for p in PARTS):
        raise CheckpointError("this is a single-model checkpoint {'state_dict'} (an expert?), not a SyncTalkFace "
                              f"training checkpoint with {', '.join(PARTS)}", path)
    missing = [p for p in PARTS if p not in obj]
    if missing:
        raise CheckpointError(f"the checkpoint dict lacks {', '.join(missing)} (has {', '.join(map(str, obj)) or 'nothing'}); "
                              f"the authors' train.py saves {', '.join(PARTS)}", path)
    bad = [p for p in PARTS if not isinstance(obj[p], Mapping)]
    if bad:
        raise CheckpointError(f"{', '.join(bad)} is not a state dict", path)
    return {p: strip_prefix(obj[p], "module.") for p in PARTS}


def load_authors_checkpoint(path: str | Path) -> tuple[SyncTalkFaceGenerator, SyncTalkFaceDecoder, QualityDiscriminator128]:
    """Generator, decoder and quality discriminator from the authors' checkpoint dict, strictly."""
    parts = read_authors_checkpoint(path)
    gen = SyncTalkFaceGenerator(_width(parts["model_state_dict"], "mem.key", 1, path))
    dec = SyncTalkFaceDecoder(_width(parts["dec_state_dict"], "face_decoder_blocks.0.0.conv_block.0.weight", 0, path))
    disc = QualityDiscriminator128(_width(parts["disc_state_dict"], "face_encoder_blocks.6.1.conv_block.0.weight", 0, path))
    for name, model in (("model_state_dict", gen), ("dec_state_dict", dec), ("disc_state_dict", disc)):
        load_state_dict_strict(model, parts[name], f"{path} [{name}]")
    return gen, dec, disc


def load_synctalkface(path: str | Path) -> SyncTalkFace:
    """The inference model (generator + decoder) from our safetensors or the authors' checkpoint dict."""
    p = Path(path)
    if p.suffix == ".safetensors":
        sd = load_safetensors(p)
        model = SyncTalkFace(_width(sd, "generator.mem.key", 1, p))
        load_state_dict_strict(model, sd, p)
        return model.eval()
    gen, dec, _ = load_authors_checkpoint(p)
    if gen.width != _width(dec.state_dict(), "face_decoder_blocks.0.0.conv_block.0.weight", 0, p):
        raise CheckpointError("model_state_dict and dec_state_dict have different widths", p)
    model = SyncTalkFace(gen.width)
    model.generator, model.decoder = gen, dec
    return model.eval()


def check_expert_layout(sd: Mapping[str, torch.Tensor], source: str | Path) -> None:
    """Refuse the 96-px Wav2Lip expert (or anything else) by name before a strict load."""
    idx = {int(k.split(".")[1]) for k in sd if k.startswith("face_encoder.") and k.split(".")[1].isdigit()}
    if not idx:
        raise CheckpointError("no face_encoder.* keys: not a SyncNet expert state dict", source)
    layers = max(idx) + 1
    if layers == WAV2LIP_EXPERT_LAYERS:
        raise CheckpointError(
            "this is the 96-px Wav2Lip expert (SyncNet_color, 17 face-encoder layers for 48x96 lower halves); "
            f"SyncTalkFace needs its own 128-px expert ({EXPERT_LAYERS} face-encoder layers for 64x128 lower halves): "
            "train one with `talkbench train synctalkface --stage expert`", source)
    if layers != EXPERT_LAYERS:
        raise CheckpointError(f"face encoder has {layers} layers; the 128-px SyncTalkFace expert has {EXPERT_LAYERS}", source)


def load_expert(path: str | Path) -> SyncNet128:
    """The 128-px expert from ``{"state_dict"}`` (``module.`` stripped) or our safetensors, strictly."""
    sd = strip_prefix(load_weights_file(path), "module.")
    check_expert_layout(sd, path)
    model = SyncNet128(_width(sd, "face_encoder.18.conv_block.0.weight", 0, path))
    load_state_dict_strict(model, sd, path)
    return model.eval()
