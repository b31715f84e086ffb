"""Training CALS in three stages (paper 3 and 4.1.4), from one config:

1. ``sync``: pretrain the discriminative sync module (F_a, F_v) with the multi-way matching loss;
2. ``a2l``: masked prediction: the Audio-to-Lip module predicts the lip-motion units z^v = F_v(5 frames)
   of masked audio steps (F_v frozen) (skipped for the ``use_a2l: false`` baseline);
3. ``e2e``: Audio-to-Lip + Lip-to-Face end to end with lambda1 L1 + lambda2 GAN + lambda3 (d_av + d_vv);
   lambda3 stays 0 until the L1 loss (an EMA over steps) has not improved for ``plateau_patience`` steps (or after
   ``sync_after_steps``), then it is switched on.

Resumable (``out/last.pt`` holds every model, optimiser, step and stage), logs every loss to
``out/log.jsonl``, bf16/fp16 autocast on CUDA, DDP when launched with ``torchrun``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from cals.audio import NoiseBank
from cals.audio2lip import phone_mask
from cals.config import CALSConfig
from cals.data import ClipBank, sample_batch
from cals.lip2face import PatchDiscriminator
from cals.losses import a2l_loss, d_av, d_vv, gan_discriminator_loss, gan_generator_loss, recon_loss
from cals.model import CALS
from cals.sync_critic import SyncModule, audio_windows, multiway_matching_loss, video_windows
from talkbench.distributed import average_gradients, init_distributed

STAGES = ("sync", "a2l", "e2e")


class Trainer:
    def __init__(self, cfg: CALSConfig, out: str | Path, device: str = "cpu", bank: ClipBank | None = None) -> None:
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.rank, self.world = init_distributed()
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.train.seed + self.rank)
        self.rng = np.random.default_rng(cfg.train.seed + self.rank)
        self.model = CALS(cfg.model).to(device)
        self.sync = SyncModule(cfg.model.unit_dim, cfg.model.sync_width).to(device)
        self.disc = PatchDiscriminator(max(16, cfg.model.unet_base)).to(device)
        lr = cfg.train.lr
        self.opt_sync = torch.optim.Adam(self.sync.parameters(), lr=lr)
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(0.5, 0.999))
        self.step = {s: 0 for s in STAGES}
        self.sync_on = False
        self.best_l1, self.since_best = math.inf, 0
        self.ema_l1: float | None = None  # the plateau test runs on an EMA: single batches are too noisy
        self.bank = bank
        self.noise = NoiseBank(cfg.train.demand_dir)
        self.log_path = self.out / "log.jsonl"

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "sync": self.sync.state_dict(), "disc": self.disc.state_dict(),
                "opt_sync": self.opt_sync.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "step": self.step, "sync_on": self.sync_on, "best_l1": self.best_l1, "since_best": self.since_best,
                "ema_l1": math.nan if self.ema_l1 is None else self.ema_l1,
                # Resuming continues the same batch sequence instead of replaying it from the seed.
                "rng": json.dumps(self.rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
                "config": json.dumps(self.cfg.to_dict())}

    def save(self) -> None:
        if self.rank == 0:
            tmp = self.out / ".last.pt.tmp"
            torch.save(self.state(), tmp)
            tmp.replace(self.out / "last.pt")

    def resume(self) -> bool:
        p = self.out / "last.pt"
        if not p.exists():
            return False
        s = torch.load(p, map_location=self.device, weights_only=True)
        for name in ("model", "sync", "disc", "opt_sync", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(s[name])
        self.step, self.sync_on = dict(s["step"]), bool(s["sync_on"])
        self.best_l1, self.since_best = float(s["best_l1"]), int(s["since_best"])
        if "rng" in s:
            self.rng.bit_generator.state = json.loads(s["rng"])
            torch.set_rng_state(s["torch_rng"].cpu())
        ema = float(s.get("ema_l1", math.nan))
        self.ema_l1 = None if math.isnan(ema) else ema
        return True

    def _log(self, stage: str, **values: float) -> None:
        if self.rank == 0 and self.step[stage] % self.cfg.train.log_every == 0:
            with open(self.log_path, "a") as f:
                f.write(json.dumps({"stage": stage, "step": self.step[stage], **values}) + "\n")

    def _autocast(self):
        amp = self.cfg.train.amp
        if self.device.startswith("cuda") and amp in ("bf16", "fp16"):
            return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
        return torch.autocast("cpu", enabled=False)

    def _batch(self, augment: bool = True) -> dict[str, torch.Tensor]:
        b = sample_batch(self.bank, self.cfg.train, self.rng, self.noise, augment)
        return {k: v.to(self.device) for k, v in b.items()}

    # ------------------------------------------------------------------ stages
    def z_v(self, frames: torch.Tensor) -> torch.Tensor:
        """Lip-motion units of every frame: F_v over 5-frame windows centred on it. (B, T, D)."""
        win = video_windows(frames, self.cfg.train.t_s)
        b, t = win.shape[:2]
        return self.sync.visual(win.flatten(0, 1)).view(b, t, -1)

    def z_a(self, units: torch.Tensor) -> torch.Tensor:
        win = audio_windows(units, self.cfg.train.t_s)
        b, t = win.shape[:2]
        return self.sync.audio(win.flatten(0, 1)).view(b, t, -1)

    def _segments(self, t: int, k: int | None = None) -> torch.Tensor:
        """S (or ``k``) segment centres at least t_s apart (distinct lip motions within the context)."""
        ts = self.cfg.train.t_s
        cands = np.arange(ts // 2, t - ts // 2, ts)
        k = min(k or self.cfg.loss.segments, len(cands))
        return torch.from_numpy(np.sort(self.rng.choice(cands, k, replace=False)))

    def train_sync(self) -> dict[str, float]:
        self.sync.train()
        b = self._batch()
        idx = self._segments(b["units"].shape[1])
        with self._autocast():
            za = self.z_a(b["units"])[:, idx]
            zv = self.z_v(b["frames"])[:, idx]
            loss = multiway_matching_loss(za.float(), zv.float())
        self.opt_sync.zero_grad()
        loss.backward()
        average_gradients(self.sync)
        self.opt_sync.step()
        return {"sync_match": float(loss.detach())}

    def train_a2l(self) -> dict[str, float]:
        self.sync.eval()
        self.model.audio2lip.train()
        b = self._batch()
        t = b["units"].shape[1]
        mask = torch.stack([phone_mask(t, self.cfg.train.mask_len, self.cfg.train.mask_prob) for _ in range(len(b["units"]))]).to(self.device)
        with torch.no_grad():
            target = self.z_v(b["frames"])
        with self._autocast():
            pred = self.model.lip_units(b["units"], unit_mask=mask)
            loss = a2l_loss(pred.float(), target.float(), mask)
        self.opt_g.zero_grad()
        loss.backward()
        average_gradients(self.model)
        self.opt_g.step()
        return {"a2l": float(loss.detach()), "masked_frac": float(mask.float().mean())}

    def train_e2e(self) -> dict[str, float]:
        lc, tc = self.cfg.loss, self.cfg.train
        self.model.train()
        self.sync.eval()
        b = self._batch()
        t = b["units"].shape[1]
        if tc.render_segments:
            # Render whole t_s-frame segments only, so that d_av / d_vv still see real 5-frame motion.
            centres = self._segments(t, tc.render_segments)
            fidx = (centres[:, None] + torch.arange(-(tc.t_s // 2), tc.t_s // 2 + 1)[None]).flatten()
            local = torch.arange(len(centres)) * tc.t_s + tc.t_s // 2
        else:
            fidx, centres = torch.arange(t), self._segments(t)
            local = centres
        fidx = fidx.to(self.device)
        with self._autocast():
            lips = self.model.lip_units(b["units"])[:, fidx]
            fake = self.model.render(lips, b["reference"], b["pose"][:, fidx]).float()
        real = b["frames"][:, fidx]
        # Discriminator step.
        d_loss = gan_discriminator_loss(self.disc(real.flatten(0, 1)), self.disc(fake.detach().flatten(0, 1)))
        self.opt_d.zero_grad()
        d_loss.backward()
        average_gradients(self.disc)
        self.opt_d.step()
        # Generator step.
        l1 = recon_loss(fake, real)
        g = gan_generator_loss(self.disc(fake.flatten(0, 1)))
        loss = lc.l1 * l1 + lc.gan * g
        sync_terms = {}
        if self.sync_on and (lc.use_dav or lc.use_dvv):
            zf = self.z_v(fake)[:, local]
            s = fake.new_zeros(())
            if lc.use_dav:
                with torch.no_grad():
                    za = self.z_a(b["units"])[:, centres]
                sync_terms["d_av"] = d_av(za, zf)
                s = s + sync_terms["d_av"]
            if lc.use_dvv:
                with torch.no_grad():
                    zr = self.z_v(real)[:, local]
                sync_terms["d_vv"] = d_vv(zf, zr)
                s = s + sync_terms["d_vv"]
            loss = loss + lc.sync * s
        self.opt_g.zero_grad()
        loss.backward()
        average_gradients(self.model)
        self.opt_g.step()
        # Switch the sync loss on once the reconstruction loss has converged (plateau).
        if not self.sync_on:
            v = float(l1.detach())
            self.ema_l1 = v if self.ema_l1 is None else 0.98 * self.ema_l1 + 0.02 * v
            if self.ema_l1 < self.best_l1 * (1 - 1e-3):
                self.best_l1, self.since_best = self.ema_l1, 0
            else:
                self.since_best += 1
            if (lc.sync_after_steps and self.step["e2e"] >= lc.sync_after_steps) or (
                    not lc.sync_after_steps and self.since_best >= lc.plateau_patience):
                self.sync_on = True
        return {"l1": float(l1.detach()), "gan_g": float(g.detach()), "gan_d": float(d_loss.detach()), "total": float(loss.detach()),
                "sync_on": float(self.sync_on), **{k: float(v.detach()) for k, v in sync_terms.items()}}

    def fit(self, stages: tuple[str, ...] = STAGES, progress: bool = True) -> dict[str, float]:
        tc = self.cfg.train
        budget = {"sync": tc.sync_steps, "a2l": tc.a2l_steps if self.cfg.model.use_a2l else 0, "e2e": tc.e2e_steps}
        fns = {"sync": self.train_sync, "a2l": self.train_a2l, "e2e": self.train_e2e}
        last: dict[str, float] = {}
        t0 = time.perf_counter()
        for stage in stages:
            bar = tqdm(total=budget[stage], initial=self.step[stage], desc=f"cals {stage}", unit="step",
                       disable=not progress or self.rank != 0)
            while self.step[stage] < budget[stage]:
                last = fns[stage]()
                self.step[stage] += 1
                self._log(stage, **last)
                bar.set_postfix({k: f"{v:.3f}" for k, v in list(last.items())[:3]})
                bar.update(1)
                if self.step[stage] % tc.ckpt_every == 0:
                    self.save()
            bar.close()
            self.save()
        last["seconds"] = time.perf_counter() - t0
        return last


def heldout_l1(trainer: Trainer, bank: ClipBank, batches: int = 4) -> float:
    """Mean L1 of generated vs ground-truth frames on held-out windows (no augmentation)."""
    trainer.model.eval()
    vals = []
    with torch.no_grad():
        saved = trainer.bank
        trainer.bank = bank
        for _ in range(batches):
            b = trainer._batch(augment=False)
            vals.append(float(F.l1_loss(trainer.model(b["units"], b["reference"], b["pose"]), b["frames"])))
        trainer.bank = saved
    return float(np.mean(vals))
