"""Video decoding and encoding with PyAV.

Decoded frames are uint8 RGB ``(T, H, W, 3)``. Variable or odd frame rates are brought to a constant
rate by presentation timestamps: output frame ``k`` (time ``k / fps``) is the last decoded frame whose
timestamp is <= that time (what ``ffmpeg -r 25`` does for frame-rate conversion without
interpolation). :func:`iter_video` streams fixed-size chunks so an hour of video never has to fit in
memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from talkbench.errors import MediaError


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a file."""

    path: str
    fps: float
    num_frames: int
    width: int
    height: int
    duration: float
    has_audio: bool
    audio_rate: int | None
    audio_channels: int | None
    codec: str


def check_media_file(path: str | Path) -> Path:
    """The path, after checking it exists and is not empty (typed errors naming the file)."""
    p = Path(path)
    if not p.exists():
        raise MediaError("file not found", p)
    if p.stat().st_size == 0:
        raise MediaError("zero-length file", p)
    return p


def _open(path: str | Path) -> av.container.InputContainer:
    p = check_media_file(path)
    try:
        return av.open(str(p))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot open as media ({exc})", p) from exc


def probe(path: str | Path) -> VideoInfo:
    """Stream facts without decoding frames."""
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError("no video stream", path)
        vs = c.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else 0.0
        if vs.duration is not None and vs.time_base is not None:
            duration = float(vs.duration * vs.time_base)
        elif c.duration is not None:
            duration = c.duration / av.time_base
        else:
            duration = 0.0
        n = vs.frames or (round(duration * fps) if fps else 0)
        a = c.streams.audio[0] if c.streams.audio else None
        return VideoInfo(
            path=str(path),
            fps=fps,
            num_frames=int(n),
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            duration=duration,
            has_audio=a is not None,
            audio_rate=a.rate if a is not None else None,
            audio_channels=a.channels if a is not None else None,
            codec=vs.codec_context.name,
        )


def declared_video_duration(path: str | Path) -> float | None:
    """Seconds of video the container declares (the video stream's own duration; the container's
    when the stream has none and there is no audio stream that could make it longer); None if unknown."""
    with _open(path) as c:
        if not c.streams.video:
            return None
        vs = c.streams.video[0]
        if vs.duration is not None and vs.time_base is not None:
            return float(vs.duration * vs.time_base)
        if c.duration is not None and not c.streams.audio:
            return c.duration / av.time_base
    return None


def truncation_problem(path: str | Path, decoded_frames: int, fps: float = 25.0) -> str | None:
    """A reason when fewer frames decoded than the container declares (a file cut short, e.g. an
    interrupted download of a faststart mp4), else None. Tolerance: 2 frames or 5% of the duration."""
    declared = declared_video_duration(path)
    decoded = decoded_frames / fps
    if declared is None or declared - decoded <= max(2 / fps, 0.05 * declared):
        return None
    return (f"truncated: {decoded_frames} frames ({decoded:.2f} s) decode but the container declares "
            f"{declared:.2f} s of video")


def _decoded_frames(path: str | Path) -> Iterator[tuple[float, np.ndarray]]:
    """(timestamp in seconds, RGB frame) in presentation order; truncated files end early with an error
    only when nothing at all could be decoded."""
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError("no video stream", path)
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        tb = vs.time_base
        start = vs.start_time if vs.start_time is not None else 0
        count = 0
        try:
            for frame in c.decode(vs):
                pts = frame.pts if frame.pts is not None else frame.dts
                t = float((pts - start) * tb) if (pts is not None and tb is not None) else None
                if t is None:
                    rate = vs.average_rate or 25
                    t = count / float(rate)
                img = frame.to_ndarray(format="rgb24")
                count += 1
                yield t, img
        except av.error.FFmpegError as exc:
            if count == 0:
                raise MediaError(f"cannot decode video ({exc})", path) from exc
            # A truncated tail: keep what decoded (the caller sees fewer frames than the header claims).
        if count == 0:
            raise MediaError("no decodable video frames (empty or truncated file)", path)


class _Chunker:
    """Copies frames into a preallocated ``(n, H, W, 3)`` array, so a chunk costs its own size once
    (a list of frames then ``np.stack`` held it twice)."""

    def __init__(self, chunk_frames: int) -> None:
        self.n, self.buf, self.i = chunk_frames, None, 0

    def add(self, img: np.ndarray) -> np.ndarray | None:
        if self.buf is None:
            self.buf = np.empty((self.n, *img.shape), img.dtype)
        self.buf[self.i] = img
        self.i += 1
        if self.i < self.n:
            return None
        out, self.buf, self.i = self.buf, None, 0
        return out

    def rest(self) -> np.ndarray | None:
        return self.buf[: self.i] if self.buf is not None and self.i else None


