"""Training Wav2Lip with the official recipe (Rudrabha/Wav2Lip ``color_syncnet_train.py``,
``wav2lip_train.py``, ``hq_wav2lip_train.py``; facts in ``docs/wav2lip.md``), on any dataset the suite
reads.

1. ``expert``: the lip-sync expert (SyncNetColor) on 5-frame windows of the lower half of 96x96 BGR
   faces against 16 mel steps; half the pairs positive, half with the video window taken at another
   start of the same clip; BCE on the cosine similarity.
2. ``generator``: Wav2Lip on 5-frame windows, input = [target with its lower half zeroed | a window
   from another start of the same clip]; ``(1 - sw) * L1 + sw * sync`` where the sync loss is the frozen
   expert's BCE on the generated lower halves and ``sw`` stays 0 until the generated validation
   windows' sync loss drops below 0.75, then 0.01. ``--gan``: the visual quality discriminator joins
   with weight 0.07 (``sw`` 0.03 once on) and the L1 weight is ``1 - sw - 0.07``, Adam betas (0.5, 0.999).

Deviation, on purpose: mel windows start at ``int(80 * i / 25)`` for frame ``i``, as at inference
(``inference.py``); the official training loader starts them one frame earlier. Training and our adapter
therefore agree. Checkpoints use the official dict layout (``state_dict``, ``optimizer``,
``global_step``, ``global_epoch``), so :func:`baselines.wav2lip.checkpoint.load_wav2lip` reads them.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from baselines.wav2lip.model import QualityDiscriminator, SyncNetColor, Wav2Lip
from baselines.wav2lip.preprocess import MEL_STEP, to_faces
from talkbench.datasets.clips import ClipsConfig, spaced_starts
from talkbench.distributed import init_distributed, unwrap, wrap_ddp
from talkbench.errors import ConfigError
from talkbench.io.audio import wav2lip_mel

T = 5  # syncnet_T
SIZE = 96
SYNC_THRESHOLD = 0.75


@dataclass(frozen=True)
class Wav2LipTrainConfig(ClipsConfig):
    width: float = 0.25
    expert_steps: int = 1500
    generator_steps: int = 1500
    batch_size: int = 16
    expert_batch_size: int = 32
    lr: float = 1e-4
    expert_lr: float = 1e-4
    gan: bool = False
    sync_weight: float | None = None  # None: official 0.01, 0.03 with --gan (hq_wav2lip_train.py)
    # The sync term switches on when the expert's BCE on generated validation windows drops below this
    # (official 0.75). A higher value switches it on at the first evaluation (a deviation: on the synthetic
    # corpus L1 alone did not make the generator use the audio within a CPU budget).
    sync_threshold: float = SYNC_THRESHOLD
    disc_weight: float = 0.07
    eval_every: int = 250
    eval_batches: int = 4
    max_clips: int | None = None
    seed: int = 0
    amp: str = "bf16"  # CUDA only
    # Region of the protocol crop that becomes Wav2Lip's 96-px face (x0, y0, x1, y1 fractions; None: the
    # whole crop). A face-detector-like box puts the mouth inside the lower half, as in the official
    # crops; the adapter reads it from the card and pastes the output back into it.
    face_box: tuple[float, float, float, float] | None = None
    # "bce": the official pair loss. "multiway": each audio window against the video windows of a batch
    # of (batch / windows) clips x ``expert_windows`` spaced windows, cross-entropy on cosine / tau, in
    # both directions (as the SyncNet critic is trained); a pretraining aid, validation stays BCE.
    expert_loss: str = "bce"
    expert_windows: int = 4
    expert_tau: float = 0.1


class Wav2LipClips:
    """Square BGR faces (96 px for Wav2Lip; SyncTalkFace shares this loader at 128) and the Wav2Lip mel of each clip, held in memory."""

    def __init__(self, clips: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
        if not clips:
            raise ConfigError("no usable training clips (need at least 10 frames each)")
        self.clips = clips

    @classmethod
    def from_dataset(cls, cfg: ClipsConfig, split: str, limit: int | None, size: int = SIZE) -> Wav2LipClips:
        """``cfg.face_box`` (if the config has one) of each protocol crop at ``size`` px (SyncTalkFace: 128)."""
        from talkbench.datasets.clips import protocol_clips

        clips = []
        for s, c in protocol_clips(cfg.dataset, cfg.root, split, limit, min_frames=2 * T):
            clips.append((s.sample_id, to_faces(c.frames, getattr(cfg, "face_box", None), size), wav2lip_mel(c.audio)))
        return cls(clips)

    def __len__(self) -> int:
        return len(self.clips)


def _mel_at(mel: np.ndarray, frame: int) -> np.ndarray:
    start = int(80.0 * frame / 25.0)
    return mel[:, start : start + MEL_STEP]


def _valid_starts(faces: np.ndarray, mel: np.ndarray) -> int:
    """Number of window starts whose 5 frames and every per-frame mel window lie inside the clip."""
    n = len(faces) - T + 1
    while n > 0 and int(80.0 * (n - 1 + T - 1) / 25.0) + MEL_STEP > mel.shape[1]:
        n -= 1
    return n


def _pick(clips: Wav2LipClips, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, int]:
    """A clip, a window start and a different ("wrong") start in the same clip."""
    while True:
        _, faces, mel = clips.clips[int(rng.integers(len(clips)))]
        n = _valid_starts(faces, mel)
        if n >= 2:
            k = int(rng.integers(n))
            wrong = int(rng.integers(n - 1))
            return faces, mel, k, wrong + (wrong >= k)


def _window(faces: np.ndarray, k: int) -> np.ndarray:
    """(3, T, 96, 96) float in [0, 1] (BGR)."""
    return faces[k : k + T].transpose(3, 0, 1, 2).astype(np.float32) / 255.0


def lower_halves(window: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, S, S) -> (B, 3*T, S/2, S): the expert's input (frames stacked on channels); S = 96 for
    Wav2Lip, 128 for SyncTalkFace's expert."""
    lower = window[:, :, :, window.shape[3] // 2 :]
    return torch.cat([lower[:, :, i] for i in range(lower.shape[2])], dim=1)


def expert_batch(clips: Wav2LipClips, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    faces_b, mels, ys = [], [], []
    for _ in range(n):
        faces, mel, k, wrong = _pick(clips, rng)
        positive = bool(rng.random() < 0.5)
        faces_b.append(_window(faces, k if positive else wrong))
        mels.append(_mel_at(mel, k))
        ys.append(float(positive))
    face = lower_halves(torch.from_numpy(np.stack(faces_b)))
    return {"face": face, "mel": torch.from_numpy(np.stack(mels))[:, None], "y": torch.tensor(ys)}


def multiway_batch(clips: Wav2LipClips, n: int, windows: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """``n // windows`` clips x ``windows`` windows at least T frames apart; row i's audio matches row i's video."""
    faces_b, mels = [], []
    for c in rng.choice(len(clips), max(2, n // windows), replace=len(clips) < max(2, n // windows)):
        _, faces, mel = clips.clips[int(c)]
        for k in spaced_starts(_valid_starts(faces, mel), windows, T, rng):
            faces_b.append(_window(faces, k))
            mels.append(_mel_at(mel, k))
    return {"face": lower_halves(torch.from_numpy(np.stack(faces_b))),
            "mel": torch.from_numpy(np.stack(mels))[:, None]}


def multiway_loss(a: torch.Tensor, v: torch.Tensor, tau: float) -> torch.Tensor:
    logits = F.normalize(v, dim=1) @ F.normalize(a, dim=1).T / tau
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def generator_batch(clips: Wav2LipClips, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    x, indiv, mels, gt = [], [], [], []
    for _ in range(n):
        faces, mel, k, wrong = _pick(clips, rng)
        window = _window(faces, k)
        masked = window.copy()
        masked[:, :, SIZE // 2 :] = 0.0
        x.append(np.concatenate([masked, _window(faces, wrong)], axis=0))
        indiv.append(np.stack([_mel_at(mel, k + i) for i in range(T)])[:, None])
        mels.append(_mel_at(mel, k)[None])
        gt.append(window)
    return {"x": torch.from_numpy(np.stack(x)), "indiv_mels": torch.from_numpy(np.stack(indiv)),
            "mel": torch.from_numpy(np.stack(mels)), "gt": torch.from_numpy(np.stack(gt))}


def cosine_loss(a: torch.Tensor, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """BCE on the cosine similarity of L2-normalised embeddings (``color_syncnet_train.cosine_loss``)."""
    d = F.cosine_similarity(a, v).clamp(1e-7, 1 - 1e-7)
    return F.binary_cross_entropy(d, y)


class ExpertTraining:
    """The lip-sync expert's training step and evaluation, and the device/precision helpers, shared by
    the Wav2Lip and SyncTalkFace trainers (same losses, batches and evaluation; the experts differ only
    in their face size). A trainer provides ``cfg``, ``device``, ``expert``, ``opt_e``, ``train``,
    ``val`` and ``rng``."""

    def _autocast(self):
        if self.device.startswith("cuda") and self.cfg.amp in ("bf16", "fp16"):
            return torch.autocast("cuda", dtype=torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16)
        return torch.autocast("cpu", enabled=False)

    def _to(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in b.items()}

    # ------------------------------------------------------------------ expert
    def expert_step(self, batch: dict[str, torch.Tensor] | None = None) -> float:
        self.expert.train()
        self.expert.requires_grad_(True)
        cfg = self.cfg
        if batch is None:
            batch = (multiway_batch(self.train, cfg.expert_batch_size, cfg.expert_windows, self.rng)
                     if cfg.expert_loss == "multiway" else expert_batch(self.train, cfg.expert_batch_size, self.rng))
        b = self._to(batch)
        with self._autocast():
            a, v = self.expert(b["mel"], b["face"])
        if "y" in b:
            loss = cosine_loss(a.float(), v.float(), b["y"])
        else:
            loss = multiway_loss(a.float(), v.float(), cfg.expert_tau)
        self.opt_e.zero_grad()
        loss.backward()
        self.opt_e.step()
        return float(loss.detach())

    @torch.no_grad()
    def expert_eval(self) -> float:
        self.expert.eval()
        rng = np.random.default_rng(1234)
        losses = []
        for _ in range(self.cfg.eval_batches):
            b = self._to(expert_batch(self.val or self.train, self.cfg.expert_batch_size, rng))
            a, v = self.expert(b["mel"], b["face"])
            losses.append(float(cosine_loss(a.float(), v.float(), b["y"])))
        return float(np.mean(losses))


class Wav2LipTrainer(ExpertTraining):
    def __init__(self, cfg: Wav2LipTrainConfig, out: str | Path, device: str = "cpu",
                 train: Wav2LipClips | None = None, val: Wav2LipClips | None = None) -> None:
        self.rank, self.world = init_distributed()
        if self.world > 1 and device == "cuda":  # torchrun: one GPU per process
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed + self.rank)
        self.rng = np.random.default_rng(cfg.seed + self.rank)
        if cfg.expert_loss not in ("bce", "multiway"):
            raise ConfigError(f"expert_loss must be 'bce' or 'multiway', not {cfg.expert_loss!r}")
        self.train, self.val = train, val
        self.expert = wrap_ddp(SyncNetColor(cfg.width).to(device), device)
        self.gen = wrap_ddp(Wav2Lip(cfg.width).to(device), device)
        self.disc = wrap_ddp(QualityDiscriminator(cfg.width).to(device), device)
        self.opt_e = torch.optim.Adam(self.expert.parameters(), lr=cfg.expert_lr)
        betas = (0.5, 0.999) if cfg.gan else (0.9, 0.999)
        self.opt_g = torch.optim.Adam(self.gen.parameters(), lr=cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.step = {"expert": 0, "generator": 0}
        self.sync_wt = 0.0
        self.history: list[dict] = []
        self.commands: list[str] = []  # every invocation that trained this run, kept across resumes

    # ------------------------------------------------------------------ checkpoints (official layout)
    def _ckpt(self, name: str) -> Path:
        return self.out / f"{name}.pth"

    def save(self) -> None:
        if self.rank != 0:
            return
        for name, model, opt, stage in (("expert", self.expert, self.opt_e, "expert"),
                                        ("generator", self.gen, self.opt_g, "generator"),
                                        ("disc", self.disc, self.opt_d, "generator")):
            tmp = self.out / f".{name}.pth.tmp"
            torch.save({"state_dict": unwrap(model).state_dict(), "optimizer": opt.state_dict(),
                        "global_step": self.step[stage], "global_epoch": 0}, tmp)
            tmp.replace(self._ckpt(name))
        (self.out / "state.json").write_text(json.dumps({"step": self.step, "sync_wt": self.sync_wt,
                                                         "config": asdict(self.cfg), "commands": self.commands}))

    def resume(self) -> bool:
        state = self.out / "state.json"
        if not state.exists():
            return False
        for name, model, opt in (("expert", self.expert, self.opt_e), ("generator", self.gen, self.opt_g),
                                 ("disc", self.disc, self.opt_d)):
            ck = torch.load(self._ckpt(name), map_location=self.device, weights_only=True)
            unwrap(model).load_state_dict(ck["state_dict"])
            opt.load_state_dict(ck["optimizer"])
        s = json.loads(state.read_text())
        saved_box = s.get("config", {}).get("face_box")
        if (tuple(saved_box) if saved_box else None) != (tuple(self.cfg.face_box) if self.cfg.face_box else None):
            raise ConfigError(f"{state}: the run was trained with face box {saved_box}, not {self.cfg.face_box}")
        self.step, self.sync_wt = dict(s["step"]), float(s["sync_wt"])
        self.commands = list(s.get("commands", [])) + self.commands
        return True

    def _log(self, **row: float | str) -> None:
        self.history.append(row)
        if self.rank == 0:
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    # ------------------------------------------------------------------ generator
    def sync_loss(self, mel: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        # The frozen expert runs unwrapped: under DDP a wrapped module whose parameters get no
        # gradient would stall the reducer.
        a, v = unwrap(self.expert)(mel, lower_halves(g))
        return cosine_loss(a.float(), v.float(), torch.ones(len(a), device=a.device))

    def generator_step(self, batch: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        cfg = self.cfg
        self.gen.train()
        self.expert.eval()
        self.expert.requires_grad_(False)  # frozen: gradients flow through it to the generator only
        b = self._to(batch or generator_batch(self.train, cfg.batch_size, self.rng))
        with self._autocast():
            g = self.gen(b["indiv_mels"], b["x"]).float()
        l1 = F.l1_loss(g, b["gt"])
        sync = self.sync_loss(b["mel"], g) if self.sync_wt > 0 else g.new_zeros(())
        row = {"l1": float(l1.detach()), "sync": float(sync.detach())}
        if cfg.gan:
            frames = lambda x: x.permute(0, 2, 1, 3, 4).flatten(0, 1)  # noqa: E731
            fool = F.binary_cross_entropy(self.disc(frames(g)), torch.ones(len(frames(g)), 1, device=g.device))
            loss = self.sync_wt * sync + cfg.disc_weight * fool + (1 - self.sync_wt - cfg.disc_weight) * l1
            row["perceptual"] = float(fool.detach())
        else:
            loss = self.sync_wt * sync + (1 - self.sync_wt) * l1
        self.opt_g.zero_grad()
        loss.backward()
        self.opt_g.step()
        if cfg.gan:
            # One forward over real and fake (the discriminator has no batch norm, so this equals the
            # official two calls) keeps DDP at one forward per backward.
            real, fake = self.disc(torch.cat([frames(b["gt"]), frames(g.detach())])).chunk(2)
            d_loss = (F.binary_cross_entropy(real, torch.ones_like(real)) +
                      F.binary_cross_entropy(fake, torch.zeros_like(fake)))
            self.opt_d.zero_grad()
            d_loss.backward()
            self.opt_d.step()
            row["disc"] = float(d_loss.detach())
        return row

    @torch.no_grad()
    def generator_eval(self) -> dict[str, float]:
        """Mean L1 and expert sync loss of generated validation windows (``eval_model``)."""
        self.gen.eval()
        self.expert.eval()
        rng = np.random.default_rng(4321)
        l1s, syncs = [], []
        for _ in range(self.cfg.eval_batches):
            b = self._to(generator_batch(self.val or self.train, self.cfg.batch_size, rng))
            g = self.gen(b["indiv_mels"], b["x"]).float()
            l1s.append(float(F.l1_loss(g, b["gt"])))
            syncs.append(float(self.sync_loss(b["mel"], g)))
        return {"val_l1": float(np.mean(l1s)), "val_sync": float(np.mean(syncs))}

    def maybe_switch_sync(self, val_sync: float) -> None:
        if self.sync_wt == 0.0 and val_sync < self.cfg.sync_threshold:
            official = 0.03 if self.cfg.gan else 0.01
            self.sync_wt = official if self.cfg.sync_weight is None else self.cfg.sync_weight

    # ------------------------------------------------------------------ loop
    def fit(self, stages: tuple[str, ...] = ("expert", "generator"), progress: bool = True) -> dict[str, float]:
        cfg = self.cfg
        budget = {"expert": cfg.expert_steps, "generator": cfg.generator_steps}
        last: dict[str, float] = {}
        t0 = time.perf_counter()
        for stage in stages:
            bar = tqdm(total=budget[stage], initial=self.step[stage], desc=f"wav2lip {stage}", unit="step",
                       disable=not progress or self.rank != 0)
            while self.step[stage] < budget[stage]:
                if stage == "expert":
                    row = {"loss": self.expert_step()}
                else:
                    row = self.generator_step()
                self.step[stage] += 1
                if self.step[stage] % cfg.eval_every == 0 or self.step[stage] == budget[stage]:
                    if stage == "expert":
                        row["val_loss"] = self.expert_eval()
                    else:
                        row.update(self.generator_eval())
                        self.maybe_switch_sync(row["val_sync"])
                    self.save()
                self._log(stage=stage, step=self.step[stage], sync_wt=self.sync_wt, **row)
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()})
                bar.update(1)
                last |= {f"{stage}_{k}": v for k, v in row.items()}
            bar.close()
            self.save()
        last["seconds"] = round(time.perf_counter() - t0, 1)
        last["sync_wt"] = self.sync_wt
        return last

