"""Training Audio2Head (no official training code was released), in the order the method implies:

1. ``kp``: keypoint detector + occlusion-aware generator by self-supervised reconstruction (FOMM):
   source and driving frames of one clip, the generator warps the source with both frames' keypoints;
   multi-scale L1 reconstruction (scales 1, 1/2, 1/4, 1/8, anti-aliased; FOMM's VGG perceptual loss
   needs VGG weights, which this project does not ship) plus equivariance of keypoint values and
   jacobians under a random affine warp of the driving frame (FOMM also adds a thin-plate spline;
   affine only here).
2. ``audio2kp``: 64-frame windows; audio blocks, pose maps drawn from the ground-truth head pose and the
   clip's first frame -> keypoints, L1 to the frozen detector's keypoints (values and jacobians) on the
   ground-truth frames; frames past a clip's end are padded as at inference and left out of the loss.
3. ``pose``: audio2pose, L1 to the normalised ground-truth pose, row t (from audio up to frame t - 1)
   against frame t, row 0 from the image, as the inference-time offset.

Head pose comes from the synthetic corpus, which knows it exactly (``synth_head_pose``): its in-plane
angle, shift and scale, taken into the protocol crop through the crop windows, become a rotation
vector (0, 0, angle) and a translation: depth 280 * (clip median face size / face size), x and y the
face centre's displacement from its clip median on the 256-px canvas back-projected at that depth,
plus the middle of the official range (the synthetic face centre is not the official box centre). Other datasets have no pose:
their pose maps and targets are unavailable, and only stage 1 runs on them.
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

from baselines.audio2head.model import (
    AntiAliasInterpolation2d,
    Audio2Kp,
    Audio2Pose,
    KPDetector,
    OcclusionAwareGenerator,
    coordinate_grid,
)
from baselines.audio2head.preprocess import (
    CAMERA,
    IMAGE_SIZE,
    POSE_MAX,
    POSE_MIN,
    ROWS_PER_FRAME,
    SEQ_LEN,
    denormalise_pose,
    draw_pose,
    features_for_frames,
    frame_blocks,
    normalise_pose,
)
from talkbench.datasets.clips import ClipsConfig
from talkbench.errors import ConfigError
from talkbench.faces.mouth import box_mask, mouth_boxes
from talkbench.training import record_loss_term

STAGES = ("kp", "audio2kp", "pose")


@dataclass(frozen=True)
class Audio2HeadTrainConfig(ClipsConfig):
    width: float = 0.125
    kp_steps: int = 300
    audio2kp_steps: int = 60
    pose_steps: int = 300
    batch_size: int = 4  # frame pairs (kp) and clips (pose); audio2kp takes one 64-frame window
    pose_frames: int = 32
    lr: float = 2e-4  # vox-256.yaml's (inherited FOMM) learning rate
    recon_weight: float = 10.0
    equivariance_weight: float = 10.0  # vox-256.yaml: equivariance_value / _jacobian 10
    jacobian_weight: float = 1.0
    mouth_weight: float = 0.0  # > 0: + this x L1 on the driving frame's mouth box (a deviation, on the card)
    eval_every: int = 50
    max_clips: int | None = 64
    seed: int = 0
    amp: str = "bf16"  # CUDA only


@dataclass
class TrainClip:
    sample_id: str
    frames: np.ndarray  # (T, S, S, 3) uint8 protocol crops
    blocks: np.ndarray  # (T, 4, 41) audio feature blocks
    poses: np.ndarray | None  # (T, 6) normalised head pose, None without ground truth
    mouth: np.ndarray | None = None  # (T, 4) x0, y0, x1, y1 of the mouth box in 256-px frames, or None


def synth_head_pose(video_path: str | Path, num_frames: int, windows: np.ndarray, dataset: str,
                    size: int = IMAGE_SIZE) -> np.ndarray:
    """(T, 6) normalised official-parameterisation pose of a synthetic clip (see the module doc)."""
    from talkbench.datasets.synth.corpus import SPECS, head_motion

    meta_path = Path(video_path).with_suffix(".meta.json")
    if not meta_path.exists():
        raise ConfigError("no synthetic-corpus sidecar with the head motion", meta_path)
    plan = json.loads(meta_path.read_text())["plan"]
    angle, dx, dy, scale = head_motion(np.random.default_rng(plan["motion_seed"]), num_frames)
    src = SPECS[dataset].size
    w = np.asarray(windows, np.float64)[:num_frames]
    s = size / (w[:, 2] - w[:, 0])
    u = (src * (0.5 + dx) - w[:, 0]) * s
    v = (src * (0.36 + dy) - w[:, 1]) * s
    face = src * 0.27 * scale * s
    tz = 280.0 * np.median(face) / face
    f = CAMERA[0, 0]
    mid = (POSE_MIN + POSE_MAX) / 2
    trans = np.stack([(u - np.median(u)) * tz / f + mid[3], (v - np.median(v)) * tz / f + mid[4], tz], 1)
    rot = np.stack([np.zeros_like(angle), np.zeros_like(angle), angle], 1)
    return np.clip(normalise_pose(rot, trans), -1, 1)


def load_clips(cfg: Audio2HeadTrainConfig, split: str, limit: int | None) -> list[TrainClip]:
    from talkbench.datasets.clips import protocol_clips, sidecar_landmarks

    out = []
    for s, c in protocol_clips(cfg.dataset, cfg.root, split, limit, min_frames=cfg.pose_frames, desc="audio2head"):
        feats, _ = features_for_frames(c.audio, c.sample_rate, c.num_frames, source=s.sample_id)
        poses = None
        if cfg.dataset.startswith("synth-") and "windows" in c.meta:
            poses = synth_head_pose(s.video_path, c.num_frames, c.meta["windows"], cfg.dataset)
        lm = sidecar_landmarks(s, c) if cfg.mouth_weight > 0 else None
        mouth = None
        if lm is not None:
            mouth = mouth_boxes(lm, IMAGE_SIZE / c.frames.shape[1], IMAGE_SIZE)
            mouth = np.concatenate([mouth, np.repeat(mouth[-1:], c.num_frames - len(mouth), 0)])
        out.append(TrainClip(s.sample_id, c.frames, frame_blocks(feats), poses, mouth))
    if not out:
        raise ConfigError(f"no usable {cfg.dataset} {split} clips (need at least {cfg.pose_frames} frames)")
    return out


def to_images(frames: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, 256, 256) float in [0, 1] (bilinear, as the adapter's reference)."""
    if frames.shape[1] != IMAGE_SIZE:
        frames = np.stack([cv2.resize(f, (IMAGE_SIZE, IMAGE_SIZE)) for f in frames])
    # contiguous: a channels-last view crashes (heap corruption) in the CPU backward of the 8-channel
    # ResNet convolutions of torch 2.13
    return (torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0).contiguous()


