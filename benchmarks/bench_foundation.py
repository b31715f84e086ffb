"""Foundation throughput: decode + resample + detect + track + crop (+ landmarks) on the real videos,
cold vs warm cache, and peak memory of the streaming decoder on a 10-minute video.

Run: ``python -m benchmarks.bench_foundation``. Real-time factor = video seconds / wall seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "videos"


def crop_throughput() -> None:
    from talkbench.faces.crop import load_clip
    from talkbench.types import Sample

    videos = sorted(REAL.glob("*.mp4")) if REAL.exists() else []
    if not videos:
        print("real videos not found; skipping crop throughput")
        return
    for landmarks in (False, True):
        frames = 0
        t0 = time.perf_counter()
        for v in videos:
            clip = load_clip(Sample("folder", "bench", v.name, v), cache=True, landmarks=landmarks)
            frames += clip.num_frames
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        for v in videos:
            load_clip(Sample("folder", "bench", v.name, v), cache=True, landmarks=landmarks)
        warm = time.perf_counter() - t0
        print(f"crop (landmarks={landmarks}): {frames} frames from {len(videos)} videos; cold {frames / cold:.0f} frames/s "
              f"= {frames / 25 / cold:.1f}x real time; warm (cached) {frames / warm:.0f} frames/s "
              f"= {cold / warm:.0f}x faster than cold")


_STREAM = """
import sys
from talkbench.io.video import iter_video
n = 0
for chunk in iter_video(sys.argv[1], fps=25.0, chunk_frames=250):
    n += len(chunk)
# VmHWM (not ru_maxrss, which Linux carries over from the parent across exec)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(n, int(hwm.split()[1]) // 1024)
"""


def streaming_memory(minutes: float = 10.0) -> None:
    import numpy as np

    from talkbench.io.video import write_video

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "long.mp4"
        n = int(minutes * 60 * 25)
        t0 = time.perf_counter()
        # 160x160 noise-free moving gradient: cheap to encode, realistic decode cost per frame.
        base = np.add.outer(np.arange(160), np.arange(160)).astype(np.uint8)
        frames = np.stack([np.roll(base, t, axis=1)[..., None].repeat(3, 2) for t in range(250)])
        import av  # write in pieces so the benchmark itself stays small in memory

        with av.open(str(path), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width = s.height = 160
            s.pix_fmt = "yuv420p"
            s.options = {"preset": "ultrafast"}
            for i in range(n):
                for p in s.encode(av.VideoFrame.from_ndarray(frames[i % 250], format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        del frames, write_video
        made = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _STREAM, str(path)], capture_output=True, text=True, check=True,
                             env={**os.environ})
        count, peak_mb = map(int, out.stdout.split())
        dt = time.perf_counter() - t0
        full_mb = count * 160 * 160 * 3 / 2**20
        print(f"streaming decode of a {minutes:.0f}-min 160px video ({count} frames, made in {made:.0f} s): "
              f"{count / dt:.0f} frames/s, peak RSS {peak_mb} MiB vs {full_mb:.0f} MiB to hold all frames")


def main() -> None:
    print(f"machine: {os.cpu_count()} cpus")
    crop_throughput()
    streaming_memory()


if __name__ == "__main__":
    main()
