"""The path most users take: a wheel built from this repository, installed into a fresh virtualenv
outside the checkout, runs `talkbench doctor` and a 2-sample `talkbench run --methods cals,wav2lip` with
the shipped checkpoints found as package data."""

from __future__ import annotations

import json
import os
import posixpath
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from talkbench.io.video import write_video
from tests.conftest import talking_frames, tone

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {"cals-synth", "wav2lip-synth", "syncnet-synth", "lipreader-synth"}


def _clean_env() -> dict[str, str]:
    """The environment without PYTHON* variables: a PYTHONPATH onto a checkout would make the fresh
    virtualenv's pip see talkbench as installed (its egg-info) and skip the wheel."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TALKBENCH_WEIGHTS"))}


def _sh(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env if env is not None else _clean_env(), capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"{' '.join(cmd)} -> {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.mark.slow
def test_wheel_installs_and_runs_the_main_job_outside_the_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)], cwd=tmp_path)
    wheel = next(dist.glob("talkbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for n in SHIPPED:  # weights and their cards travel with the package
        assert f"talkbench/checkpoints/{n}.safetensors" in names and f"talkbench/checkpoints/{n}.json" in names
    assert "cals/configs/synth.yaml" in names and not any(n.startswith("tests/") for n in names)
    assert "talkbench/checkpoints/atvgnet-synth-basis.npz" in names  # ATVGnet's landmark basis, beside its weights
    # The default paper config's Table-4 checkpoints resolve inside the package (relative to the YAML).
    paper = yaml.safe_load(zipfile.ZipFile(wheel).read("talkbench/paper/paper-synth.yaml"))
    for f in paper["ablation"]["weights"].values():
        inside = posixpath.normpath(posixpath.join("talkbench/paper", f))
        assert inside in names and inside.replace(".safetensors", ".json") in names, inside
    assert "talkbench/study/templates/app.js" in names  # the user study's page travels too

    venv = tmp_path / "venv"
    _sh([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    # The offline torch first (as the Makefile does); the wheel's range accepts it.
    torch_version = __import__("torch").__version__.split("+")[0]
    _sh([*pip, f"torch=={torch_version}"], cwd=tmp_path)
    _sh([*pip, str(wheel)], cwd=tmp_path)

    work = tmp_path / "elsewhere"
    (work / "clips").mkdir(parents=True)
    for i in range(2):
        write_video(work / "clips" / f"c{i}.mp4", talking_frames(16, size=160, dx=0.5 + i), tone(0.64))
    env = _clean_env()
    env["TALKBENCH_CACHE"] = str(tmp_path / "cache")
    exe = str(venv / "bin" / "talkbench")
    doctor = json.loads(_sh([exe, "doctor", "--json"], cwd=work, env=env).stdout)
    assert {Path(n).stem for n in doctor["shipped_checkpoints"]} >= SHIPPED
    _sh([exe, "run", "--methods", "cals,wav2lip", "--dataset", "folder", "--root", "clips", "--split", "all",
         "--limit", "2", "--metrics", "psnr,lse", "--allow-synthetic-critics", "--run-dir", "run"], cwd=work, env=env)
    record = json.loads((work / "run" / "run.json").read_text())
    assert set(record["methods"]) >= {"cals", "wav2lip", "gt"} and not record["methods_unavailable"]
    for m in ("cals", "wav2lip"):
        assert record["methods"][m]["weights"]["sha256"]
        assert "site-packages" in record["methods"][m]["weights"]["path"]  # the installed copy, not the checkout
    assert (work / "run" / "report" / "index.html").exists()
