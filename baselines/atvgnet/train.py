"""Training ATVGnet with the released recipes (lelechen63/ATVGnet ``code/atnet.py``, ``code/vgnet.py``;
facts in ``docs/atvgnet.md``), on any dataset the suite reads that has exact landmarks (the synthetic
corpus's sidecars).

1. ``basis``: the landmark space (:func:`baselines.atvgnet.landmarks.fit_space`): template = the mean
   first-frame landmarks of the training clips in protocol-crop pixels (+1, the official crop's offset), every
   frame aligned to it by the similarity of its own points 27..44 (as the official data preparation), each
   clip's mean shape replaced by the template's (identity normalised away, as the official ``normLmarks``);
   a PCA of those frames.
2. ``atnet``: MSE on the 6 PCA coefficients of ``frames``-long sequences; the example landmark is frame
   r in [3, 7] of the clip (as ``atnet.py``); Adam 2e-4, betas (0.5, 0.999).
3. ``vgnet``: G loss = 10 * mean(|fake - real| * (att.detach() + 0.5)) + BCE(D(fake), 1) + MSE of D's landmark
   regression on fake (mouth y coordinates 97..135 weighted x100, the official ``musk``); D loss = BCE real +
   BCE fake + the landmark MSE on real and fake; Adam 2e-4, betas (0.5, 0.999). The conv-GRU runs over the
   batch axis as in the official code (see ``model.py``).

Deviations, on purpose: the landmarks VG-net is trained on are the PCA reconstructions of the true ones
(at inference it only ever sees reconstructions); inference aligns the reference frame only and keeps the
generated frames in that geometry; ``frames`` and batch sizes are smaller on CPU (card). Checkpoints: ``out/state.pt`` (weights_only-readable), resumed
with ``--resume``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from baselines.atvgnet.landmarks import LandmarkSpace, fit_space, identity_normalised, load_space
from baselines.atvgnet.model import ATNet, GLDiscriminator, VGNet
from baselines.atvgnet.preprocess import align_to_template, mfcc_windows, to_model_image
from talkbench.datasets.clips import ClipsConfig
from talkbench.errors import ConfigError
from talkbench.faces.mouth import box_mask, mouth_boxes
from talkbench.training import record_loss_term


@dataclass(frozen=True)
class ATVGTrainConfig(ClipsConfig):
    at_width: float = 0.25
    vg_width: float = 0.125
    n_blocks: int = 9
    frames: int = 16  # official 16
    at_steps: int = 2000
    vg_steps: int = 400
    at_batch: int = 16  # official 16
    vg_batch: int = 4  # official 10
    lr: float = 2e-4
    max_clips: int | None = 200
    eval_every: int = 200
    save_every: int = 50
    seed: int = 0
    landmark_scale: float = 1.0  # our space is (p / 128 - 0.5) * this (official: normLmarks * 5)
    mouth_weight: float = 0.0  # 0 = the official recipe; > 0 adds a mouth-box L1 term (a deviation, on the card)


class ATVGClips:
    """Aligned 128-px frames, aligned landmarks (pixels) and MFCC windows of each clip, in memory."""

    def __init__(self, clips: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], template: np.ndarray) -> None:
        if not clips:
            raise ConfigError("no usable training clips (need exact landmarks: the synthetic corpus's sidecars)")
        self.clips, self.template = clips, template

    @classmethod
    def from_dataset(cls, cfg: ATVGTrainConfig, split: str, limit: int | None,
                     template: np.ndarray | None = None) -> ATVGClips:
        from talkbench.datasets.clips import protocol_clips, sidecar_landmarks

        raw = []
        for s, c in protocol_clips(cfg.dataset, cfg.root, split, limit, min_frames=cfg.frames + 8, desc="atvgnet"):
            lm = sidecar_landmarks(s, c)
            if lm is None or len(lm) < cfg.frames + 8:
                continue
            n = len(lm)
            raw.append((s.sample_id, c.frames[:n], lm[:n], c.audio))
        if not raw:
            raise ConfigError(f"no clips of {cfg.dataset}/{split} with exact landmarks (sidecars)")
        if template is None:
            template = np.mean([r[2][0] for r in raw], axis=0).astype(np.float64) + 1.0
        clips = []
        for sid, frames, lm, audio in raw:
            aligned, alm, _ = align_to_template(frames, lm, template)
            clips.append((sid, aligned, identity_normalised(alm, template), mfcc_windows(audio, len(frames))))
        return cls(clips, template)

    def __len__(self) -> int:
        return len(self.clips)


def at_batch(clips: ATVGClips, space: LandmarkSpace, n: int, frames: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    ex, tgt, mf = [], [], []
    for _ in range(n):
        _, _, lm, mfcc = clips.clips[int(rng.integers(len(clips)))]
        s = int(rng.integers(len(lm) - frames + 1))
        r = int(rng.integers(3, 8))
        ex.append(space.to_coefs(space.example(lm[min(r, len(lm) - 1)])))
        tgt.append(space.to_coefs(space.points(lm[s : s + frames])))
        mf.append(mfcc[s : s + frames])
    f = lambda x: torch.from_numpy(np.stack(x).astype(np.float32))  # noqa: E731
    return {"example": f(ex), "target": f(tgt), "mfcc": f(mf)}


def vg_batch(clips: ATVGClips, space: LandmarkSpace, n: int, frames: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    img, ex, tgt_img, tgt_lm = [], [], [], []
    proj = lambda x: space.from_coefs(space.to_coefs(x))  # noqa: E731
    for _ in range(n):
        _, fr, lm, _ = clips.clips[int(rng.integers(len(clips)))]
        s = int(rng.integers(len(lm) - frames + 1))
        r = int(rng.integers(len(lm)))
        img.append(to_model_image(fr[r]))
        ex.append(proj(space.example(lm[r])))
        tgt_img.append(to_model_image(fr[s : s + frames]))
        tgt_lm.append(proj(space.points(lm[s : s + frames])))
    f = lambda x: torch.from_numpy(np.stack(x).astype(np.float32))  # noqa: E731
    return {"image": f(img), "example": f(ex), "frames": f(tgt_img), "landmarks": f(tgt_lm)}


def mouth_box_mask(template: np.ndarray, size: int = 128) -> torch.Tensor:
    """(1, 1, 1, size, size) mask of the template's mouth box (in the aligned crop's frame, ``template - 1``;
    :func:`talkbench.faces.mouth.mouth_boxes`). Training frames are aligned to the template, so one fixed box
    covers the mouth of every frame."""
    return box_mask(mouth_boxes((template - 1.0)[None], size=size), size)[None]


def mouth_weights() -> torch.Tensor:
    """The official ``musk``: 1 everywhere, 100 on the mouth points' y coordinates (97, 99, ..., 135)."""
    w = torch.ones(136)
    w[97:136:2] = 100.0
    return w


