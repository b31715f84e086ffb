"""Training a lip reader (word classifier) on any word-level dataset the suite reads (LRW layout).

Recipe after mpc001's LRW training (``main.py``, ``lipreading/dataloaders.py``): cross-entropy, AdamW,
cosine learning-rate schedule, random 88x88 crop + horizontal flip of the 96x96 mouth ROIs, centre
crop for evaluation (no mixup, no time masking). Labels are ``Sample.word`` (the LRW folder name).

``vocab=N`` trains on the first N words of LRW's sorted word list (class i = word i), for a critic that
can learn on a CPU budget; the exported card lists the vocabulary and the scorer returns NaN for words
outside it. :func:`build_vocab_corpus` writes a synthetic LRW-layout corpus restricted to such a subset.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from talkbench.critics.lipreader import LipReader, LipReaderConfig, config_dict
from talkbench.critics.mouth_roi import mouth_rois, to_model_input
from talkbench.datasets.clips import ClipsConfig
from talkbench.errors import ConfigError, TalkbenchError
from talkbench.types import PROTOCOL_SIZE


@dataclass(frozen=True)
class LipReaderTrainConfig(ClipsConfig):
    dataset: str = "synth-lrw"
    test_split: str = "test"
    vocab: int | None = None  # first N LRW words; None = all 500
    width: float = 0.25
    act: str = "swish"
    steps: int = 600
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup: int = 20
    max_clips: int | None = None
    seed: int = 0
    checkpoint_every: int = 100
    roi_pipeline: str = "legacy"  # mouth-ROI pipeline of the crops (the card records it; the scorer uses it)


Item = tuple[str, np.ndarray, int]  # sample id, (T, 96, 96) uint8 ROIs, class index


def load_rois(dataset: str, root: str | None, split: str, vocab: list[str], limit: int | None = None,
              progress: bool = True, pipeline: str = "legacy") -> tuple[list[Item], list[str]]:
    """Mouth ROIs and class indices of a split's samples whose word is in ``vocab``.

    Returns the items and the per-sample failures (``"id: reason"``; a bad clip is skipped, not fatal).
    """
    from talkbench.datasets import DATASETS
    from talkbench.faces.crop import load_clip

    index = {w: i for i, w in enumerate(vocab)}
    reader = DATASETS.get(dataset)(root)
    items: list[Item] = []
    failures: list[str] = []
    for s in tqdm(reader.samples(split), desc=f"rois {split}", unit="clip", disable=not progress):
        if limit is not None and len(items) >= limit:
            break
        word = (s.word or Path(s.video_path).parent.parent.name).upper()
        if word not in index:
            continue
        try:
            clip = load_clip(s, size=PROTOCOL_SIZE, landmarks=True)
            if clip.landmarks is None:
                raise TalkbenchError("no landmarks", s.video_path)
            items.append((s.sample_id, mouth_rois(clip.frames, clip.landmarks, s.sample_id, pipeline=pipeline),
                          index[word]))
        except TalkbenchError as exc:
            failures.append(f"{s.sample_id}: {exc.reason}")
    return items, failures


def _batch(items: list[Item], idx: np.ndarray, train: bool, rng: np.random.Generator):
    xs = [to_model_input(items[i][1], train=train, rng=rng) for i in idx]
    lengths = [x.shape[1] for x in xs]
    t = max(lengths)
    x = np.zeros((len(xs), 1, t, *xs[0].shape[2:]), np.float32)
    for j, v in enumerate(xs):
        x[j, :, : v.shape[1]] = v
    y = torch.tensor([items[i][2] for i in idx])
    return torch.from_numpy(x), lengths, y


@torch.no_grad()
def evaluate(model: LipReader, items: list[Item], batch_size: int = 16) -> dict[str, float]:
    """Top-1 / top-5 accuracy (centre crop) over ``items``."""
    model.eval()
    top1 = top5 = 0
    rng = np.random.default_rng(0)
    for s in range(0, len(items), batch_size):
        idx = np.arange(s, min(s + batch_size, len(items)))
        x, lengths, y = _batch(items, idx, False, rng)
        logits = model(x, lengths)
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        top1 += int((top[:, 0] == y).sum())
        top5 += int((top == y[:, None]).any(1).sum())
    n = max(len(items), 1)
    return {"top1": top1 / n, "top5": top5 / n, "clips": len(items)}


def vocabulary(n: int | None) -> list[str]:
    """The first ``n`` words of LRW's sorted list (all 500 for None)."""
    from talkbench.critics.vocabulary import lrw_vocabulary

    words = lrw_vocabulary()
    if n is not None and not 1 <= n <= len(words):
        raise ConfigError(f"vocab must be between 1 and {len(words)}, got {n}")
    return words[:n] if n else words


