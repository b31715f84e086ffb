"""LSE: ours (batched, whole-clip lip pass) vs syncnet_python's ``SyncNetInstance.evaluate`` on the
same frames, audio and weights (random-init weights in the official layout: speed only), on a real
224x224 clip. Run: ``python -m benchmarks.bench_critics``."""

from __future__ import annotations

import tempfile
import time
import types
from pathlib import Path

import cv2
import numpy as np
import torch

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "videos" / "vox_00015.mp4"


def main() -> None:
    from scipy.io import wavfile

    from talkbench.critics.syncnet import SyncNetS
    from talkbench.io.audio import load_audio
    from talkbench.io.video import read_video
    from talkbench.metrics.functional.sync import lse
    from tests.test_critics_syncnet import _reference_module

    if not REAL.exists():
        print("real clip not found; skipping")
        return
    frames = read_video(REAL)
    audio = load_audio(REAL, 16000)[: len(frames) * 640]
    torch.manual_seed(0)
    model = SyncNetS().eval()
    mods = _reference_module()
    with tempfile.TemporaryDirectory() as d:
        for i, f in enumerate(frames):
            cv2.imwrite(f"{d}/{i + 1:06d}.jpg", f[:, :, ::-1])
        wavfile.write(f"{d}/audio.wav", 16000, np.round(audio * 32767).astype(np.int16))
        bgr = np.stack([cv2.imread(f"{d}/{i + 1:06d}.jpg") for i in range(len(frames))])
        _, pcm = wavfile.read(f"{d}/audio.wav")
        net = mods["SyncNetModel"].S()
        net.load_state_dict(model.state_dict(), strict=False)
        inst = mods["SyncNetInstance"].SyncNetInstance(net, device="cpu")
        t0 = time.perf_counter()
        ref = inst.evaluate(types.SimpleNamespace(tmp_dir=d, batch_size=20, vshift=15))
        t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = lse(model, bgr, pcm.astype(np.float64))
    t_ours = time.perf_counter() - t0
    dur = len(frames) / 25
    print(f"LSE on a {dur:.2f} s 224x224 clip ({torch.get_num_threads()} threads): syncnet_python evaluate "
          f"{t_ref:.2f} s, ours {t_ours:.2f} s -> {t_ref / t_ours:.2f}x; "
          f"|dLSE-D| {abs(ours.lse_d - ref[2]):.2e}, |dLSE-C| {abs(ours.lse_c - ref[1]):.2e}, "
          f"offset {ours.av_offset} vs {ref[0]}; ours = {dur / t_ours:.1f}x real time")


if __name__ == "__main__":
    main()
