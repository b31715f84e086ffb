"""Audio2Head's generation loop (``inference.py:audio2head``) on the native networks: poses from
audio2pose over the whole clip, then 64-frame windows through audio2kp, each kept frame rendered by
the generator from the reference image with the detector's source keypoints and the predicted
absolute driving keypoints (no relative motion transfer)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from baselines.audio2head.preprocess import SEQ_LEN, denormalise_pose, frame_blocks, window_inputs, windows


@dataclass
class Generation:
    """Frames (T, 3, 256, 256) float32 in [0, 1] plus what produced them: normalised poses (T + 1, 6),
    rotation/translation (T + 1, 3) and driving keypoints (T, 10, 2) / jacobians (T, 10, 2, 2)."""

    frames: np.ndarray
    poses: np.ndarray
    rot: np.ndarray
    trans: np.ndarray
    kp_value: np.ndarray
    kp_jacobian: np.ndarray


def render(nets: Mapping[str, nn.Module], image: torch.Tensor, kp_source: Mapping[str, torch.Tensor],
           value: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    """The generator on ``image`` (1, 3, 256, 256) moved from its own keypoints ``kp_source`` to n driving
    keypoints (``value`` (n, 10, 2), ``jacobian`` (n, 10, 2, 2)): (n, 3, 256, 256) in [0, 1]."""
    n = len(value)
    src = {k: kp_source[k].expand(n, *kp_source[k].shape[1:]) for k in ("value", "jacobian")}
    return nets["generator"](image.expand(n, -1, -1, -1), {"value": value, "jacobian": jacobian}, src)["prediction"]


@torch.no_grad()
def generate(nets: Mapping[str, nn.Module], image: np.ndarray, features: np.ndarray, *, device: str = "cpu",
             batch_size: int = 16, frames_out: Callable[[np.ndarray], np.ndarray] | None = None) -> Generation:
    """``image`` (3, 256, 256) float in [0, 1]; ``features`` (N, 41) at 100 Hz. ``frames_out`` may
    convert each batch of float frames (e.g. to uint8 crops) to save memory on long clips."""
    blocks = frame_blocks(features)
    frames = len(blocks)
    if frames == 0:
        raise ValueError("audio shorter than one video frame (4 feature rows)")
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(device)
    audio = torch.from_numpy(blocks)[None].to(device)
    poses = nets["audio2pose"](img, audio)[0].float().cpu().numpy()
    rot, trans = denormalise_pose(poses)
    src = nets["kp_detector"](img)
    outs, values, jacs = [], [], []
    for start, lo, hi in windows(frames, SEQ_LEN):
        a, p = window_inputs(blocks, rot, trans, start, SEQ_LEN)
        kp = nets["audio2kp"](torch.from_numpy(a)[None].to(device), torch.from_numpy(p)[None].to(device), img)
        value, jac = kp["value"][0, lo:hi], kp["jacobian"][0, lo:hi]
        values.append(value.float().cpu().numpy())
        jacs.append(jac.float().cpu().numpy())
        for i in range(0, hi - lo, batch_size):
            pred = render(nets, img, src, value[i : i + batch_size], jac[i : i + batch_size]).float().cpu().numpy()
            outs.append(frames_out(pred) if frames_out else pred)
    return Generation(np.concatenate(outs), poses, rot, trans, np.concatenate(values), np.concatenate(jacs))
