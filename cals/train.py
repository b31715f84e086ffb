"""Training CALS in three stages (paper 3 and 4.1.4), from one config:

1. ``sync``: pretrain the discriminative sync module (F_a, F_v) with the multi-way matching loss;
2. ``a2l``: masked prediction: the Audio-to-Lip module predicts the lip-motion units z^v = F_v(5 frames)
   of masked audio steps (F_v frozen) (skipped for the ``use_a2l: false`` baseline);
3. ``e2e``: Audio-to-Lip + Lip-to-Face end to end with lambda1 L1 + lambda2 GAN + lambda3 (d_av + d_vv);
   lambda3 stays 0 until the L1 loss (an EMA over steps) has not improved for ``plateau_patience`` steps (or after
   ``sync_after_steps``), then it is switched on.

Sequences are whole utterances (or long cuts with their absolute positions) padded in a batch
(``cals/data.py``); the reference frame never lies among the frames that carry the generator's losses.
Every ``grad_share_every`` end-to-end steps each weighted loss term's share of the generator's gradient
is measured (``grad_share_<term>``: the norm of its gradient over the sum of the terms' norms), and
the means since the sync loss switched on (or since the start, before) go into the metrics.

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
from cals.sync_critic import SyncModule, lower_half, multiway_matching_loss
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
        self.share_sum: dict[str, float] = {}  # gradient shares summed over measurements (this phase)
        self.share_n = 0
        self.bank = bank
        self.noise = NoiseBank(cfg.train.demand_dir)
        self.log_path = self.out / "log.jsonl"

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "sync": self.sync.state_dict(), "disc": self.disc.state_dict(),
                "opt_sync": self.opt_sync.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "step": self.step, "sync_on": self.sync_on, "best_l1": self.best_l1, "since_best": self.since_best,
                "ema_l1": math.nan if self.ema_l1 is None else self.ema_l1,
                "grad_share": json.dumps({"sum": self.share_sum, "n": self.share_n}),
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
        if "grad_share" in s:
            g = json.loads(s["grad_share"])
            self.share_sum, self.share_n = dict(g["sum"]), int(g["n"])
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

    def _batch(self, augment: bool = True, render_segments: int = 0) -> dict[str, torch.Tensor]:
        tc = self.cfg.train
        b = sample_batch(self.bank, tc, self.rng, self.noise, augment, tc.t_s, render_segments, self.cfg.loss.segments)
        return {k: v.to(self.device) for k, v in b.items()}

    # ------------------------------------------------------------------ stages
    def _windows_at(self, x: torch.Tensor, bi: torch.Tensor, ti: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """t_s-step windows of ``x`` (B, T, ...) centred on (bi, ti) pairs, edges replicated inside each
        sequence's own length (padding never enters): (N, t_s, ...)."""
        h = self.cfg.train.t_s // 2
        idx = ti[:, None] + torch.arange(-h, h + 1, device=x.device)[None]
        idx = torch.minimum(idx.clamp(min=0), (lengths[bi] - 1)[:, None])
        return x[bi[:, None], idx]

    def z_v_at(self, frames: torch.Tensor, bi: torch.Tensor, ti: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Lip-motion units F_v(5 lower-face frames centred on frame ti of sequence bi): (N, D)."""
        win = lower_half(self._windows_at(frames, bi, ti, lengths))  # (N, t_s, 3, h, w)
        return self.sync.visual(win.transpose(1, 2))

    def z_a_at(self, units: torch.Tensor, bi: torch.Tensor, ti: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """F_a on the mel of t_s frames centred on frame ti of sequence bi: (N, D)."""
        win = self._windows_at(units, bi, ti, lengths)  # (N, t_s, 80, 4)
        return self.sync.audio(win.permute(0, 2, 1, 3).reshape(len(win), 1, 80, -1))

    @staticmethod
    def _grid(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) indices -> flat (batch index, index) pairs."""
        b, n = idx.shape
        return torch.arange(b, device=idx.device).repeat_interleave(n), idx.flatten()

    def train_sync(self) -> dict[str, float]:
        self.sync.train()
        b = self._batch()
        lengths = b["valid"].sum(1)
        bi, ti = self._grid(b["seg_abs"])
        n = b["seg_abs"].shape[1]
        with self._autocast():
            za = self.z_a_at(b["units"], bi, ti, lengths).view(-1, n, self.cfg.model.unit_dim)
            zv = self.z_v_at(b["frames"], bi, ti, lengths).view(-1, n, self.cfg.model.unit_dim)
            loss = multiway_matching_loss(za.float(), zv.float())
        self.opt_sync.zero_grad()
        loss.backward()
        average_gradients(self.sync)
        self.opt_sync.step()
        return {"sync_match": float(loss.detach())}

    def train_a2l(self) -> dict[str, float]:
        self.sync.eval()
        self.model.audio2lip.train()
        tc = self.cfg.train
        b = self._batch()
        lengths = b["valid"].sum(1)
        t = b["units"].shape[1]
        mask = torch.zeros(b["valid"].shape, dtype=torch.bool)
        for i, n in enumerate(lengths.tolist()):
            mask[i, :n] = phone_mask(n, tc.mask_len, tc.mask_prob)
        mask = mask.to(self.device)
        bi, ti = mask.nonzero(as_tuple=True)
        with torch.no_grad():
            target = torch.zeros(len(mask), t, self.cfg.model.unit_dim, device=self.device)
            target[bi, ti] = self.z_v_at(b["frames"], bi, ti, lengths).float()
        with self._autocast():
            pred = self.model.lip_units(b["units"], unit_mask=mask, offset=b["offset"], key_padding_mask=~b["valid"])
            loss = a2l_loss(pred.float(), target, mask)
        self.opt_g.zero_grad()
        loss.backward()
        average_gradients(self.model)
        self.opt_g.step()
        return {"a2l": float(loss.detach()), "masked_frac": float(mask.sum() / lengths.sum())}

    def _grad_shares(self, terms: dict[str, torch.Tensor]) -> dict[str, float]:
        """Each weighted loss term's gradient norm over the generator's parameters, as a share of their sum."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        norms = {}
        for name, term in terms.items():
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            norms[name] = math.sqrt(sum(float(g.detach().float().pow(2).sum()) for g in grads if g is not None))
        total = sum(norms.values()) or 1.0
        return {name: v / total for name, v in norms.items()}

    def train_e2e(self) -> dict[str, float]:
        lc, tc = self.cfg.loss, self.cfg.train
        self.model.train()
        self.sync.eval()
        b = self._batch(render_segments=tc.render_segments)
        valid, rv, render = b["valid"], b["render_valid"], b["render"]
        lengths = valid.sum(1)
        bidx = torch.arange(len(render), device=self.device)[:, None]
        with self._autocast():
            lips = self.model.lip_units(b["units"], offset=b["offset"], key_padding_mask=~valid)[bidx, render]
            fake = self.model.render(lips, b["reference"], b["pose"][bidx, render]).float()
        real = b["frames"][bidx, render]
        fake_v, real_v = fake[rv], real[rv]  # the loss-carrying frames (N, 3, S, S)
        # Discriminator step.
        d_loss = gan_discriminator_loss(self.disc(real_v), self.disc(fake_v.detach()))
        self.opt_d.zero_grad()
        d_loss.backward()
        average_gradients(self.disc)
        self.opt_d.step()
        # Generator step.
        l1 = recon_loss(fake_v, real_v)
        g = gan_generator_loss(self.disc(fake_v))
        terms = {"recon": lc.l1 * l1, "gan": lc.gan * g}
        sync_terms = {}
        if self.sync_on and (lc.use_dav or lc.use_dvv) and b["seg"].shape[1] > 0:
            n = b["seg"].shape[1]
            bi, li = self._grid(b["seg"])
            flen = torch.full_like(lengths, fake.shape[1])  # segments lie inside the rendered frames
            zf = self.z_v_at(fake, bi, li, flen).view(-1, n, self.cfg.model.unit_dim)
            if lc.use_dav:
                with torch.no_grad():
                    za = self.z_a_at(b["units"], *self._grid(b["seg_abs"]), lengths).view(-1, n, self.cfg.model.unit_dim)
                sync_terms["d_av"] = d_av(za, zf)
                terms["d_av"] = lc.sync * sync_terms["d_av"]
            if lc.use_dvv:
                with torch.no_grad():
                    zr = self.z_v_at(real, bi, li, flen).view(-1, n, self.cfg.model.unit_dim)
                sync_terms["d_vv"] = d_vv(zf, zr)
                terms["d_vv"] = lc.sync * sync_terms["d_vv"]
        loss = sum(terms.values())
        shares = {}
        if tc.grad_share_every and (self.step["e2e"] + 1) % tc.grad_share_every == 0:
            shares = self._grad_shares(terms)
            for k, v in shares.items():
                self.share_sum[k] = self.share_sum.get(k, 0.0) + v
            self.share_n += 1
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
                self.share_sum, self.share_n = {}, 0  # shares are reported for the phase with every loss
        return {"l1": float(l1.detach()), "gan_g": float(g.detach()), "gan_d": float(d_loss.detach()), "total": float(loss.detach()),
                "sync_on": float(self.sync_on), **{k: float(v.detach()) for k, v in sync_terms.items()},
                **{f"grad_share_{k}": round(v, 4) for k, v in shares.items()}}

    def grad_share_means(self) -> dict[str, float]:
        """Mean measured gradient share of each loss term since the sync loss switched on (or since the
        start of end-to-end training while it is off)."""
        if not self.share_n:
            return {}
        return {f"grad_share_{k}": round(v / self.share_n, 4) for k, v in sorted(self.share_sum.items())}

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
        last = {k: v for k, v in last.items() if not k.startswith("grad_share_")}
        if "e2e" in stages:
            last.update(self.grad_share_means())
        last["seconds"] = time.perf_counter() - t0
        return last


def heldout_l1(trainer: Trainer, bank: ClipBank, batches: int = 4) -> float:
    """Mean L1 of generated vs ground-truth frames on held-out sequences (no augmentation; every
    non-padding frame, the reference's neighbourhood included)."""
    trainer.model.eval()
    vals = []
    with torch.no_grad():
        saved = trainer.bank
        trainer.bank = bank
        for _ in range(batches):
            b = trainer._batch(augment=False)
            lips = trainer.model.lip_units(b["units"], offset=b["offset"], key_padding_mask=~b["valid"])
            for i in range(len(lips)):  # one sequence at a time: whole utterances are long
                n = int(b["valid"][i].sum())
                fake = trainer.model.render(lips[i : i + 1, :n], b["reference"][i : i + 1], b["pose"][i : i + 1, :n])
                vals.append(float(F.l1_loss(fake[0], b["frames"][i, :n])))
        trainer.bank = saved
    return float(np.mean(vals))
