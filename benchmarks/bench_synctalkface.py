"""SyncTalkFace speed on this machine: generation frames/s through the Method adapter (128 px, batched,
mel and conversions included) for the authors' size (width 1.0, random weights: speed only) and the
synthetic preset (the shipped checkpoint if present, else a random width-0.125 model), and training
steps/s of the synthetic preset (expert, generator with the memory losses, GAN) on random clips.
Run: ``python -m benchmarks.bench_synctalkface [--threads N] [--device cuda]``."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

FRAMES = 100  # 4 s at 25 fps


def _request(rng: np.random.Generator):
    from talkbench.types import GenRequest

    pose = rng.integers(0, 255, (FRAMES, 128, 128, 3), dtype=np.uint8)
    audio = (rng.standard_normal(FRAMES * 640) * 0.1).astype(np.float32)
    return GenRequest("bench", pose[0], pose, audio)


def generation(device: str, rng: np.random.Generator) -> None:
    from baselines.synctalkface.adapter import SyncTalkFaceMethod
    from baselines.synctalkface.model import SyncTalkFace
    from talkbench.weights import save_weights, shipped_weights

    req = _request(rng)
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        paths = {}
        for width in (1.0, 0.125):
            paths[width] = Path(d) / f"w{width}.safetensors"
            save_weights(paths[width], SyncTalkFace(width).state_dict(), {"command": "bench (random)"})
        shipped = shipped_weights("synctalkface-synth")
        for label, path in (("width 1.0 (authors' size, random)", paths[1.0]),
                            ("shipped synctalkface-synth" if shipped else "width 0.125 (preset, random)", shipped or paths[0.125])):
            m = SyncTalkFaceMethod()
            m.load(device, weights=path)
            m.generate([_request(rng)])  # warm-up
            t0 = time.perf_counter()
            res = m.generate([req])[0]
            dt = time.perf_counter() - t0
            assert res.error is None, res.error
            print(f"generation, {label} on {device} ({torch.get_num_threads()} threads): {FRAMES / dt:.1f} frames/s "
                  f"({FRAMES / dt / 25:.2f}x real time at 25 fps)")


def training(device: str, rng: np.random.Generator, steps: int = 3) -> None:
    from baselines.synctalkface.train import SyncTalkFaceTrainConfig, SyncTalkFaceTrainer
    from baselines.wav2lip.train import Wav2LipClips
    from talkbench.io.audio import wav2lip_mel

    clips = Wav2LipClips([(f"c{i}", rng.integers(0, 255, (40, 128, 128, 3), dtype=np.uint8),
                           wav2lip_mel((rng.standard_normal(40 * 640) * 0.1).astype(np.float32))) for i in range(4)])
    cfg = SyncTalkFaceTrainConfig(width=0.125, batch_size=8, expert_batch_size=32)
    with tempfile.TemporaryDirectory() as d:
        tr = SyncTalkFaceTrainer(cfg, d, device, train=clips)
        for label, step in (("expert (batch 32)", tr.expert_step), ("generator (batch 8)", tr.generator_step),
                            ("generator + GAN (batch 8)", lambda: tr.generator_step(gan=True))):
            step()  # warm-up
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            dt = (time.perf_counter() - t0) / steps
            print(f"training, width 0.125 {label} on {device}: {1 / dt:.2f} steps/s ({dt:.2f} s/step)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-training", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    generation(args.device, rng)
    if not args.skip_training:
        training(args.device, rng)


if __name__ == "__main__":
    main()
