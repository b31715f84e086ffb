"""Training SyncTalkFace with the authors' recipe (``train.py`` and ``hparams.py`` of
jinny960812/SyncTalkFace commit 9d5d08db; facts in ``docs/synctalkface.md``), on any dataset the suite reads.

1. ``expert``: the 128-px expert (:class:`SyncNet128`) on 5-frame windows of the lower half of 128x128
   BGR faces in [0, 1], with Wav2Lip's expert batches and losses (shared from
   :mod:`baselines.wav2lip.train`: BCE on the cosine, or the multi-way pretraining aid).
2. ``generator``: per sample a 5-frame window; input [target with its lower half zeroed | a window from
   another start] in [-1, 1]; per frame a mel window and a lip window (the 5 ground-truth frames around
   it with the upper half zeroed) for the lip encoder. Both decoder paths (memory recalled by the audio
   key address, ``te``, and by the lip value address, ``tr``) are generated and
   ``10 * L1 + 0.2 * av + 0.2 * vv + 0.2 * (KL(value || key address) + MSE value reconstruction)``,
   summed over both paths, where ``av`` is the frozen expert's BCE on the generated lower halves and
   ``vv`` the L1 between the lip encoder's embedding of the ground-truth window and a frozen copy's
   embedding of the generated one. Adam 1e-4, betas (0.5, 0.999).
3. ``gan``: as 2 plus ``0.2 * disc`` (the quality discriminator fooled on both paths), the
   discriminator trained with BCE real/fake at lr 5e-4. The authors train 2 and 3 together from the
   start; the split lets the CPU preset spend its first steps without the GAN.

Deviation, as in our Wav2Lip trainer: mel windows start at ``int(80 * i / 25)`` for frame ``i`` (the
authors' loader starts the per-frame windows one frame earlier); lip windows at a clip's ends repeat the
edge frame (the authors skip those starts). Checkpoints use the authors' layouts: ``generator.ckpt``
= ``{"model_state_dict", "dec_state_dict", "disc_state_dict"}``, ``expert.pth`` = ``{"state_dict", ...}``.
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
from torch.func import functional_call
from tqdm import tqdm

from baselines.synctalkface.model import (
    QualityDiscriminator128,
    SyncNet128,
    SyncTalkFaceDecoder,
    SyncTalkFaceGenerator,
    T,
)
from baselines.wav2lip.train import (
    ExpertTraining,
    Wav2LipClips,
    _mel_at,
    _pick,
    _window,
    cosine_loss,
    lower_halves,
)
from talkbench.datasets.clips import ClipsConfig
from talkbench.distributed import init_distributed, unwrap, wrap_ddp
from talkbench.errors import CheckpointError, ConfigError

STAGES = ("expert", "generator", "gan")


@dataclass(frozen=True)
class SyncTalkFaceTrainConfig(ClipsConfig):
    width: float = 0.125
    expert_steps: int = 1500
    generator_steps: int = 1500
    gan_steps: int = 0
    batch_size: int = 8  # authors: 40
    expert_batch_size: int = 32  # authors: 256
    lr: float = 1e-4
    disc_lr: float = 5e-4
    expert_lr: float = 1e-4
    l1_wt: float = 10.0
    av_wt: float = 0.2
    vv_wt: float = 0.2
    disc_wt: float = 0.2
    mem_wt: float = 0.2
    expert_loss: str = "bce"  # or "multiway" (the pretraining aid of our Wav2Lip trainer)
    expert_windows: int = 4
    expert_tau: float = 0.1
    face_box: tuple[float, float, float, float] | None = None
    eval_every: int = 250
    eval_batches: int = 4
    max_clips: int | None = None
    seed: int = 0
    amp: str = "bf16"  # CUDA only


def to_signed(x: np.ndarray) -> np.ndarray:
    """[0, 1] -> [-1, 1] (the authors' ``x / 127.5 - 1``)."""
    return x * 2.0 - 1.0


def lip_windows(faces: np.ndarray, k: int) -> np.ndarray:
    """(T, 3, T, S, S) in [-1, 1]: for each frame k+j of the window, the 5 frames centred on it with the
    upper half zeroed (edge frames repeated at a clip's ends)."""
    idx = np.clip(np.arange(k - 2, k + T + 2), 0, len(faces) - 1)
    frames = to_signed(faces[idx].transpose(3, 0, 1, 2).astype(np.float32) / 255.0)  # (3, T+4, S, S)
    frames[:, :, : frames.shape[2] // 2] = 0.0
    return np.stack([frames[:, j : j + T] for j in range(T)])


def generator_batch(clips: Wav2LipClips, n: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """x (B, 6, T, S, S), indiv_mels (B, T, 1, 80, 16), mel (B, 1, 80, 16), gt (B, 3, T, S, S),
    lip (B, T, 3, T, S, S); images in [-1, 1] BGR, the target's lower half 0."""
    x, indiv, mels, gt, lips = [], [], [], [], []
    for _ in range(n):
        faces, mel, k, wrong = _pick(clips, rng)
        window = to_signed(_window(faces, k))
        masked = window.copy()
        masked[:, :, masked.shape[2] // 2 :] = 0.0
        x.append(np.concatenate([masked, to_signed(_window(faces, wrong))], axis=0))
        indiv.append(np.stack([_mel_at(mel, k + i) for i in range(T)])[:, None])
        mels.append(_mel_at(mel, k)[None])
        gt.append(window)
        lips.append(lip_windows(faces, k))
    return {"x": torch.from_numpy(np.stack(x)), "indiv_mels": torch.from_numpy(np.stack(indiv)),
            "mel": torch.from_numpy(np.stack(mels)), "gt": torch.from_numpy(np.stack(gt)),
            "lip": torch.from_numpy(np.stack(lips))}


def frames_of(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W), batch-major."""
    return x.permute(0, 2, 1, 3, 4).flatten(0, 1)


def windows_of(x: torch.Tensor, b: int) -> torch.Tensor:
    """(B*T, C, H, W) -> (B, C, T, H, W)."""
    return x.view(b, -1, *x.shape[1:]).permute(0, 2, 1, 3, 4)


class SyncTalkFaceTrainer(ExpertTraining):
    def __init__(self, cfg: SyncTalkFaceTrainConfig, out: str | Path, device: str = "cpu",
                 train: Wav2LipClips | None = None, val: Wav2LipClips | None = None) -> None:
        self.rank, self.world = init_distributed()
        if self.world > 1 and device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
            torch.cuda.set_device(device)
        if cfg.expert_loss not in ("bce", "multiway"):
            raise ConfigError(f"expert_loss must be 'bce' or 'multiway', not {cfg.expert_loss!r}")
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed + self.rank)
        self.rng = np.random.default_rng(cfg.seed + self.rank)
        self.train, self.val = train, val
        self.expert = wrap_ddp(SyncNet128(cfg.width).to(device), device)
        self.gen = wrap_ddp(SyncTalkFaceGenerator(cfg.width).to(device), device)
        self.dec = wrap_ddp(SyncTalkFaceDecoder(cfg.width).to(device), device)
        self.disc = wrap_ddp(QualityDiscriminator128(cfg.width).to(device), device)
        self.opt_e = torch.optim.Adam(self.expert.parameters(), lr=cfg.expert_lr)
        self.opt_g = torch.optim.Adam([*self.gen.parameters(), *self.dec.parameters()], lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
        self.step = dict.fromkeys(STAGES, 0)
        self.commands: list[str] = []
        self.init: dict | None = None  # provenance of a warm start (weights_record), kept across resumes

    def warm_start(self, path: str | Path) -> int:
        """Generator + decoder from a Wav2Lip generator (:mod:`baselines.synctalkface.warmstart`); only
        before the generator has trained."""
        from baselines.synctalkface.warmstart import init_from_wav2lip
        from talkbench.weights import weights_record

        if self.step["generator"] or self.step["gan"]:
            raise ConfigError(f"the generator has already trained {self.step}; a warm start would discard it")
        n = init_from_wav2lip(unwrap(self.gen), unwrap(self.dec), path)
        self.init = {"wav2lip_generator": weights_record(path, portable=True), "tensors": n}
        return n

    def continue_from(self, path: str | Path) -> dict[str, int]:
        """Generator + decoder (and the expert beside them, ``<stem>-expert.safetensors``) from an exported
        SyncTalkFace, to train it further in a fresh run directory. The step counters and the command
        history are taken from its card, so the step options stay totals and the new card tells the whole
        story. The Adam moments and the quality discriminator are not exported: they start afresh (the
        card says so in ``init``). Only before this run has trained."""
        from baselines.synctalkface.checkpoint import load_expert, load_synctalkface
        from baselines.synctalkface.export import expert_path
        from talkbench.weights import weights_record

        if any(self.step.values()):
            raise ConfigError(f"this run has already trained {self.step}; --init-from would discard it")
        path = Path(path)
        model = load_synctalkface(path)
        if model.width != self.cfg.width:
            raise CheckpointError(f"trained at width {model.width}, not --width {self.cfg.width}", path)
        ep = expert_path(path)
        if not ep.exists():
            raise CheckpointError(f"its expert {ep.name} is not beside it (an export writes both)", path)
        record = weights_record(path, portable=True)
        card = record.get("card") or {}
        saved = (card.get("config") or {}).get("face_box")
        if saved is not None and list(saved) != list(self.cfg.face_box or []):
            raise ConfigError(f"{path}: trained with face_box={saved}, not {self.cfg.face_box}")
        expert = load_expert(ep)  # every check before the first weight is replaced: a refusal changes nothing
        unwrap(self.gen).load_state_dict(model.generator.state_dict())
        unwrap(self.dec).load_state_dict(model.decoder.state_dict())
        unwrap(self.expert).load_state_dict(expert.state_dict())
        self.step = {**self.step, **{k: int(v) for k, v in (card.get("steps") or {}).items() if k in self.step}}
        self.commands = [*card.get("commands", []), *self.commands]
        self.init = {"continued_from": record, "expert": weights_record(ep, portable=True),
                     "fresh": ["optimizer moments", "quality discriminator"]}
        return dict(self.step)

    # ------------------------------------------------------------------ checkpoints (authors' layout)
    def save(self) -> None:
        if self.rank != 0:
            return

        def put(obj, name: str) -> None:
            tmp = self.out / f".{name}.tmp"
            torch.save(obj, tmp)
            tmp.replace(self.out / name)

        put({"state_dict": unwrap(self.expert).state_dict(), "optimizer": self.opt_e.state_dict(),
             "global_step": self.step["expert"], "global_epoch": 0}, "expert.pth")
        put({"model_state_dict": unwrap(self.gen).state_dict(), "dec_state_dict": unwrap(self.dec).state_dict(),
             "disc_state_dict": unwrap(self.disc).state_dict()}, "generator.ckpt")
        put({"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "torch_rng": torch.get_rng_state()},
            "optim.pth")
        (self.out / "state.json").write_text(json.dumps({
            "step": self.step, "config": asdict(self.cfg), "commands": self.commands, "init": self.init,
            "numpy_rng": self.rng.bit_generator.state}))

    def resume(self) -> bool:
        state = self.out / "state.json"
        if not state.exists():
            return False
        s = json.loads(state.read_text())
        saved = s.get("config", {})
        for key in ("width", "face_box"):
            a, b = saved.get(key), getattr(self.cfg, key)
            if (list(a) if isinstance(a, (list, tuple)) else a) != (list(b) if isinstance(b, (list, tuple)) else b):
                raise ConfigError(f"{state}: the run was trained with {key}={a}, not {b}")
        load = lambda name: torch.load(self.out / name, map_location=self.device, weights_only=True)  # noqa: E731
        e, g, o = load("expert.pth"), load("generator.ckpt"), load("optim.pth")
        unwrap(self.expert).load_state_dict(e["state_dict"])
        self.opt_e.load_state_dict(e["optimizer"])
        unwrap(self.gen).load_state_dict(g["model_state_dict"])
        unwrap(self.dec).load_state_dict(g["dec_state_dict"])
        unwrap(self.disc).load_state_dict(g["disc_state_dict"])
        self.opt_g.load_state_dict(o["opt_g"])
        self.opt_d.load_state_dict(o["opt_d"])
        torch.set_rng_state(o["torch_rng"])
        self.rng.bit_generator.state = s["numpy_rng"]
        self.step = {**self.step, **s["step"]}
        self.commands = list(s.get("commands", [])) + self.commands
        self.init = s.get("init")
        return True

    def _log(self, **row) -> None:
        if self.rank == 0:
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")

    # ------------------------------------------------------------------ generator
    def sync_loss(self, mel: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """The frozen expert's BCE on generated windows (B, 3, T, S, S) in [-1, 1]; it reads [0, 1]."""
        a, v = unwrap(self.expert)(mel, lower_halves((g + 1) / 2))
        return cosine_loss(a.float(), v.float(), torch.ones(len(a), device=a.device))

    def lip_critic(self, g: torch.Tensor) -> torch.Tensor:
        """The lip encoder as a frozen copy (the authors' ``lip_check`` deep-copies it each step): its
        weights get no gradient from this path and its batch-norm statistics are not updated."""
        enc = unwrap(self.gen).lip_encoder
        params = {k: v.detach() for k, v in enc.named_parameters()}
        buffers = {k: v.clone() for k, v in enc.named_buffers()}
        lip = g.clone()
        lip[:, :, :, : lip.shape[3] // 2] = 0.0
        return functional_call(enc, {**params, **buffers}, (lip,)).flatten(1)

    def generate(self, b: dict[str, torch.Tensor], train_path: bool = True):
        """Both decoder paths for a batch: (g_te, g_tr or None, memory output, GT lip embedding)."""
        n = b["x"].shape[0]
        lip = b["lip"].flatten(0, 1) if train_path else None
        mem, feats = self.gen(b["indiv_mels"].flatten(0, 1), frames_of(b["x"]), lip)
        g_te = windows_of(self.dec(mem.te_fusion, feats), n)
        g_tr = windows_of(self.dec(mem.tr_fusion, feats), n) if train_path else None
        return g_te, g_tr, mem

    def generator_step(self, batch: dict[str, torch.Tensor] | None = None, gan: bool = False) -> dict[str, float]:
        cfg = self.cfg
        self.gen.train()
        self.dec.train()
        self.expert.eval()
        self.expert.requires_grad_(False)
        b = self._to(batch or generator_batch(self.train, cfg.batch_size, self.rng))
        with self._autocast():
            g_te, g_tr, mem = self.generate(b)
            # The lip window of the centre frame is the ground-truth window itself (the authors' ``lip[:, 2]``).
            lip_gt = mem.lip.view(len(b["x"]), T, -1)[:, T // 2]
            vv = F.l1_loss(self.lip_critic(g_te), lip_gt) + F.l1_loss(self.lip_critic(g_tr), lip_gt)
        g_te, g_tr, vv = g_te.float(), g_tr.float(), vv.float()
        gt01 = (b["gt"] + 1) / 2
        l1 = F.l1_loss((g_te + 1) / 2, gt01) + F.l1_loss((g_tr + 1) / 2, gt01)
        av = self.sync_loss(b["mel"], g_te) + self.sync_loss(b["mel"], g_tr)
        mem_loss = mem.add_loss.float() + mem.recon_loss.float()
        loss = cfg.l1_wt * l1 + cfg.av_wt * av + cfg.vv_wt * vv + cfg.mem_wt * mem_loss
        row = {"l1": float(l1.detach()) / 2, "sync": float(av.detach()) / 2, "vv": float(vv.detach()),
               "add": float(mem.add_loss.detach()), "recon": float(mem.recon_loss.detach())}
        if gan:
            fake = torch.cat([frames_of(g_te), frames_of(g_tr)])
            pred = self.disc(fake)
            # Mean over both paths' frames, x2 = the authors' sum of the two paths' BCEs.
            perceptual = 2 * F.binary_cross_entropy(pred, torch.ones_like(pred))
            loss = loss + cfg.disc_wt * perceptual
            row["perceptual"] = float(perceptual.detach())
        self.opt_g.zero_grad()
        loss.backward()
        self.opt_g.step()
        if gan:
            real = self.disc(frames_of(b["gt"]))
            fake_te, fake_tr = self.disc(torch.cat([frames_of(g_te.detach()), frames_of(g_tr.detach())])).chunk(2)
            d_loss = (F.binary_cross_entropy(real, torch.ones_like(real)) + F.binary_cross_entropy(fake_te, torch.zeros_like(fake_te))
                      + F.binary_cross_entropy(fake_tr, torch.zeros_like(fake_tr)))
            self.opt_d.zero_grad()
            d_loss.backward()
            self.opt_d.step()
            row["disc"] = float(d_loss.detach())
        return row

    @torch.no_grad()
    def generator_eval(self) -> dict[str, float]:
        """Mean L1 ([0, 1] images) and expert sync loss of validation windows generated from the audio
        alone (the inference path), as the authors' ``eval_model``."""
        self.gen.eval()
        self.dec.eval()
        self.expert.eval()
        rng = np.random.default_rng(4321)
        l1s, syncs = [], []
        for _ in range(self.cfg.eval_batches):
            b = self._to(generator_batch(self.val or self.train, self.cfg.batch_size, rng))
            g, _, _ = self.generate(b, train_path=False)
            l1s.append(float(F.l1_loss((g.float() + 1) / 2, (b["gt"] + 1) / 2)))
            syncs.append(float(self.sync_loss(b["mel"], g.float())))
        return {"val_l1": float(np.mean(l1s)), "val_sync": float(np.mean(syncs))}

    # ------------------------------------------------------------------ loop
    def fit(self, stages: tuple[str, ...] = STAGES, progress: bool = True, max_minutes: float | None = None) -> dict[str, float]:
        """Run ``stages`` up to their step budgets; ``max_minutes`` stops early (after saving), so a CPU
        run can be budgeted in time and continued with ``--resume``."""
        cfg = self.cfg
        budget = {"expert": cfg.expert_steps, "generator": cfg.generator_steps, "gan": cfg.gan_steps}
        last: dict[str, float] = {}
        t0 = time.perf_counter()
        out_of_time = lambda: max_minutes is not None and time.perf_counter() - t0 > 60 * max_minutes  # noqa: E731
        for stage in stages:
            if out_of_time():
                break
            bar = tqdm(total=budget[stage], initial=self.step[stage], desc=f"synctalkface {stage}", unit="step",
                       disable=not progress or self.rank != 0)
            while self.step[stage] < budget[stage] and not out_of_time():
                row = {"loss": self.expert_step()} if stage == "expert" else self.generator_step(gan=stage == "gan")
                self.step[stage] += 1
                if self.step[stage] % cfg.eval_every == 0 or self.step[stage] == budget[stage]:
                    row.update({"val_loss": self.expert_eval()} if stage == "expert" else self.generator_eval())
                    self.save()
                self._log(stage=stage, step=self.step[stage], **row)
                bar.set_postfix({k: f"{v:.3f}" for k, v in row.items()})
                bar.update(1)
                last |= {f"{stage}_{k}": v for k, v in row.items()}
            bar.close()
            self.save()
        last["seconds"] = round(time.perf_counter() - t0, 1)
        return last