def pose_maps(poses: np.ndarray, start: int, length: int = SEQ_LEN) -> np.ndarray:
    """(length, 256, 256) box drawings of normalised poses from ``start``, the last pose past the end."""
    rot, trans = denormalise_pose(poses)
    idx = np.minimum(np.arange(start, start + length), len(poses) - 1)
    return np.stack([draw_pose(rot[i], trans[i]) for i in idx]).astype(np.float32)


def random_affine(n: int, g: torch.Generator, sigma: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.eye(2).expand(n, 2, 2) + sigma * torch.randn(n, 2, 2, generator=g)
    return a, sigma * torch.randn(n, 2, generator=g)


def warp_affine(img: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Image whose pixel at z shows ``img`` at A z + b (normalised coordinates)."""
    n, _, h, w = img.shape
    grid = coordinate_grid(h, w, like=img).expand(n, h, w, 2)
    return F.grid_sample(img, torch.einsum("nij,nhwj->nhwi", a, grid) + b.view(n, 1, 1, 2), align_corners=False)


class Audio2HeadTrainer:
    def __init__(self, cfg: Audio2HeadTrainConfig, out: str | Path, device: str = "cpu",
                 train: list[TrainClip] | None = None, val: list[TrainClip] | None = None) -> None:
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.g = torch.Generator().manual_seed(cfg.seed)
        self.train, self.val = train or [], val
        w = cfg.width
        self.nets = {"audio2pose": Audio2Pose(w), "audio2kp": Audio2Kp(w), "generator": OcclusionAwareGenerator(w),
                     "kp_detector": KPDetector(w)}
        for m in self.nets.values():
            m.to(device)
        self.pyramid = [AntiAliasInterpolation2d(3, s).to(device) for s in (0.5, 0.25, 0.125)]
        params = {"kp": [*self.nets["kp_detector"].parameters(), *self.nets["generator"].parameters()],
                  "audio2kp": list(self.nets["audio2kp"].parameters()),
                  "pose": list(self.nets["audio2pose"].parameters())}
        self.opts = {k: torch.optim.Adam(v, lr=cfg.lr, betas=(0.5, 0.999)) for k, v in params.items()}
        self.step = dict.fromkeys(STAGES, 0)
        self.commands: list[str] = []
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.mouth_terms: list[dict] = []  # kp steps trained with the mouth term (talkbench.training.record_loss_term)
        self._kp_saved, self._mouth_used = 0, False

    # ------------------------------------------------------------------ state
    def save(self) -> None:
        # the kp steps since the last save were trained with this run's mouth term (none at weight 0)
        weight = self.cfg.mouth_weight if self._mouth_used else 0.0
        record_loss_term(self.mouth_terms, "kp", weight, self._kp_saved, self.step["kp"])
        self._kp_saved, self._mouth_used = self.step["kp"], False
        state = {"nets": {k: m.state_dict() for k, m in self.nets.items()},
                 "opts": {k: o.state_dict() for k, o in self.opts.items()}}
        tmp = self.out / ".state.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(self.out / "state.pt")
        (self.out / "state.json").write_text(json.dumps({"step": self.step, "seconds": self.seconds,
                                                         "mouth_terms": self.mouth_terms,
                                                         "config": asdict(self.cfg), "commands": self.commands}))

    def resume(self) -> bool:
        if not (self.out / "state.json").exists():
            return False
        s = json.loads((self.out / "state.json").read_text())
        if float(s["config"]["width"]) != self.cfg.width:
            raise ConfigError(f"the run was trained at width {s['config']['width']}, not {self.cfg.width}",
                              self.out / "state.json")
        state = torch.load(self.out / "state.pt", map_location=self.device, weights_only=True)
        for k, m in self.nets.items():
            m.load_state_dict(state["nets"][k])
        for k, o in self.opts.items():
            o.load_state_dict(state["opts"][k])
        self.step.update(s["step"])
        self.mouth_terms = list(s.get("mouth_terms", []))
        self._kp_saved = self.step["kp"]
        self.seconds.update(s.get("seconds", {}))
        self.commands = list(s.get("commands", [])) + self.commands
        return True

    def _log(self, **row) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def _autocast(self):
        if self.device.startswith("cuda") and self.cfg.amp == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    # ------------------------------------------------------------------ stage 1: keypoints + generator
    def kp_batch(self, clips: list[TrainClip], rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Source and driving frames of one clip per pair, and the driving frames' mouth masks when the
        mouth term is on and every clip has boxes."""
        src, drv, boxes = [], [], []
        for _ in range(self.cfg.batch_size):
            c = clips[int(rng.integers(len(clips)))]
            i, j = rng.integers(len(c.frames), size=2)
            src.append(c.frames[i])
            drv.append(c.frames[j])
            boxes.append(None if c.mouth is None else c.mouth[j])
        mask = None
        if self.cfg.mouth_weight > 0 and all(b is not None for b in boxes):
            mask = box_mask(np.stack(boxes), IMAGE_SIZE).to(self.device)
        return to_images(np.stack(src)).to(self.device), to_images(np.stack(drv)).to(self.device), mask

    def kp_losses(self, src: torch.Tensor, drv: torch.Tensor, mask: torch.Tensor | None,
                  g: torch.Generator) -> dict[str, torch.Tensor]:
        kpd, gen = self.nets["kp_detector"], self.nets["generator"]
        kp_s, kp_d = kpd(src), kpd(drv)
        pred = gen(src, kp_d, kp_s)["prediction"].float()
        rec = F.l1_loss(pred, drv) + sum(F.l1_loss(p(pred), p(drv)) for p in self.pyramid)
        a, b = (t.to(self.device) for t in random_affine(len(drv), g))
        kp_t = kpd(warp_affine(drv, a, b))
        mapped = torch.einsum("nij,nkj->nki", a, kp_t["value"]) + b[:, None]
        eq_value = (kp_d["value"] - mapped).abs().mean()
        jac_t = torch.matmul(a[:, None], kp_t["jacobian"])
        eye = torch.eye(2, device=src.device)
        eq_jac = (eye - torch.matmul(torch.inverse(kp_d["jacobian"]), jac_t)).abs().mean()
        cfg = self.cfg
        total = cfg.recon_weight * rec + cfg.equivariance_weight * (eq_value + eq_jac)
        out = {"recon": rec, "eq_value": eq_value, "eq_jacobian": eq_jac}
        if mask is not None:
            # Deviation (card): the whole-frame L1 lets the keypoints ignore a small mouth; this pays for it
            mouth = ((pred - drv).abs() * mask).sum() / (3 * mask.sum()).clamp(min=1)
            total = total + cfg.mouth_weight * mouth
            out["mouth"] = mouth
        return {"loss": total, **out}

    # ------------------------------------------------------------------ stage 2: audio -> keypoints
    def audio2kp_batch(self, clips: list[TrainClip], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        posed = [c for c in clips if c.poses is not None]
        if not posed:
            raise ConfigError("the audio2kp stage needs head poses (synthetic corpus clips)")
        c = posed[int(rng.integers(len(posed)))]
        t = len(c.frames)
        start = int(rng.integers(max(1, t - SEQ_LEN + 1)))
        n = min(SEQ_LEN, t - start)
        audio = np.zeros((SEQ_LEN, ROWS_PER_FRAME, c.blocks.shape[-1]), np.float32)
        audio[:n] = c.blocks[start : start + n]
        with torch.no_grad():
            kpd = self.nets["kp_detector"].eval()
            target = kpd(to_images(c.frames[start : start + n]).to(self.device))
        return {"audio": torch.from_numpy(audio)[None], "pose": torch.from_numpy(pose_maps(c.poses, start))[None],
                "id_img": to_images(c.frames[:1]), "value": target["value"], "jacobian": target["jacobian"],
                "n": torch.tensor(n)}

    def audio2kp_losses(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = {k: v.to(self.device) for k, v in b.items()}
        n = int(b["n"])
        with self._autocast():
            out = self.nets["audio2kp"](b["audio"], b["pose"], b["id_img"])
        value = F.l1_loss(out["value"][0, :n].float(), b["value"])
        jac = F.l1_loss(out["jacobian"][0, :n].float(), b["jacobian"])
        return {"loss": value + self.cfg.jacobian_weight * jac, "value": value, "jacobian": jac}

    # ------------------------------------------------------------------ stage 3: audio -> pose
    def pose_batch(self, clips: list[TrainClip], rng: np.random.Generator) -> dict[str, torch.Tensor]:
        posed = [c for c in clips if c.poses is not None]
        if not posed:
            raise ConfigError("the pose stage needs head poses (synthetic corpus clips)")
        length = self.cfg.pose_frames
        imgs, audio, target = [], [], []
        for _ in range(self.cfg.batch_size):
            c = posed[int(rng.integers(len(posed)))]
            s = int(rng.integers(len(c.frames) - length + 1))
            imgs.append(c.frames[s])
            audio.append(c.blocks[s : s + length])
            target.append(c.poses[s : s + length])
        return {"img": to_images(np.stack(imgs)), "audio": torch.from_numpy(np.stack(audio)),
                "target": torch.from_numpy(np.stack(target).astype(np.float32))}

    def pose_losses(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        b = {k: v.to(self.device) for k, v in b.items()}
        with self._autocast():
            out = self.nets["audio2pose"](b["img"], b["audio"]).float()
        # row t (audio up to frame t - 1; row 0 from the image) is frame t's pose, as at inference
        loss = F.l1_loss(out[:, : b["target"].shape[1]], b["target"])
        return {"loss": loss}

    # ------------------------------------------------------------------ loop
    def _losses(self, stage: str, clips: list[TrainClip], rng: np.random.Generator, g: torch.Generator):
        if stage == "kp":
            return self.kp_losses(*self.kp_batch(clips, rng), g)
        if stage == "audio2kp":
            return self.audio2kp_losses(self.audio2kp_batch(clips, rng))
        return self.pose_losses(self.pose_batch(clips, rng))

    def _modules(self, stage: str) -> list[str]:
        return {"kp": ["kp_detector", "generator"], "audio2kp": ["audio2kp"], "pose": ["audio2pose"]}[stage]

    def train_step(self, stage: str) -> dict[str, float]:
        for name, m in self.nets.items():
            m.train(name in self._modules(stage))
        losses = self._losses(stage, self.train, self.rng, self.g)
        self._mouth_used |= "mouth" in losses
        self.opts[stage].zero_grad()
        losses["loss"].backward()
        self.opts[stage].step()
        return {k: float(v.detach()) for k, v in losses.items()}

    @torch.no_grad()
    def evaluate(self, stage: str, batches: int = 2) -> float:
        for m in self.nets.values():
            m.eval()
        rng, g = np.random.default_rng(1234), torch.Generator().manual_seed(1234)
        clips = self.val or self.train
        return float(np.mean([float(self._losses(stage, clips, rng, g)["loss"]) for _ in range(batches)]))

    def fit(self, stages: tuple[str, ...] = STAGES, budget_s: dict[str, float] | None = None,
            log=print) -> dict[str, float]:
        """Train each stage to its step count (or its seconds budget, whichever comes first)."""
        cfg = self.cfg
        steps = {"kp": cfg.kp_steps, "audio2kp": cfg.audio2kp_steps, "pose": cfg.pose_steps}
        metrics: dict[str, float] = {}
        for stage in stages:
            t0 = began = time.perf_counter()
            start_step = self.step[stage]
            while self.step[stage] < steps[stage]:
                if budget_s and time.perf_counter() - began > budget_s.get(stage, float("inf")):
                    break
                row = self.train_step(stage)
                self.step[stage] += 1
                if self.step[stage] % cfg.eval_every == 0 or self.step[stage] == steps[stage]:
                    row["val_loss"] = self.evaluate(stage)
                    self.seconds[stage] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    self.save()
                    log(f"{stage} step {self.step[stage]}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items()))
                self._log(stage=stage, step=self.step[stage], **row)
            self.seconds[stage] += time.perf_counter() - t0
            done = self.step[stage] - start_step
            metrics[f"{stage}_val_loss"] = self.evaluate(stage)
            metrics[f"{stage}_steps"] = self.step[stage]
            if done and self.seconds[stage] > 0:
                metrics[f"{stage}_steps_per_s"] = round(self.step[stage] / self.seconds[stage], 4)
            self.save()
        return metrics