class ATVGTrainer:
    def __init__(self, cfg: ATVGTrainConfig, out: str | Path, device: str = "cpu",
                 train: ATVGClips | None = None, val: ATVGClips | None = None, space: LandmarkSpace | None = None) -> None:
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.train, self.val, self.space = train, val, space
        self.at = ATNet(cfg.at_width).to(device)
        self.vg = VGNet(cfg.vg_width, cfg.n_blocks).to(device)
        self.d = GLDiscriminator(cfg.vg_width).to(device)
        for m in (self.at, self.vg, self.d):  # atnet.py / vgnet.py initialize_weights: N(0, 0.02)
            for mod in m.modules():
                if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                    torch.nn.init.normal_(mod.weight, 0.0, 0.02)
        betas = (0.5, 0.999)
        self.opt_at = torch.optim.Adam(self.at.parameters(), cfg.lr, betas=betas)
        self.opt_g = torch.optim.Adam(self.vg.parameters(), cfg.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), cfg.lr, betas=betas)
        self.steps = {"atnet": 0, "vgnet": 0}
        self.mouth_terms: list[dict] = []  # VG-net steps trained with the mouth term (talkbench.training.record_loss_term)
        self._vg_saved = 0
        self.commands: list[str] = []
        self.log = (self.out / "log.jsonl").open("a")

    @property
    def basis_path(self) -> Path:
        return self.out / "basis.npz"

    def fit_basis(self) -> LandmarkSpace:
        assert self.train is not None
        allm = np.concatenate([c[2] for c in self.train.clips])
        self.space = fit_space(allm, self.train.template, scale=self.cfg.landmark_scale)
        self.space.save(self.basis_path)
        self.space = load_space(self.basis_path)
        return self.space

    def explained_variance(self) -> float:
        assert self.train is not None and self.space is not None
        x = self.space.points(np.concatenate([c[2] for c in self.train.clips]))
        x = x - self.space.mean
        kept = (x @ self.space.components) @ self.space.components.T
        return float((kept ** 2).sum() / (x ** 2).sum())

    # ------------------------------------------------------------------ state
    def save(self) -> None:
        state = {"atnet": self.at.state_dict(), "vgnet": self.vg.state_dict(), "disc": self.d.state_dict(),
                 "opt_at": self.opt_at.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                 "steps": torch.tensor([self.steps["atnet"], self.steps["vgnet"]])}
        tmp = self.out / "state.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.out / "state.pt")
        # VG-net steps since the last save were trained with this run's mouth term (none at weight 0)
        record_loss_term(self.mouth_terms, "vgnet", self.cfg.mouth_weight, self._vg_saved, self.steps["vgnet"])
        self._vg_saved = self.steps["vgnet"]
        (self.out / "config.json").write_text(json.dumps({**asdict(self.cfg), "mouth_terms": self.mouth_terms}, indent=1))

    def resume(self) -> bool:
        path = self.out / "state.pt"
        if not path.exists():
            return False
        prev = json.loads((self.out / "config.json").read_text()) if (self.out / "config.json").exists() else {}
        for k in ("at_width", "vg_width", "n_blocks"):
            if k in prev and prev[k] != getattr(self.cfg, k):
                raise ConfigError(f"--resume with {k}={getattr(self.cfg, k)} but the run in {self.out} has {prev[k]}")
        st = torch.load(path, map_location=self.device, weights_only=True)
        self.at.load_state_dict(st["atnet"])
        self.vg.load_state_dict(st["vgnet"])
        self.d.load_state_dict(st["disc"])
        self.opt_at.load_state_dict(st["opt_at"])
        self.opt_g.load_state_dict(st["opt_g"])
        self.opt_d.load_state_dict(st["opt_d"])
        self.steps = {"atnet": int(st["steps"][0]), "vgnet": int(st["steps"][1])}
        self.mouth_terms, self._vg_saved = list(prev.get("mouth_terms", [])), self.steps["vgnet"]
        self.rng = np.random.default_rng([self.cfg.seed, self.steps["atnet"], self.steps["vgnet"]])
        if self.basis_path.exists():
            self.space = load_space(self.basis_path)
        return True

    def _log(self, rec: dict) -> None:
        self.log.write(json.dumps(rec) + "\n")
        self.log.flush()

    # ------------------------------------------------------------------ AT-net
    def at_step(self) -> float:
        assert self.train is not None and self.space is not None
        self.at.train()
        b = {k: v.to(self.device) for k, v in at_batch(self.train, self.space, self.cfg.at_batch, self.cfg.frames, self.rng).items()}
        loss = F.mse_loss(self.at(b["example"], b["mfcc"]), b["target"])
        self.opt_at.zero_grad()
        loss.backward()
        self.opt_at.step()
        return loss.item()

    @torch.no_grad()
    def at_eval(self, batches: int = 4) -> dict[str, float]:
        """Val MSE of AT-net and of the 'example landmark held still' baseline, on the same windows."""
        clips = self.val or self.train
        assert clips is not None and self.space is not None
        rng = np.random.default_rng(1234)
        self.at.eval()
        mse, still = [], []
        for _ in range(batches):
            b = at_batch(clips, self.space, self.cfg.at_batch, self.cfg.frames, rng)
            mse.append(float(F.mse_loss(self.at(b["example"].to(self.device), b["mfcc"].to(self.device)).cpu(), b["target"])))
            still.append(float(F.mse_loss(b["example"][:, None].expand_as(b["target"]), b["target"])))
        return {"at_val_mse": float(np.mean(mse)), "at_val_mse_still": float(np.mean(still))}

    # ------------------------------------------------------------------ VG-net
    def vg_step(self) -> dict[str, float]:
        assert self.train is not None and self.space is not None
        self.vg.train()
        self.d.train()
        b = {k: v.to(self.device) for k, v in vg_batch(self.train, self.space, self.cfg.vg_batch, self.cfg.frames, self.rng).items()}
        musk = mouth_weights().to(self.device)
        ones = torch.ones(len(b["image"]), device=self.device)
        fake, att, _, _ = self.vg(b["image"], b["landmarks"], b["example"])
        d_real, lm_real = self.d(b["frames"], b["example"])
        d_fake, lm_fake = self.d(fake.detach(), b["example"])
        loss_d = (F.binary_cross_entropy(d_real, ones) + F.binary_cross_entropy(d_fake, 0 * ones)
                  + F.mse_loss(lm_fake * musk, b["landmarks"] * musk) + F.mse_loss(lm_real * musk, b["landmarks"] * musk))
        self.opt_d.zero_grad()
        loss_d.backward()
        self.opt_d.step()
        for p in self.d.parameters():
            p.requires_grad_(False)
        d_fake, lm_fake = self.d(fake, b["example"])
        err = torch.abs(fake - b["frames"])
        pix = (err * (att.detach() + 0.5)).mean()
        gan = F.binary_cross_entropy(d_fake, ones)
        lmark = F.mse_loss(lm_fake * musk, b["landmarks"] * musk)
        loss = 10 * pix + gan + lmark
        extra = {}
        if self.cfg.mouth_weight > 0:
            # Deviation (card): the official loss lets VG-net sit at "attention low, copy the example" on a
            # corpus whose only frame-to-frame change is a small mouth; this term pays for the mouth alone.
            mask = self._mouth_mask()
            mouth = (err * mask).sum() / (mask.sum() * err.shape[0] * err.shape[1] * err.shape[2])
            loss = loss + self.cfg.mouth_weight * mouth
            extra = {"loss_mouth": mouth.item()}
        self.opt_g.zero_grad()
        loss.backward()
        self.opt_g.step()
        for p in self.d.parameters():
            p.requires_grad_(True)
        return {"loss_d": loss_d.item(), "loss_pix": pix.item(), "loss_gen": gan.item(), "loss_lmark": lmark.item(), **extra}

    def _mouth_mask(self) -> torch.Tensor:
        clips = self.train or self.val
        assert clips is not None
        return mouth_box_mask(clips.template).to(self.device)

    @torch.no_grad()
    def vg_eval(self, batches: int = 2) -> dict[str, float]:
        """Val L1 of VG-net's frames (in [-1, 1]) and of the example image held still, on the same windows."""
        clips = self.val or self.train
        assert clips is not None and self.space is not None
        rng = np.random.default_rng(1234)
        self.vg.eval()
        mask = mouth_box_mask(clips.template).bool().expand(-1, -1, 3, -1, -1)
        l1, still, m_l1, m_still = [], [], [], []
        for _ in range(batches):
            b = vg_batch(clips, self.space, self.cfg.vg_batch, self.cfg.frames, rng)
            fake = self.vg(b["image"].to(self.device), b["landmarks"].to(self.device), b["example"].to(self.device))[0].cpu()
            e_fake, e_still = (fake - b["frames"]).abs(), (b["image"][:, None] - b["frames"]).abs()
            l1.append(float(e_fake.mean()))
            still.append(float(e_still.mean()))
            m = mask.expand_as(e_fake)
            m_l1.append(float(e_fake[m].mean()))
            m_still.append(float(e_still[m].mean()))
        # The mouth-box numbers say whether VG-net follows the landmarks; the whole-frame L1 can fall on
        # colour and sharpness alone.
        return {"vg_val_l1": float(np.mean(l1)), "vg_val_l1_still": float(np.mean(still)),
                "vg_val_mouth_l1": float(np.mean(m_l1)), "vg_val_mouth_l1_still": float(np.mean(m_still))}

    # ------------------------------------------------------------------ loop
    def fit(self, stages: tuple[str, ...], budget_s: float | None = None) -> dict[str, float]:
        t0 = time.time()
        last: dict[str, float] = {}
        for stage in stages:
            total = self.cfg.at_steps if stage == "atnet" else self.cfg.vg_steps
            while self.steps[stage] < total:
                if budget_s is not None and time.time() - t0 > budget_s:
                    self.save()
                    return last
                out = self.at_step() if stage == "atnet" else self.vg_step()
                self.steps[stage] += 1
                last = {f"{stage}_loss": out} if stage == "atnet" else out
                step = self.steps[stage]
                if step % 10 == 0:
                    self._log({"stage": stage, "step": step, "t": round(time.time() - t0, 1), **last})
                if step % self.cfg.eval_every == 0 or step == total:
                    ev = self.at_eval() if stage == "atnet" else self.vg_eval()
                    self._log({"stage": stage, "step": step, "eval": ev})
                    last.update(ev)
                if step % self.cfg.save_every == 0:
                    self.save()
            self.save()
        return last

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        sd = {f"atnet.{k}": v for k, v in self.at.state_dict().items()}
        sd.update({f"vgnet.{k}": v for k, v in self.vg.state_dict().items()})
        return sd
