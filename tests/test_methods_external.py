from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkbench.errors import ConfigError
from talkbench.methods.external import ExternalConfig, ExternalMethod
from talkbench.types import GenRequest, lower_half_masked

# A stand-in for an official repository's inference script: copies the pose video to the output.
SCRIPT = """
import shutil, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
if args.get("--mode") == "fail":
    print("boom: CUDA out of memory"); sys.exit(3)
if args.get("--mode") == "hang":
    time.sleep(30)
if args.get("--mode") != "nooutput":
    shutil.copy(args["--face"], args["--outfile"])
"""


def _method(tmp_path: Path, mode: str, timeout: float = 20) -> ExternalMethod:
    script = tmp_path / "infer.py"
    script.write_text(SCRIPT)
    yml = tmp_path / f"{mode}.yaml"
    yml.write_text(f"""name: fake
command: ["{{python}}", "{script}", "--face", "{{pose_video}}", "--audio", "{{audio}}", "--outfile", "{{output}}", "--mode", "{mode}"]
timeout: {timeout}
crop: none
""")
    m = ExternalMethod(workdir=tmp_path / "work")
    m.load(weights=yml)
    return m


def _request() -> GenRequest:
    gt = np.random.default_rng(0).integers(0, 255, (6, 64, 64, 3), dtype=np.uint8)
    return GenRequest("spk/001", gt[0], lower_half_masked(gt), np.zeros(6 * 640, np.float32))


def test_runs_the_command_and_collects_output(tmp_path: Path) -> None:
    res = _method(tmp_path, "ok").generate([_request()])[0]
    assert res.ok and res.frames.shape == (6, 64, 64, 3)
    assert (res.frames[:, 40:] < 20).all()  # it returned the pose prior: lower half black
    assert Path(res.meta["log"]).exists()


@pytest.mark.parametrize(("mode", "expect"), [("fail", "exit code 3"), ("nooutput", "wrote no output"),
                                             ("hang", "timed out")])
def test_failures_are_recorded_per_sample(tmp_path: Path, mode: str, expect: str) -> None:
    res = _method(tmp_path, mode, timeout=2).generate([_request()])[0]
    assert not res.ok and expect in res.error
    if mode == "fail":
        assert "CUDA out of memory" in res.error


def test_bad_yaml(tmp_path: Path) -> None:
    p = tmp_path / "m.yaml"
    p.write_text("command: python infer.py --face x\n")
    with pytest.raises(ConfigError, match="argument list"):
        ExternalConfig.from_yaml(p)
    p.write_text("command: [python]\ncmd_typo: 1\n")
    with pytest.raises(ConfigError, match="unknown keys: cmd_typo"):
        ExternalConfig.from_yaml(p)
