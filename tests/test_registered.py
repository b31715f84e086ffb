"""Every registered method, metric and dataset, through the registry as a user names them (the timm
habit): a new entry that cannot be built, that breaks the output contract, or that fails with a raw
exception instead of a named error fails here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from talkbench.datasets import DATASETS
from talkbench.errors import TalkbenchError
from talkbench.methods import METHODS
from talkbench.metrics import METRICS
from talkbench.metrics.base import MetricInfo, ScoreInput
from talkbench.types import GenRequest, lower_half_masked
from tests.conftest import talking_frames, tone

NEEDS_WEIGHTS = {"precomputed", "external", "pcavs", "audio2head", "audio2head-kp-oracle"}  # user outputs, a repository, or no shipped weights


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return talking_frames(12, size=128, dx=1.0)


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_loads_and_keeps_the_output_contract(name: str, frames: np.ndarray) -> None:
    method = METHODS.get(name)()
    assert method.card.version and method.card.native_size >= 0  # 0: works at any size
    assert set(method.card.supports) <= {"mask", "context"}
    if name in NEEDS_WEIGHTS:
        with pytest.raises(TalkbenchError, match="--weights"):
            method.load(device="cpu")
        return
    method.load(device="cpu")
    req = GenRequest(sample_id="s", reference=frames[0], pose_prior=lower_half_masked(frames),
                     audio=tone(len(frames) / 25), ground_truth=frames)
    out = method.generate([req, req])
    assert len(out) == 2
    for r in out:
        assert r.error is None and r.frames.shape == frames.shape and r.frames.dtype == np.uint8
    info = method.weights_info()
    assert not info or len(info.get("sha256", "")) == 64


@pytest.fixture(scope="module")
def seeded_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Official-layout files with seeded weights, for metrics whose real weights cannot be downloaded."""
    from talkbench.metrics.nets.seeded import write_seeded_weights

    folder = tmp_path_factory.mktemp("seeded-weights")
    write_seeded_weights(folder, arcface_depth=18)
    return folder


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_scores_or_names_its_problem(name: str, frames: np.ndarray, request, monkeypatch) -> None:
    try:
        scorer = METRICS.get(name)(device="cpu")
    except TalkbenchError as exc:  # official weights absent: it must say which file and where
        assert "not available: put " in exc.reason and " in " in exc.reason
        monkeypatch.setenv("TALKBENCH_WEIGHTS", str(request.getfixturevalue("seeded_weights")))
        scorer = METRICS.get(name)(device="cpu")
    assert scorer.outputs and all(isinstance(i, MetricInfo) and i.version for i in scorer.outputs)
    assert set(getattr(scorer, "requires", ())) <= {"reference", "word", "reference_landmarks", "mask_frames"}
    shifted = np.roll(frames, 2, axis=2)
    item = ScoreInput(sample_id="s", generated=shifted, audio=tone(len(frames) / 25), reference=frames,
                      word="ABOUT", meta={"mask_frames": (4, 5, 6)})
    if getattr(scorer, "level", "sample") == "dataset":  # FID, FVD: features per sample, a value per dataset
        try:
            gen, ref = scorer.features(item)
        except TalkbenchError as exc:
            assert exc.reason
            return
        assert gen.ndim == ref.ndim == 2 and gen.shape[1] == ref.shape[1]
        out = scorer.compute([gen, gen], [ref, ref])
        assert math.isfinite(out["value"])
        return
    try:
        values = scorer.score(item)
    except TalkbenchError as exc:  # a per-item failure must say why
        assert exc.reason
        return
    assert {i.name for i in scorer.outputs} <= set(values)
    assert all(isinstance(v, float) for v in values.values())
    assert any(math.isfinite(values[i.name]) for i in scorer.outputs)


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_names_a_missing_root(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "not-here"
    with pytest.raises(TalkbenchError) as exc:
        reader = DATASETS.get(name)(missing)
        list(reader.samples("test"))
    assert "not-here" in str(exc.value)
