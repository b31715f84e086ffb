"""Run an official repository's own inference command per sample, described in YAML.

```yaml
name: wav2lip-official
command: ["{python}", "inference.py", "--checkpoint_path", "checkpoints/wav2lip_gan.pth",
          "--face", "{pose_video}", "--audio", "{audio}", "--outfile", "{output}"]
cwd: /path/to/Wav2Lip
env: {CUDA_VISIBLE_DEVICES: "0"}
timeout: 600          # seconds per sample
crop: auto            # how to read the output: auto (detect + crop) or none (already the crop)
inputs: {face: reference}   # what {face_video} shows: "reference" (the reference frame as a still video) or "pose_prior"
```

Placeholders: ``{python}`` (this interpreter), ``{reference}`` (PNG of the reference frame),
``{face_video}`` (mp4 per ``inputs.face``), ``{pose_video}`` (mp4 of the pose prior),
``{audio}`` (16 kHz wav), ``{output}`` (mp4 path the command must write), ``{workdir}``,
``{sample_id}``. The command is an argument list (never a shell string); each argument is formatted
separately. A non-zero exit code, a timeout or a missing output fails that sample with the log's
tail; logs are kept in ``<workdir>/<sample>/log.txt``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from talkbench.errors import ConfigError, MethodError, TalkbenchError
from talkbench.methods.base import Method
from talkbench.methods.precomputed import frames_for_request
from talkbench.types import GenRequest, GenResult, MethodCard

KNOWN_KEYS = {"name", "command", "cwd", "env", "timeout", "crop", "inputs"}


@dataclass(frozen=True)
class ExternalConfig:
    name: str
    command: tuple[str, ...]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    crop: str = "auto"
    face_input: str = "reference"

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExternalConfig:
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read external-method YAML ({exc})", p) from exc
        if not isinstance(raw, dict):
            raise ConfigError("external-method YAML must be a mapping", p)
        unknown = set(raw) - KNOWN_KEYS
        if unknown:
            raise ConfigError(f"unknown keys: {', '.join(sorted(unknown))} (known: {', '.join(sorted(KNOWN_KEYS))})", p)
        cmd = raw.get("command")
        if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
            raise ConfigError("'command' must be a non-empty list of strings (an argument list, not a shell string)", p)
        crop = raw.get("crop", "auto")
        if crop not in ("auto", "none"):
            raise ConfigError(f"crop must be auto or none, got {crop!r}", p)
        face = (raw.get("inputs") or {}).get("face", "reference")
        if face not in ("reference", "pose_prior"):
            raise ConfigError(f"inputs.face must be reference or pose_prior, got {face!r}", p)
        return cls(name=str(raw.get("name", p.stem)), command=tuple(cmd), cwd=raw.get("cwd"),
                   env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
                   timeout=float(raw.get("timeout", 600)), crop=crop, face_input=face)


def _write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


class ExternalMethod(Method):
    """``--methods external --weights external=method.yaml``."""

    card = MethodCard(name="external", version="1", native_size=0, notes="an external command per sample")

    def __init__(self, config: ExternalConfig | None = None, workdir: str | Path | None = None) -> None:
        self.config = config
        self.workdir = Path(workdir) if workdir else None
        self.yaml_path: Path | None = None

    def load(self, device: str = "cpu", weights: str | Path | None = None) -> None:
        if weights:
            self.yaml_path = Path(weights)
            self.config = ExternalConfig.from_yaml(weights)
        if self.config is None:
            raise MethodError("external needs a YAML description: --weights external=method.yaml")
        self.workdir = self.workdir or Path(tempfile.mkdtemp(prefix=f"talkbench-{self.config.name}-"))

    def weights_info(self) -> dict:
        from talkbench.weights import weights_record

        return weights_record(self.yaml_path) if self.yaml_path else {}

    def _run_one(self, r: GenRequest) -> GenResult:
        from talkbench.io.video import write_video

        cfg = self.config
        safe = r.sample_id.replace("/", "__")
        work = self.workdir / safe
        work.mkdir(parents=True, exist_ok=True)
        ref_png, audio_wav = work / "reference.png", work / "audio.wav"
        cv2.imwrite(str(ref_png), cv2.cvtColor(r.reference, cv2.COLOR_RGB2BGR))
        _write_wav(audio_wav, r.audio, r.sample_rate)
        pose = write_video(work / "pose_prior.mp4", r.pose_prior, r.audio, r.fps, r.sample_rate)
        face = pose if cfg.face_input == "pose_prior" else write_video(
            work / "face.mp4", np.repeat(r.reference[None], r.num_frames, axis=0), r.audio, r.fps, r.sample_rate)
        output = work / "output.mp4"
        values = {"python": sys.executable, "reference": ref_png, "face_video": face, "pose_video": pose,
                  "audio": audio_wav, "output": output, "workdir": work, "sample_id": r.sample_id}
        try:
            args = [a.format(**{k: str(v) for k, v in values.items()}) for a in cfg.command]
        except (KeyError, IndexError) as exc:
            raise MethodError(f"unknown placeholder {exc} in the command template") from exc
        log = work / "log.txt"
        try:
            with open(log, "w") as lf:
                proc = subprocess.run(args, cwd=cfg.cwd, env={**os.environ, **cfg.env}, stdout=lf,
                                      stderr=subprocess.STDOUT, timeout=cfg.timeout, check=False)
        except subprocess.TimeoutExpired:
            return GenResult(r.sample_id, None, error=f"timed out after {cfg.timeout:.0f} s (log: {log})")
        except OSError as exc:
            return GenResult(r.sample_id, None, error=f"cannot start {args[0]!r}: {exc}")
        tail = log.read_text(errors="replace")[-500:]
        if proc.returncode != 0:
            return GenResult(r.sample_id, None, error=f"exit code {proc.returncode}; log tail: {tail}")
        if not output.exists():
            return GenResult(r.sample_id, None, error=f"command succeeded but wrote no {output.name}; log tail: {tail}")
        try:
            frames = frames_for_request(output, r, cfg.crop)
        except TalkbenchError as exc:
            return GenResult(r.sample_id, None, error=str(exc))
        return GenResult(r.sample_id, frames, meta={"log": str(log), "command": args})

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        if self.config is None:
            raise MethodError("call load() first")
        return [self._run_one(r) for r in requests]
