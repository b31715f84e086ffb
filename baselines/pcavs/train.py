"""Training PC-AVS (none was released: the official repository has inference code only; the losses
below are those visible in ``models/av_model.py``) on any dataset the suite reads.

Each step takes a batch of (clip, target frame t, identity frame r) triples. All images go through
the adapter's preprocessing (alignment from the clip's first frame, load-time crop, checkpoint size):
- identity: V on frame r -> (2048-d vector, 512x7x7 map);
- pose: E on the target frame *with its lower half masked in the protocol crop* (what the adapter feeds
  as the driving pose) -> ``to_headpose``;
- visual mouth: ``to_mouth`` of E on the full target frame; audio mouth: A_sync on t's 20-row mel window;
- generation from audio only (``--generate_from_audio_only``): G([vector | mouth_embed(audio) |
  headpose_embed(pose)], identity map).

Losses (weights from ``options/train_options.py`` where the official code has them):
- multi-scale PatchGAN hinge loss (2 scales, 4 layers, spectral + instance norm), ``lambda_D`` 1;
- discriminator feature matching L1, ``lambda_feat`` 10;
- L1 reconstruction of the target frame, weight ``l1_weight`` (10; not in the official losses, which
  rely on VGG - used here because VGG weights are not on disk);
- audio-visual mouth alignment: L1 between the detached visual mouth feature and the audio feature
  (``CrossModal``, ``lambda_crossmodal`` 1) and the softmax contrastive loss in both directions
  (``SoftmaxContrastive`` and ``SoftmaxContrastive_v2a``, ``lambda_contrastive`` 100): logits are the
  inverse L2 distance between L2-normalised features, and each direction trains one side against the
  other's detached features (``models/networks/loss.py``, ``compute_sync_loss`` in ``av_model.py``);
- not used: VGG19 / VGGFace perceptual losses (no weights here), identity classification (the
  synthetic corpus has no speaker labels shared across splits), the L2-softmax disentanglement term.
Optimiser as the official TTUR: Adam betas (0, 0.9), G lr/2 with amsgrad, D lr*2.

``sync_steps`` > 0 first trains E and A_sync alone on the two alignment losses (the official model's
``sync`` mode, ``AvModel.sync``: E's mouth feature of the target frame against A_sync's feature of its
audio window, no generator), with their own Adam (``sync_lr``); joint training then starts from them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from baselines.pcavs.align import CANVAS, TEMPLATE, clip_transforms, load_crop_affine, to_model_input
from baselines.pcavs.audio import frame_windows, melspectrogram
from baselines.pcavs.model import PCAVS, PCAVSConfig
from talkbench.datasets.clips import ClipsConfig
from talkbench.distributed import init_distributed, unwrap
from talkbench.errors import ConfigError, TalkbenchError


@dataclass(frozen=True)
class PCAVSTrainConfig(ClipsConfig):
    width: float = 0.125
    size: int = 112
    # the classifier heads (V.fc, E.classifier/mouth_fc/headpose_fc, A_sync.fc) are unused without speaker
    # labels; a small count keeps the shipped file small (the official 5830 is a VoxCeleb2 speaker count)
    num_classes: int = 8
    steps: int = 3000
    batch_size: int = 8
    lr: float = 1e-3  # official --lr; G gets lr/2, D lr*2 (TTUR)
    lambda_d: float = 1.0
    lambda_feat: float = 10.0
    l1_weight: float = 10.0
    lambda_crossmodal: float = 1.0
    contrastive_weight: float = 100.0  # official --lambda_contrastive
    sync_steps: int = 0  # E + A_sync alone on the alignment losses before joint training
    sync_lr: float = 1e-4  # 5e-4 collapsed the features on synth-lrs2 (docs/pcavs.md)
    # E's mouth feature sees the target aligned per frame (the official data's alignment: clip similarity +
    # per-frame smoothed mouth offset) where the dataset has exact landmarks; the generator keeps the
    # adapter's one transform (all inference can measure)
    sync_align: str = "per-frame"
    mouth_weight: float = 0.0  # > 0: + this x L1 on the template's mouth box (a deviation, on the card)
    ndf: int = 64
    eval_every: int = 250
    save_every: int = 100
    max_clips: int | None = None
    seed: int = 0
    amp: str = "bf16"  # CUDA only


class PCAVSClips:
    """Per clip, in memory: aligned model-size frames (full and pose-prior-masked, uint8), the mel, and the
    frames aligned per frame for E's mouth feature (or None: the full frames serve)."""

    def __init__(self, clips: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]) -> None:
        if not clips:
            raise ConfigError("no usable training clips (need at least 5 frames and a face on the first)")
        self.clips = clips

    @staticmethod
    def prepare(frames: np.ndarray, audio: np.ndarray, size: int, landmarks: np.ndarray,
                every_frame: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """``landmarks`` (68, 2) of the first frame give the adapter's one transform; ``every_frame``
        (T, 68, 2), when the dataset has them, give the per-frame frames for the mouth feature."""
        m = clip_transforms(landmarks[None])[0]
        masked = frames.copy()
        masked[:, frames.shape[1] // 2 :] = 0

        def aligned(fs: np.ndarray, ms: np.ndarray) -> np.ndarray:
            out = []
            for f, mt in zip(fs, ms):
                x = ((to_model_input(f, mt) + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
                out.append(x if size == CANVAS else cv2.resize(x, (size, size), interpolation=cv2.INTER_AREA))
            return np.stack(out)

        one = np.repeat(m[None], len(frames), 0)
        mouth = None
        if every_frame is not None:
            n = len(every_frame)
            mouth = aligned(frames[:n], clip_transforms(every_frame))
            mouth = np.concatenate([mouth, np.repeat(mouth[-1:], len(frames) - n, 0)]) if n < len(frames) else mouth
        return aligned(frames, one), aligned(masked, one), melspectrogram(audio), mouth

    @classmethod
    def from_dataset(cls, cfg: PCAVSTrainConfig, split: str, limit: int | None) -> PCAVSClips:
        from baselines.pcavs.adapter import reference_landmarks
        from talkbench.datasets.clips import protocol_clips, sidecar_landmarks

        clips = []
        for s, c in protocol_clips(cfg.dataset, cfg.root, split, limit, min_frames=5, desc="pcavs"):
            try:
                lm, _ = reference_landmarks(c.frames[0])
            except TalkbenchError as exc:
                tqdm.write(f"skip {s.sample_id}: {exc}")
                continue
            every = sidecar_landmarks(s, c) if cfg.sync_align == "per-frame" else None
            clips.append((s.sample_id, *cls.prepare(c.frames, c.audio, cfg.size, lm, every)))
        out = cls(clips)
        if cfg.sync_align == "per-frame" and out.per_frame < len(out):
            tqdm.write(f"{len(out) - out.per_frame} of {len(out)} {split} clips have no exact per-frame landmarks: "
                       "E's mouth feature sees them with the one-transform alignment")
        return out

    @property
    def per_frame(self) -> int:
        """How many clips carry per-frame-aligned frames for the mouth feature."""
        return sum(c[4] is not None for c in self.clips)

    def __len__(self) -> int:
        return len(self.clips)


def _img(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def mouth_box(size: int) -> tuple[slice, slice]:
    """Rows and columns of the template mouth's neighbourhood in the model crop: the inner-mouth point
    (112, 120) of the 224 canvas through the loader's crop, +-0.2 (x) and +-0.14 (y) of the crop around it
    (the mouth is ~0.2 of the crop wide; the margin leaves room for the head motion a one-transform clip keeps)."""
    x, y = load_crop_affine() @ np.array([*TEMPLATE[2], 1.0]) / CANVAS * size
    dx, dy = 0.2 * size, 0.14 * size
    return slice(max(int(y - dy), 0), min(int(np.ceil(y + dy)), size)), slice(max(int(x - dx), 0), min(int(np.ceil(x + dx)), size))


def make_batch(clips: PCAVSClips, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """n triples from n different clips when possible (the contrastive loss treats other rows as negatives)."""
    idx = rng.choice(len(clips), n, replace=len(clips) < n)
    ref, tgt, pose, win, mouth = [], [], [], [], []
    for i in idx:
        _, full, masked, mel, per_frame = clips.clips[int(i)]
        t, r = (int(v) for v in rng.integers(len(full), size=2))
        ref.append(full[r])
        tgt.append(full[t])
        pose.append(masked[t])
        win.append(frame_windows(mel, t + 1)[t])
        mouth.append(full[t] if per_frame is None else per_frame[t])
    return {"ref": _img(np.stack(ref)), "target": _img(np.stack(tgt)), "pose": _img(np.stack(pose)),
            "spec": torch.from_numpy(np.stack(win)), "mouth": _img(np.stack(mouth))}


class NLayerDiscriminator(nn.Module):
    """pix2pixHD/SPADE PatchGAN: 4x4 convs, spectral norm + instance norm, LeakyReLU 0.2; every
    layer's output is returned for feature matching."""

    def __init__(self, ndf: int = 64, n_layers: int = 4, cin: int = 3) -> None:
        super().__init__()
        sn = nn.utils.spectral_norm
        layers = [nn.Sequential(nn.Conv2d(cin, ndf, 4, 2, 2), nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, n_layers):
            prev, nf = nf, min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            layers.append(nn.Sequential(sn(nn.Conv2d(prev, nf, 4, stride, 2, bias=False)), nn.InstanceNorm2d(nf),
                                        nn.LeakyReLU(0.2)))
        layers.append(nn.Sequential(nn.Conv2d(nf, 1, 4, 1, 2)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiscaleDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, num_d: int = 2) -> None:
        super().__init__()
        self.ds = nn.ModuleList(NLayerDiscriminator(ndf) for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.ds):
            out.append(d(x))
            if i + 1 < len(self.ds):
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        return out


def hinge_d(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    return sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake)) / len(real)


def hinge_g(fake: list[list[torch.Tensor]]) -> torch.Tensor:
    return sum(-f[-1].mean() for f in fake) / len(fake)


def feature_matching(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    return sum(F.l1_loss(f, r.detach()) for rs, fs in zip(real, fake) for r, f in zip(rs[:-1], fs[:-1])) / len(real)


def inverse_distance_logits(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``1 / ||rows_i - cols_j||`` between L2-normalised features: the official SoftmaxContrastiveLoss's
    logits (no temperature; the distance is floored at 1e-6, where the official code would divide by 0)."""
    d = torch.cdist(F.normalize(rows, dim=1), F.normalize(cols, dim=1))
    return 1.0 / d.clamp_min(1e-6)


def contrastive(v: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The official pair of softmax contrastive terms, summed: audio against the detached visual
    features (rows = frames, classes = audio windows) and visual against the detached audio; and the
    audio->visual top-1 accuracy within the batch."""
    target = torch.arange(len(a), device=a.device)
    a2v = F.cross_entropy(inverse_distance_logits(v.detach(), a), target)
    v2a = F.cross_entropy(inverse_distance_logits(a.detach(), v), target)
    with torch.no_grad():
        acc = float((inverse_distance_logits(a, v).argmax(1) == target).float().mean())
    return a2v + v2a, acc


class PCAVSTrainer:
    def __init__(self, cfg: PCAVSTrainConfig, out: str | Path, device: str = "cpu",
                 train: PCAVSClips | None = None, val: PCAVSClips | None = None) -> None:
        self.rank, self.world = init_distributed()
        if self.world > 1:
            raise ConfigError("talkbench train pcavs runs on one process (no DDP yet)")
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.train, self.val = train, val
        self.model = PCAVS(PCAVSConfig(width=cfg.width, size=cfg.size, num_classes=cfg.num_classes)).to(device)
        self.disc = MultiscaleDiscriminator(max(8, int(cfg.ndf * cfg.width))).to(device)
        m = self.model
        g_params = [p for n, p in m.named_parameters() if not n.startswith("G.style.")]  # mapping MLP unused
        self.opt_g = torch.optim.Adam(g_params, lr=cfg.lr / 2, betas=(0.0, 0.9), amsgrad=True)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr * 2, betas=(0.0, 0.9))
        self.opt_sync = torch.optim.Adam([*m.E.parameters(), *m.A_sync.parameters()], lr=cfg.sync_lr)
        self.step = 0
        self.sync_step = 0
        self.commands: list[str] = []
        self.noise = torch.Generator(device=device).manual_seed(cfg.seed)

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        tmp = self.out / ".state.pt.tmp"
        torch.save({"model": self.model.state_dict(), "disc": self.disc.state_dict(), "opt_g": self.opt_g.state_dict(),
                    "opt_d": self.opt_d.state_dict(), "opt_sync": self.opt_sync.state_dict(), "step": self.step,
                    "sync_step": self.sync_step, "rng": self.rng.bit_generator.state,
                    "noise": self.noise.get_state()}, tmp)
        tmp.replace(self.out / "state.pt")
        (self.out / "state.json").write_text(json.dumps({"step": self.step, "sync_step": self.sync_step,
                                                         "config": asdict(self.cfg),
                                                         "commands": self.commands}, indent=1))

    def resume(self) -> bool:
        path = self.out / "state.pt"
        if not path.exists():
            return False
        saved = json.loads((self.out / "state.json").read_text())
        # what the card records as one setting must be one setting for the whole run
        for k in ("width", "size", "num_classes", "dataset", "sync_align", "mouth_weight"):
            before = saved["config"].get(k, {"sync_align": "first-frame", "mouth_weight": 0.0}.get(k))  # older runs
            if before != getattr(self.cfg, k):
                raise ConfigError(f"{self.out}: the run was trained with {k}={before!r}, "
                                  f"not {getattr(self.cfg, k)!r}")
        s = torch.load(path, map_location=self.device, weights_only=False)  # our own file: holds RNG state
        self.model.load_state_dict(s["model"])
        self.disc.load_state_dict(s["disc"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_d.load_state_dict(s["opt_d"])
        if "opt_sync" in s:
            self.opt_sync.load_state_dict(s["opt_sync"])
        self.step = int(s["step"])
        self.sync_step = int(s.get("sync_step", 0))
        self.rng.bit_generator.state = s["rng"]
        self.noise.set_state(s["noise"])
        self.commands = list(saved.get("commands", [])) + self.commands
        return True

    def _log(self, row: dict) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def _autocast(self):
        if self.device.startswith("cuda") and self.cfg.amp == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    # ------------------------------------------------------------------ one step
    def forward(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        m = self.model
        with self._autocast():
            idvec, idmap, _ = m.V(b["ref"])
            headpose = m.E.to_headpose(m.E(b["pose"]))
            v_mouth = m.E.to_mouth(m.E(b["mouth"]))
            a_mouth = m.A_sync(b["spec"])
            style = torch.cat([idvec, m.E.merge(a_mouth, headpose)], 1)
            fake = m.G(style, idmap, m.G.draw_noise(len(style), self.noise, self.device))
        return {"fake": fake.float(), "v_mouth": v_mouth.float(), "a_mouth": a_mouth.float()}

    def train_step(self, batch: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        cfg = self.cfg
        self.model.train()
        b = {k: v.to(self.device) for k, v in (batch or make_batch(self.train, cfg.batch_size, self.rng)).items()}
        out = self.forward(b)
        fake, real = out["fake"], b["target"]
        d_fake, d_real = self.disc(fake), self.disc(real)
        gan = hinge_g(d_fake)
        feat = feature_matching(d_real, d_fake)
        l1 = F.l1_loss(fake, real)
        cross = F.l1_loss(out["a_mouth"], out["v_mouth"].detach())
        con, acc = contrastive(out["v_mouth"], out["a_mouth"])
        loss = (cfg.lambda_d * gan + cfg.lambda_feat * feat + cfg.l1_weight * l1 + cfg.lambda_crossmodal * cross
                + cfg.contrastive_weight * con)
        extra = {}
        if cfg.mouth_weight > 0:
            rows, cols = mouth_box(fake.shape[-1])
            mouth = F.l1_loss(fake[..., rows, cols], real[..., rows, cols])
            loss = loss + cfg.mouth_weight * mouth
            extra["mouth"] = mouth
        self.opt_g.zero_grad()
        loss.backward()
        self.opt_g.step()
        # the real images' graph is intact (feature matching used them detached): one D pass on real per step
        d_loss = hinge_d(d_real, self.disc(fake.detach()))
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        vals = {"gan": gan, "feat": feat, "l1": l1, "crossmodal": cross, "contrastive": con, "d": d_loss, **extra}
        return {**{k: float(v.detach()) for k, v in vals.items()}, "sync_acc": acc}

    def sync_train_step(self, batch: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        """One step of E and A_sync alone on the cross-modal L1 and the contrastive pair."""
        cfg, m = self.cfg, self.model
        m.train()
        b = batch or make_batch(self.train, cfg.batch_size, self.rng)
        with self._autocast():
            v = m.E.to_mouth(m.E(b["mouth"].to(self.device))).float()
            a = m.A_sync(b["spec"].to(self.device)).float()
        cross = F.l1_loss(a, v.detach())
        con, acc = contrastive(v, a)
        self.opt_sync.zero_grad()
        (cfg.lambda_crossmodal * cross + cfg.contrastive_weight * con).backward()
        self.opt_sync.step()
        return {"crossmodal": float(cross.detach()), "contrastive": float(con.detach()), "sync_acc": acc}

    @torch.no_grad()
    def evaluate(self, batches: int = 4, generate: bool = True) -> dict[str, float]:
        """Held-out audio->visual mouth-feature top-1 accuracy within a batch, and with ``generate`` the
        held-out L1 (the sync stage skips it: it does not train the generator)."""
        m = self.model
        m.eval()
        rng = np.random.default_rng(1234)
        gen = torch.Generator(device=self.device).manual_seed(0)
        l1s, accs = [], []
        for _ in range(batches):
            b = {k: v.to(self.device) for k, v in make_batch(self.val or self.train, self.cfg.batch_size, rng).items()}
            if generate:
                noise, self.noise = self.noise, gen
                out = self.forward(b)
                self.noise = noise
                l1s.append(float(F.l1_loss(out["fake"], b["target"])))
            else:
                with self._autocast():
                    out = {"v_mouth": m.E.to_mouth(m.E(b["mouth"])).float(), "a_mouth": m.A_sync(b["spec"]).float()}
            accs.append(contrastive(out["v_mouth"], out["a_mouth"])[1])
        return {**({"val_l1": float(np.mean(l1s))} if generate else {}), "val_sync_acc": float(np.mean(accs))}

    def fit(self, progress: bool = True, deadline: float | None = None) -> dict[str, float]:
        """The sync stage to ``cfg.sync_steps``, then joint training to ``cfg.steps`` (or until
        ``deadline``, a ``time.time()``), saving state to resume."""
        t0, sync_start, start = time.perf_counter(), self.sync_step, self.step
        last = self._stage("sync_step", self.cfg.sync_steps, self.sync_train_step, "pcavs sync",
                           ("contrastive", "sync_acc", "val_sync_acc"), deadline, progress)
        t1 = time.perf_counter()
        if deadline is None or time.time() <= deadline:
            last = self._stage("step", self.cfg.steps, self.train_step, "pcavs", ("l1", "contrastive", "sync_acc"),
                               deadline, progress)
        t2 = time.perf_counter()
        last["seconds"] = round(t2 - t0, 1)
        # Each stage's speed over its own time (joint steps over the whole time understated it).
        last["steps_per_s"] = round((self.step - start) / max(1e-9, t2 - t1), 3)
        if self.sync_step > sync_start:
            last["sync_steps_per_s"] = round((self.sync_step - sync_start) / max(1e-9, t1 - t0), 3)
        return last

    def _stage(self, counter: str, total: int, step: Callable[[], dict[str, float]], desc: str,
               shown: tuple[str, ...], deadline: float | None, progress: bool) -> dict[str, float]:
        """Run ``step`` until ``self.<counter>`` reaches ``total``: evaluate, save and log on the
        config's schedule; stop early (saved) at ``deadline``. Returns the last row."""
        cfg, sync = self.cfg, counter == "sync_step"
        last: dict[str, float] = {}
        bar = tqdm(total=total, initial=getattr(self, counter), desc=desc, unit="step", disable=not progress)
        while getattr(self, counter) < total:
            row = step()
            n = getattr(self, counter) + 1
            setattr(self, counter, n)
            if n % cfg.eval_every == 0 or n == total:
                row.update(self.evaluate(generate=not sync))
            if n % cfg.save_every == 0 or n == total:
                self.save()
            self._log({"stage": "sync", "sync_step": n, **row} if sync else {"step": n, **row})
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in shown})
            bar.update(1)
            last = row
            if deadline is not None and time.time() > deadline:
                self.save()
                break
        bar.close()
        return last


def weights_state_dict(model: PCAVS) -> dict[str, torch.Tensor]:
    from baselines.pcavs.checkpoint import state_dict_for_export

    return state_dict_for_export(unwrap(model))