def iter_video(path: str | Path, fps: float | None = 25.0, chunk_frames: int = 250) -> Iterator[np.ndarray]:
    """Stream ``(n, H, W, 3)`` uint8 RGB chunks at a constant ``fps`` (``None``: native frames)."""
    chunks = _Chunker(chunk_frames)
    if fps is None:
        for _, img in _decoded_frames(path):
            if (full := chunks.add(img)) is not None:
                yield full
    else:
        k = 0
        prev: np.ndarray | None = None
        t0: float | None = None
        last_t = prev_t = 0.0
        for t, img in _decoded_frames(path):
            if t0 is None:
                t0 = t  # output starts at the first frame, whatever the stream's start offset
            t -= t0
            # Output slot k (time k/fps) shows the last frame whose timestamp is <= k/fps.
            while prev is not None and k / fps < t - 1e-6:
                k += 1
                if (full := chunks.add(prev)) is not None:
                    yield full
            prev, prev_t, last_t = img, last_t, t
        if prev is not None:
            # The last frame lasts one native frame period.
            period = (last_t - prev_t) if last_t > prev_t else 1.0 / fps
            end = last_t + period
            while k / fps < end - 1e-6:
                k += 1
                if (full := chunks.add(prev)) is not None:
                    yield full
    if (rest := chunks.rest()) is not None:
        yield rest


def read_video(path: str | Path, fps: float | None = 25.0) -> np.ndarray:
    """All frames as ``(T, H, W, 3)`` uint8 RGB at constant ``fps`` (``None``: native frames)."""
    chunks = list(iter_video(path, fps=fps))
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def write_video(
    path: str | Path,
    frames: np.ndarray,
    audio: np.ndarray | None = None,
    fps: float = 25.0,
    sample_rate: int = 16000,
    codec: str = "h264",
    crf: int = 18,
    portable: bool = False,
) -> Path:
    """Write frames (and mono float audio) to ``path``.

    ``codec="h264"``: H.264 (yuv420p) + AAC, for mp4. ``codec="pcm"``: H.264 + PCM s16le (use a
    ``.mov`` or ``.mp4`` path) so the audio reads back bit-exact. Odd frame sizes are padded by one
    pixel (yuv420p needs even sizes). Written to a temp name and renamed, so a crash leaves no half file.

    ``portable=True`` (the synthetic corpus): x264's C code paths (``asm=0``), so the same frames give the
    same bytes whatever the process encoded before, and no CPU-specific code path is taken. With its SIMD paths, 160-px frames encoded in one
    process came out different depending on what the process had encoded before (up to 16 grey levels
    in a few frames of about half the clips; measured with libx264 from PyAV 18.1, docs/synthetic-corpus.md),
    and x264's SIMD paths are not bit-exact with its C paths, so they may differ between CPUs as well.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise MediaError(f"frames must be (T,H,W,3) uint8, got {frames.shape} {frames.dtype}", path)
    if len(frames) == 0:
        raise MediaError("no frames to write", path)
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaError(f"cannot create the folder ({exc})", p.parent) from exc
    tmp = p.with_name(f".{p.stem}.tmp{p.suffix}")
    rate = Fraction(fps).limit_denominator(1001)
    try:
        with av.open(str(tmp), mode="w") as c:
            vs = c.add_stream("libx264", rate=rate)
            vs.width, vs.height = frames.shape[2], frames.shape[1]
            vs.pix_fmt = "yuv420p"
            # One thread and a fixed preset; byte-for-byte reproducible only with portable=True (asm=0).
            vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1", **({"x264-params": "asm=0"} if portable else {})}
            vs.codec_context.thread_count = 1
            a_stream = None
            if audio is not None:
                a_stream = c.add_stream("pcm_s16le" if codec == "pcm" else "aac", rate=sample_rate)
                a_stream.layout = "mono"
            for img in frames:
                for packet in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    c.mux(packet)
            for packet in vs.encode():
                c.mux(packet)
            if a_stream is not None:
                x = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
                if codec == "pcm":
                    data = np.round(x * 32767.0).astype(np.int16)[None, :]
                    fmt = "s16"
                else:
                    data, fmt = x[None, :], "fltp"
                block = 1024
                for i in range(0, data.shape[1], block):
                    af = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, i : i + block]), format=fmt, layout="mono")
                    af.sample_rate = sample_rate
                    af.pts = i
                    af.time_base = Fraction(1, sample_rate)
                    for packet in a_stream.encode(af):
                        c.mux(packet)
                for packet in a_stream.encode():
                    c.mux(packet)
        tmp.replace(p)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        # A full disk or an unwritable folder: this item fails, no partial file is left behind.
        tmp.unlink(missing_ok=True)
        raise MediaError(f"cannot write video ({exc})", p) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
