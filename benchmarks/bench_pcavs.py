"""PC-AVS speed and memory on this machine: official-size generation (the four networks at width 1,
224 px, seeded weights from the official key list: speed only) through the model alone at batch 16
(the official ``--batchSize``) and 1, with peak resident memory; the adapter's alignment (warp + crop +
resize per frame); the audio front-end; and synthetic-preset training steps/s.
Run: ``python -m benchmarks.bench_pcavs [--threads N] [--frames N] [--steps N]``. GPU: not measured here."""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

LAYOUTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "official-layouts" / "pcavs_keys.json"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def official_model():
    from baselines.pcavs.model import NETWORKS, PCAVS, PCAVSConfig
    from baselines.pcavs.seeded import model_layout, seeded_state_dict

    model = PCAVS(PCAVSConfig())
    layout = json.loads(LAYOUTS.read_text()) if LAYOUTS.exists() else None
    for net in NETWORKS:
        part = getattr(model, net)
        part.load_state_dict(seeded_state_dict(net, layout[net] if layout else model_layout(part)))
    return model.eval()


def bench_generation(frames: int) -> dict:
    model = official_model()
    rng = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 3, 224, 224, generator=rng) * 2 - 1
    out = {}
    for batch in (16, 1):
        spec = torch.rand(batch, 1, 80, 20, generator=rng)
        pose = torch.rand(batch, 3, 224, 224, generator=rng) * 2 - 1
        with torch.no_grad():
            model.generate(ref, spec, pose, rng)  # warm-up
            t0 = time.perf_counter()
            done = 0
            while done < frames:
                model.generate(ref, spec, pose, rng)
                done += batch
            dt = time.perf_counter() - t0
        out[f"official_fps_batch{batch}"] = round(done / dt, 3)
    out["peak_rss_mb"] = round(_peak_mb(), 1)
    return out


def bench_alignment(frames: int = 100) -> dict:
    from baselines.pcavs.align import TEMPLATE, similarity, to_model_input
    from baselines.pcavs.audio import frame_windows, melspectrogram

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (frames, 128, 128, 3), dtype=np.uint8)
    m = similarity(np.array([[40.0, 45], [88, 45], [64, 96]]), TEMPLATE)
    t0 = time.perf_counter()
    for f in imgs:
        to_model_input(f, m)
    align_fps = frames / (time.perf_counter() - t0)
    audio = (rng.standard_normal(frames * 640) * 0.1).astype(np.float32)
    t0 = time.perf_counter()
    frame_windows(melspectrogram(audio), frames)
    audio_fps = frames / (time.perf_counter() - t0)
    return {"alignment_fps": round(align_fps, 1), "audio_frontend_fps": round(audio_fps, 1)}


def bench_training(steps: int) -> dict:
    import tempfile

    from baselines.pcavs.train import PCAVSClips, PCAVSTrainConfig, PCAVSTrainer

    cfg = PCAVSTrainConfig()
    rng = np.random.default_rng(0)
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48], lm[60:68] = (45, 55), (83, 55), (64, 95)
    clips = PCAVSClips([(f"c{i}", *PCAVSClips.prepare(rng.integers(0, 255, (20, 128, 128, 3), dtype=np.uint8),
                                                      (rng.standard_normal(12800) * 0.1).astype(np.float32),
                                                      cfg.size, lm)) for i in range(8)])
    with tempfile.TemporaryDirectory() as d:
        tr = PCAVSTrainer(cfg, d, "cpu", clips)
        tr.train_step()
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.train_step()
        return {"train_steps_per_s": round(steps / (time.perf_counter() - t0), 3),
                "train_preset": f"width {cfg.width}, size {cfg.size}, batch {cfg.batch_size}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    args, _ = ap.parse_known_args()  # also run from benchmarks/__main__ with its own argv
    torch.set_num_threads(args.threads)
    res = {"threads": args.threads, **bench_alignment(), **bench_training(args.steps), **bench_generation(args.frames)}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
