"""Audio2Head speed on this machine: the 41-d feature extraction (times real time, on real speech when
../shared/data/real is there, else the synthetic test signal), and generation through the native
pipeline at the official size (seeded stand-in weights: speed only) for one 64-frame window (48
frames kept), split into audio2pose, audio2kp (per window) and generator (per frame), with peak memory
(CPU: peak resident set growth; CUDA: max allocated). ``--width`` adds a width-scaled run, ``--train``
times one training step per stage of the synthetic preset.

Run: ``python -m benchmarks.bench_audio2head [--device cuda] [--threads 1] [--width 0.125] [--train]``.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch

REAL_SPEECH = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "speech" / "RD_Radio31_000.wav"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_features() -> None:
    from baselines.audio2head.preprocess import audio_features
    from baselines.audio2head.seeded import synthetic_speech

    if REAL_SPEECH.exists():
        from scipy.io import wavfile

        sr, audio = wavfile.read(REAL_SPEECH)
        label = REAL_SPEECH.name
    else:
        sr, audio, label = 16000, synthetic_speech(8.0), "synthetic speech"
    seconds = len(audio) / sr
    audio_features(audio[: sr // 2], sr)  # warm-up (imports)
    t0 = time.perf_counter()
    feats = audio_features(audio, sr)
    dt = time.perf_counter() - t0
    print(f"features ({label}, {seconds:.1f} s, {sr} Hz {audio.ndim}-D): {dt:.2f} s -> {seconds / dt:.1f}x real time "
          f"({len(feats)} rows)")


@torch.no_grad()
def bench_generation(width: float, device: str) -> None:
    from baselines.audio2head.preprocess import denormalise_pose, window_inputs
    from baselines.audio2head.seeded import seeded_blocks, seeded_networks, synthetic_image

    nets = {k: m.to(device) for k, m in seeded_networks(width).items()}
    img = torch.from_numpy(synthetic_image(1).astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous().to(device)
    frames = 48
    blocks = seeded_blocks(2, frames).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    poses = nets["audio2pose"](img, blocks)[0].cpu().numpy()
    sync()
    t_pose = time.perf_counter() - t0
    rot, trans = denormalise_pose(poses)
    a, p = window_inputs(blocks[0].cpu().numpy(), rot, trans, 0)
    t0 = time.perf_counter()
    kp_src = nets["kp_detector"](img)
    kp = nets["audio2kp"](torch.from_numpy(a)[None].to(device), torch.from_numpy(p)[None].to(device), img)
    sync()
    t_kp = time.perf_counter() - t0
    src = {k: kp_src[k] for k in ("value", "jacobian")}
    batch = 8
    t0 = time.perf_counter()
    for i in range(0, frames, batch):
        s = {k: v.expand(batch, *v.shape[1:]) for k, v in src.items()}
        d = {k: kp[k][0, i : i + batch] for k in ("value", "jacobian")}
        nets["generator"](img.expand(batch, -1, -1, -1), d, s)
    sync()
    t_gen = time.perf_counter() - t0
    total = t_pose + t_kp + t_gen
    mem = (f"peak CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if device.startswith("cuda")
           else f"peak RSS growth {_rss_mb() - rss0:.0f} MiB (process peak {_rss_mb():.0f} MiB)")
    print(f"width {width:g} on {device} ({torch.get_num_threads()} threads): {frames} frames in {total:.1f} s -> "
          f"{frames / total:.2f} frames/s [audio2pose {t_pose:.2f} s, kp_detector+audio2kp window {t_kp:.2f} s, "
          f"generator {t_gen / frames:.3f} s/frame (batch {batch})]; {mem}")


def bench_training(width: float, device: str) -> None:
    from baselines.audio2head.train import STAGES, Audio2HeadTrainConfig, Audio2HeadTrainer, TrainClip

    rng = np.random.default_rng(0)
    clips = [TrainClip("c", rng.integers(0, 255, (64, 128, 128, 3), dtype=np.uint8),
                       rng.normal(0, 3, (64, 4, 41)).astype(np.float32),
                       np.clip(rng.normal(0, 0.2, (64, 6)), -1, 1).astype(np.float32))]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tr = Audio2HeadTrainer(Audio2HeadTrainConfig(width=width), d, device, train=clips)
        for stage in STAGES:
            tr.train_step(stage)  # warm-up
            t0 = time.perf_counter()
            tr.train_step(stage)
            dt = time.perf_counter() - t0
            print(f"train {stage} (width {width:g}, batch {tr.cfg.batch_size if stage != 'audio2kp' else 1}): "
                  f"{1 / dt:.3f} steps/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--width", type=float, default=None, help="also time this width")
    ap.add_argument("--train", action="store_true", help="time one training step per stage at --width (0.125)")
    ap.add_argument("--skip-official", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    bench_features()
    if not args.skip_official:
        bench_generation(1.0, args.device)
    if args.width:
        bench_generation(args.width, args.device)
    if args.train:
        bench_training(args.width or 0.125, args.device)


if __name__ == "__main__":
    main()
