"""Training a SyncNet "S" critic on any dataset the suite reads (synthetic corpus by default).

Objective: multi-way matching (Chung et al. 2020, "Seeing voices and hearing voices") on the
Euclidean distances LSE uses: each batch holds ``clips`` clips x ``windows`` 5-frame windows at
different offsets of the same clip; logits are ``-||v_i - a_j|| / tau`` over all pairs and a
cross-entropy in both directions picks the matching window, so the negatives include the same
speaker at other offsets, exactly what LSE's offset search must tell apart.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from talkbench.critics.sync_eval import lse, mfcc_windows, to_syncnet_frames
from talkbench.critics.syncnet import SyncNetS
from talkbench.datasets.clips import ClipsConfig, spaced_starts
from talkbench.errors import ConfigError, TalkbenchError
from talkbench.types import PROTOCOL_SAMPLES_PER_FRAME


@dataclass(frozen=True)
class SyncNetTrainConfig(ClipsConfig):
    width: float = 0.25
    steps: int = 600
    clips_per_batch: int = 6
    windows_per_clip: int = 4
    lr: float = 1e-3
    tau: float = 0.1
    max_clips: int | None = None
    seed: int = 0
    # Box of the protocol crop fed to the critic (x0, y0, x1, y1 fractions): the synthetic faces' mouths
    # are ~30x8 px of a 128 px crop, too small for the 224-px SyncNet to learn from on a CPU budget;
    # this square holds nose, mouth and chin. Written on the card; the LSE scorer applies it.
    view: tuple[float, float, float, float] = (0.25, 0.28, 0.75, 0.78)
    min_gap: int = 5  # frames between the starts of a clip's windows (overlapping windows are near-duplicates)
    # Resolution augmentation: with probability ``res_aug_p`` a window is resized down to a random side in
    # [res_aug, crop size] and back up. Without it the critic scores sharpness as well as sync: ground
    # truth passed through 64 px loses 60% of its LSE-C although its sync is untouched (docs/critics.md).
    res_aug: int = 0
    res_aug_p: float = 0.5
    init: str | None = None  # weights file to start from (fine-tuning); its sha256 goes on the card


def _load_split(cfg: SyncNetTrainConfig, split: str, limit: int | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from talkbench.datasets.clips import protocol_clips

    out = [(s.sample_id, c.frames, c.audio)
           for s, c in protocol_clips(cfg.dataset, cfg.root, split, limit, min_frames=12, desc="crops")]
    if not out:
        raise ConfigError(f"no usable clips in {cfg.dataset}/{split}")
    return out


def resample(frames: np.ndarray, side: int) -> np.ndarray:
    """Frames (T, S, S, 3) through a ``side``-pixel version and back (area down, bilinear up)."""
    h, w = frames.shape[1:3]
    if side >= min(h, w):
        return frames
    return np.stack([cv2.resize(cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA), (w, h),
                                interpolation=cv2.INTER_LINEAR) for f in frames])


def _batch(data, cfg: SyncNetTrainConfig, rng: np.random.Generator, mfccs: list[torch.Tensor]):
    vids, auds = [], []
    for c in rng.choice(len(data), cfg.clips_per_batch, replace=False):
        _, frames, _ = data[c]
        n = min(len(frames), mfccs[c].shape[0] + 4) - 4
        for t in spaced_starts(n, cfg.windows_per_clip, cfg.min_gap, rng):
            window = frames[t : t + 5]
            if cfg.res_aug and rng.random() < cfg.res_aug_p:
                window = resample(window, int(rng.integers(cfg.res_aug, window.shape[1] + 1)))
            vids.append(to_syncnet_frames(window, cfg.view))
            auds.append(mfccs[c][t])
    v = torch.from_numpy(np.stack(vids)).float().permute(0, 4, 1, 2, 3)  # (N, 3, 5, H, W)
    a = torch.stack(auds)  # (N, 1, 13, 20)
    return v, a


def offset_accuracy(model: SyncNetS, data, max_clips: int = 20, shift: int = 0,
                    view: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)) -> float:
    """Fraction of clips whose LSE offset is ``-shift`` (+-1 frame) when the audio is delayed by
    ``shift`` frames (syncnet_python's sign: delayed audio gives a negative AV offset)."""
    model.eval()
    hits = 0
    n = 0
    for _, frames, audio in data[:max_clips]:
        a = np.roll(audio, shift * PROTOCOL_SAMPLES_PER_FRAME) if shift else audio
        try:
            r = lse(model, to_syncnet_frames(frames, view), a)
        except TalkbenchError:
            continue
        n += 1
        hits += abs(r.av_offset + shift) <= 1
    return hits / max(n, 1)


def train_syncnet(cfg: SyncNetTrainConfig, out_dir: str | Path, resume: bool = False, evaluate: bool = True) -> dict:
    """Train, checkpoint every 100 steps (resumable), return the final metrics (the held-out sanity checks
    only with ``evaluate``)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = _load_split(cfg, cfg.split, cfg.max_clips)
    val = _load_split(cfg, cfg.val_split, 20)
    mfccs = [mfcc_windows(a, len(f) - 4) for _, f, a in data]
    model = SyncNetS(width=cfg.width)
    if cfg.init:
        from talkbench.critics.syncnet import load_syncnet

        model.load_state_dict(load_syncnet(cfg.init, width=cfg.width).state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step = 0
    ckpt = out / "last.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = int(state["step"])
    log = open(out / "log.jsonl", "a")  # noqa: SIM115 (kept open for the whole loop, closed below)
    bar = tqdm(total=cfg.steps, initial=step, desc="train syncnet", unit="step")
    t0 = time.perf_counter()
    while step < cfg.steps:
        model.train()
        v, a = _batch(data, cfg, rng, mfccs)
        ev = model.forward_lip(v)
        ea = model.forward_aud(a)
        # Matching on distances of unit-norm embeddings (raw distances at initialisation are so large that
        # the softmax saturates), plus a pull of the raw norms towards a constant so that the raw
        # Euclidean distances LSE uses rank windows the same way.
        logits = -torch.cdist(F.normalize(ev, dim=1), F.normalize(ea, dim=1)) / cfg.tau
        target = torch.arange(len(ev))
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        norms = torch.cat([ev.norm(dim=1), ea.norm(dim=1)])
        loss = loss + 1e-3 * ((norms - 10.0) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        acc = float((logits.argmax(1) == target).float().mean())
        log.write(json.dumps({"step": step, "loss": float(loss.detach()), "acc": acc}) + "\n")
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}", acc=f"{acc:.2f}")
        bar.update(1)
        if step % 100 == 0 or step == cfg.steps:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, ckpt)
    bar.close()
    log.close()
    metrics = {**(critic_sanity(model, val, cfg.view) if evaluate else {}),
               "train_seconds": round(time.perf_counter() - t0, 1), "steps": step}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return {"model": model, "metrics": metrics, "config": asdict(cfg), "val": val}


def gt_confidence(model: SyncNetS, data, view: tuple[float, float, float, float], side: int | None = None,
                  max_clips: int = 20) -> float:
    """Mean ground-truth LSE-C, optionally after a ``side``-pixel round trip (a sync critic should not
    care much: the sync is unchanged)."""
    model.eval()
    cs = []
    for _, frames, audio in data[:max_clips]:
        f = resample(frames, side) if side else frames
        try:
            cs.append(lse(model, to_syncnet_frames(f, view), audio).lse_c)
        except TalkbenchError:
            continue
    return round(float(np.mean(cs)), 3) if cs else float("nan")


def critic_sanity(model: SyncNetS, val, view: tuple[float, float, float, float]) -> dict:
    """The checks a user can rerun: offset found on ground truth, and with the audio moved by 3 frames;
    ground-truth confidence at full and at 64-px resolution."""
    return {
        "val_offset0_rate": offset_accuracy(model, val, view=view),
        "val_offset_audio_delayed3_rate": offset_accuracy(model, val, shift=3, view=view),
        "val_offset_audio_advanced3_rate": offset_accuracy(model, val, shift=-3, view=view),
        "val_gt_lse_c_mean": gt_confidence(model, val, view),
        "val_gt64_lse_c_mean": gt_confidence(model, val, view, side=64),
        "val_clips": len(val[:20]),
    }
