"""Wav2Lip generation speed at 96 px on this machine, through the Method adapter (batched, 64 frames a
forward, mel + resizes included) against the same model fed one frame at a time (the reference,
measured in the same run), for the official width (1.0, random weights: speed only) and the shipped
synthetic width, and CALS's shipped model through its adapter on the same request. Run: ``python -m benchmarks.bench_wav2lip``."""

from __future__ import annotations

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


def _one_frame_at_a_time(model: torch.nn.Module, req) -> float:
    """Seconds for the model alone, batch 1 (inputs prepared beforehand)."""
    from baselines.wav2lip.preprocess import mel_chunks, model_inputs
    from talkbench.io.audio import wav2lip_mel

    chunks = torch.from_numpy(mel_chunks(wav2lip_mel(req.audio), req.num_frames, req.fps))[:, None]
    faces = torch.from_numpy(model_inputs(req.pose_prior, req.reference))
    with torch.no_grad():
        t0 = time.perf_counter()
        for i in range(req.num_frames):
            model(chunks[i : i + 1], faces[i : i + 1])
        return time.perf_counter() - t0


def main() -> None:
    from baselines.wav2lip.adapter import Wav2LipMethod
    from baselines.wav2lip.model import Wav2Lip
    from talkbench.weights import save_weights, shipped_weights

    rng = np.random.default_rng(0)
    req = _request(rng)
    shipped = shipped_weights("wav2lip-synth")
    with tempfile.TemporaryDirectory() as d:
        torch.manual_seed(0)
        official = Path(d) / "w1.safetensors"
        save_weights(official, Wav2Lip(1.0).state_dict(), {"config": {"width": 1.0}, "command": "bench (random)"})
        for label, path in (("width 1.0 (official size)", official), ("shipped wav2lip-synth", shipped)):
            if path is None:
                print(f"{label}: not found, skipped")
                continue
            m = Wav2LipMethod()
            m.load(weights=path)
            m.generate([_request(rng)])  # warm-up
            t0 = time.perf_counter()
            res = m.generate([req])[0]
            t_ours = time.perf_counter() - t0
            assert res.error is None
            t_ref = _one_frame_at_a_time(m.model, req)
            print(f"{label} ({torch.get_num_threads()} threads): adapter {FRAMES / t_ours:.1f} frames/s "
                  f"(batched, end to end) vs model-only batch 1 {FRAMES / t_ref:.1f} frames/s -> "
                  f"{t_ref / t_ours:.2f}x; {FRAMES / t_ours / 25:.2f}x real time at 25 fps")
    _cals_next_to_it(rng, req)


def _cals_next_to_it(rng: np.random.Generator, req) -> None:
    """CALS's shipped model on the same request, through its adapter (the issue asks for both)."""
    from talkbench.methods import METHODS
    from talkbench.weights import shipped_weights

    if shipped_weights("cals-synth") is None:
        print("CALS: talkbench/checkpoints/cals-synth.safetensors not found, skipped")
        return
    m = METHODS.get("cals")()
    m.load()
    m.generate([_request(rng)])  # warm-up
    t0 = time.perf_counter()
    res = m.generate([req])[0]
    dt = time.perf_counter() - t0
    print(f"CALS shipped cals-synth ({torch.get_num_threads()} threads): adapter {FRAMES / dt:.1f} frames/s "
          f"(error: {res.error})" if res.error else
          f"CALS shipped cals-synth ({torch.get_num_threads()} threads): adapter {FRAMES / dt:.1f} frames/s, "
          f"{FRAMES / dt / 25:.2f}x real time")


if __name__ == "__main__":
    main()
