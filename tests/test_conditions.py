"""Method conditions (``name@ctx=K``, ``name@mask=N``): parsing, what the method receives, refusal
of conditions a method cannot honour, and LMD inside / outside the masked span."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from talkbench.conditions import mask_span_frames, parse_method_spec
from talkbench.errors import ConfigError, MetricError
from talkbench.io.video import write_video
from talkbench.methods import METHODS
from talkbench.methods.base import Method
from talkbench.metrics.base import ScoreInput
from talkbench.metrics.landmarks import LMDScorer, LMDSpanScorer
from talkbench.runner import RunConfig, run
from talkbench.types import GenRequest, GenResult, MethodCard
from tests.conftest import talking_frames, tone

SEEN: list = []


class _Probe(Method):
    """Returns the reference frame and remembers the conditions it was given."""

    card = MethodCard(name="probe", version="1", native_size=0, supports=("mask",))

    def load(self, device: str = "cpu", weights=None) -> None:
        pass

    def generate(self, requests):
        SEEN.extend((r.mask_frames, r.context_frames) for r in requests)
        return [GenResult(r.sample_id, np.repeat(r.reference[None], r.num_frames, 0)) for r in requests]


def test_parse() -> None:
    s = parse_method_spec("cals@ctx=3@mask=7")
    assert (s.base, s.context, s.mask_span, s.needs) == ("cals", 3, 7, ("context", "mask"))
    assert parse_method_spec("cals@ctx=full").needs == ()
    assert parse_method_spec("wav2lip").base == "wav2lip"
    for bad in ("cals@ctx=x", "cals@foo=1", "@ctx=1", "cals@mask=0", "cals@ctx=-1"):
        with pytest.raises(ConfigError):
            parse_method_spec(bad)
    assert mask_span_frames(20, 7) == tuple(range(6, 13)) and mask_span_frames(4, 7) == (0, 1, 2, 3)


def test_runner_passes_conditions_and_refuses_unsupported(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_video(root / "a.mp4", talking_frames(15), tone(0.6))
    METHODS.register("probe", _Probe, override=True)
    SEEN.clear()
    cfg = RunConfig(methods=("probe@mask=5", "probe@ctx=2", "probe"), dataset="folder", root=str(root),
                    split="all", metrics=("psnr",), include_gt=False, crop="none")
    run(cfg, tmp_path / "r", progress=False)
    seen = list(SEEN)
    assert seen == [(tuple(range(5, 10)), None), ((), None)]  # ctx=2 never reached the method
    with sqlite3.connect(tmp_path / "r" / "results.sqlite") as c:
        rows = c.execute("SELECT method, metric, error FROM results ORDER BY method, metric").fetchall()
    refused = [r for r in rows if r[0] == "probe@ctx=2"]
    assert len(refused) == 1 and refused[0][1] == "__generate__" and "cannot honour the context" in refused[0][2]
    assert {r[0] for r in rows if r[1] == "psnr" and r[2] is None} == {"probe", "probe@mask=5"}


@pytest.fixture(scope="module")
def face_clip() -> np.ndarray:
    from talkbench.faces.crop import load_clip
    from talkbench.types import Sample

    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "videos" / "vox_00015.mp4"
    if not real.exists():
        pytest.skip("real talking-face media not present")
    return load_clip(Sample("folder", "v", "v", real), size=128, landmarks=False).frames[:24]


def _dlib_mouths(frames: np.ndarray, boxes: list) -> np.ndarray:
    """Mouth points 48-67 straight from dlib's 68-point predictor on the given boxes (no talkbench code)."""
    import dlib

    from talkbench.faces.models import dlib_model_path

    predictor = dlib.shape_predictor(str(dlib_model_path("landmarks68")))
    out = []
    for f, b in zip(frames, boxes):
        shape = predictor(np.ascontiguousarray(f), b)
        out.append([(shape.part(i).x, shape.part(i).y) for i in range(48, 68)])
    return np.asarray(out, np.float64)


def test_lmd_span_equals_lmd_on_those_frames(face_clip: np.ndarray) -> None:
    """lmd_span / lmd_outside against landmarks computed independently with dlib itself (detector boxes
    of the reference, predictor on both sides) and the mean-centred per-point formula by hand."""
    import dlib

    ref = face_clip
    gen = ref[::-1].copy()  # mouth shapes at other times: a non-zero LMD that varies over frames
    span = tuple(range(8, 15))
    out = LMDSpanScorer(box_source="reference").score(ScoreInput("v", gen, np.zeros(1), ref, meta={"mask_frames": span}))
    detector = dlib.get_frontal_face_detector()
    boxes = []
    for f in ref:
        found = detector(np.ascontiguousarray(f), 1)
        assert len(found), "the real clip has a face in every frame"
        boxes.append(found[0])
    g, r = _dlib_mouths(gen, boxes), _dlib_mouths(ref, boxes)
    per_frame = np.linalg.norm((g - g.mean(1, keepdims=True)) - (r - r.mean(1, keepdims=True)), axis=2).mean(1)
    inside = np.zeros(len(ref), bool)
    inside[list(span)] = True
    assert out["lmd_span"] == pytest.approx(per_frame[inside].mean(), abs=0.05)
    assert out["lmd_outside"] == pytest.approx(per_frame[~inside].mean(), abs=0.05)
    whole = LMDScorer(box_source="reference").score(ScoreInput("v", gen, np.zeros(1), ref))["lmd"]
    assert min(out.values()) <= whole <= max(out.values())
    with pytest.raises(MetricError, match="mask"):
        LMDSpanScorer().score(ScoreInput("v", gen, np.zeros(1), ref))


def test_masked_audio_silences_exactly_the_masked_frames() -> None:
    """GenRequest.masked_audio (what mask-token-less methods feed their front-ends): samples of the masked
    frames are zero, every other sample is the original, and the request's own audio is untouched."""
    audio = np.arange(1, 10 * 640 + 1, dtype=np.float32)
    frames = np.zeros((10, 8, 8, 3), np.uint8)
    req = GenRequest(sample_id="s", reference=frames[0], pose_prior=frames, audio=audio, mask_frames=(3, 4))
    out = req.masked_audio
    assert (out[3 * 640 : 5 * 640] == 0).all()
    keep = np.r_[0 : 3 * 640, 5 * 640 : 10 * 640]
    assert np.array_equal(out[keep], audio[keep]) and audio.min() == 1
    unmasked = GenRequest(sample_id="s", reference=frames[0], pose_prior=frames, audio=audio)
    assert np.array_equal(unmasked.masked_audio, audio)