def train_lipreader(cfg: LipReaderTrainConfig, out_dir: str | Path, resume: bool = False,
                    progress: bool = True) -> dict[str, Any]:
    """Train with checkpoints every ``checkpoint_every`` steps (``resume`` continues from ``last.pt``);
    writes ``log.jsonl`` and ``metrics.json`` (val/test top-1 and top-5 on ground truth)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary(cfg.vocab)
    train, fails = load_rois(cfg.dataset, cfg.root, cfg.split, vocab, cfg.max_clips, progress, cfg.roi_pipeline)
    if not train:
        raise ConfigError(f"no usable training clips in {cfg.dataset}/{cfg.split} for the {len(vocab)}-word vocabulary")
    val, vfails = load_rois(cfg.dataset, cfg.root, cfg.val_split, vocab, None, progress, cfg.roi_pipeline)
    mcfg = LipReaderConfig(width=cfg.width, num_classes=len(vocab), act=cfg.act)  # type: ignore[arg-type]
    model = LipReader(mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_factor(step: int) -> float:  # linear warm-up, then cosine to 0
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        return 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    step = 0
    ckpt = out / "last.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step = int(state["step"])
        rng = np.random.default_rng([cfg.seed, step])  # a fresh, reproducible stream after resuming
    t0 = time.perf_counter()
    with open(out / "log.jsonl", "a") as log:
        bar = tqdm(total=cfg.steps, initial=step, desc="train lipreader", unit="step", disable=not progress)
        while step < cfg.steps:
            model.train()
            idx = rng.choice(len(train), min(cfg.batch_size, len(train)), replace=False)
            x, lengths, y = _batch(train, idx, True, rng)
            logits = model(x, lengths)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            acc = float((logits.argmax(1) == y).float().mean())
            rec: dict[str, Any] = {"step": step, "loss": round(float(loss.detach()), 5), "acc": acc,
                                   "lr": sched.get_last_lr()[0]}
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(), "step": step}, ckpt)
                if val:
                    rec["val"] = evaluate(model, val)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", acc=f"{acc:.2f}")
            bar.update(1)
        bar.close()
    test, tfails = load_rois(cfg.dataset, cfg.root, cfg.test_split, vocab, None, progress, cfg.roi_pipeline)
    metrics = {"val": evaluate(model, val), "test": evaluate(model, test), "train_clips": len(train),
               "train_seconds": round(time.perf_counter() - t0, 1), "steps": step,
               "skipped_clips": {"train": fails, "val": vfails, "test": tfails}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return {"model": model, "metrics": metrics, "config": {**asdict(cfg), "model": config_dict(mcfg)},
            "vocab": vocab, "val": val, "test": test}


def build_vocab_corpus(out: str | Path, n_words: int, clips_per_word: dict[str, int], seed: int = 0,
                       progress: bool = True) -> Path:
    """A synthetic LRW-layout corpus whose target *and* context words come from the first ``n_words``
    LRW words, ``clips_per_word[split]`` clips per word (idempotent). Returns its root."""
    from talkbench.datasets.synth.corpus import SPECS, _write_clip_safe, load_vocabulary

    root = Path(out)
    vocab = load_vocabulary()[:n_words]
    failures = []
    for split, k in clips_per_word.items():
        for i in tqdm(range(k * n_words), desc=f"synth vocab{n_words}/{split}", disable=not progress):
            _, err = _write_clip_safe((SPECS["synth-lrw"], split, i, seed, vocab, root, ()))
            if err:
                failures.append(err)
    for w in (root / "lipread_mp4").iterdir():
        for s in clips_per_word:
            (w / s).mkdir(exist_ok=True)
    (root / "VOCAB_CORPUS.json").write_text(json.dumps({"words": n_words, "clips_per_word": clips_per_word,
                                                        "seed": seed, "failures": failures}, indent=2))
    return root
