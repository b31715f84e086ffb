"""Loading Wav2Lip weights: the official files (``torch.save({"state_dict", "optimizer",
"global_step", "global_epoch"})``, keys possibly prefixed ``module.`` by DataParallel, as
``inference.py:load_model`` strips them) read with ``weights_only=True``, or our safetensors whose
card records the width."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from baselines.wav2lip.model import QualityDiscriminator, SyncNetColor, Wav2Lip
from talkbench.weights import load_state_dict_strict, load_weights_file, read_card, strip_prefix

KINDS = {"generator": Wav2Lip, "expert": SyncNetColor, "quality": QualityDiscriminator}


def load_wav2lip(path: str | Path, kind: str = "generator", width: float | None = None) -> nn.Module:
    """Build the ``kind`` model at the right width and load ``path`` strictly."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    sd = strip_prefix(load_weights_file(path), "module.")
    if width is None:
        width = float(read_card(path).get("config", {}).get("width", 1.0)) if str(path).endswith(".safetensors") else 1.0
    model = KINDS[kind](width=width)
    load_state_dict_strict(model, sd, path)
    return model.eval()
