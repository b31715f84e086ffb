"""LipReadingScorer: label mapping and top-1/top-5 logic (with a critic whose output ranking we set),
NaN + reason for samples it cannot score, provenance and per-critic metric versions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from talkbench.cache import sha256_file
from talkbench.critics.lipreader import LipReader, LipReaderConfig, config_dict
from talkbench.critics.mouth_roi import MEAN_FACE_STABLE, STABLE_IDS
from talkbench.critics.vocabulary import lrw_vocabulary
from talkbench.errors import MetricError
from talkbench.metrics import METRICS
from talkbench.metrics.base import ScoreInput
from talkbench.metrics.lipread import LipReadingScorer
from talkbench.weights import save_weights

VOCAB = lrw_vocabulary()[:8]
RANKING = [5, 2, 7, 0, 3]  # classes in the order the rigged critic prefers them


def _critic(path: Path, bias_scale: float = 100.0) -> Path:
    cfg = LipReaderConfig(width=0.0625, num_classes=len(VOCAB))
    torch.manual_seed(0)
    model = LipReader(cfg).eval()
    with torch.no_grad():
        model.tcn.tcn_output.weight.zero_()
        bias = torch.full((len(VOCAB),), -bias_scale)
        for r, c in enumerate(RANKING):
            bias[c] = bias_scale - r
        model.tcn.tcn_output.bias.copy_(bias)
    save_weights(path, model.state_dict(), {"command": "test", "data": {"dataset": "none"}, "seed": 0,
                                            "metrics": {}, "config": {"model": config_dict(cfg)}, "vocabulary": VOCAB})
    return path


@pytest.fixture(scope="module")
def critic(tmp_path_factory) -> Path:
    return _critic(tmp_path_factory.mktemp("c") / "rigged.safetensors")


def _item(word: str | None, n: int = 12, landmarks: bool = True) -> ScoreInput:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (n, 128, 128, 3), dtype=np.uint8)
    lm = rng.uniform(30, 100, (n, 68, 2)).astype(np.float32)
    lm[:, list(STABLE_IDS)] = MEAN_FACE_STABLE * 0.45 + 5
    return ScoreInput(sample_id=f"{word}/test/x", generated=frames, audio=np.zeros(n * 640, np.float32), word=word,
                      reference_landmarks=lm if landmarks else None)


def test_top1_top5_follow_the_critics_ranking(critic):
    scorer = METRICS.get("lipread")(weights=critic)
    assert isinstance(scorer, LipReadingScorer)
    for rank, cls in enumerate(RANKING):
        got = scorer.score(_item(VOCAB[cls].lower()))  # labels are case-insensitive
        assert got == {"lipread_top1": float(rank == 0), "lipread_top5": 1.0}, (rank, VOCAB[cls])
    outside_top5 = next(i for i in range(len(VOCAB)) if i not in RANKING)
    assert scorer.score(_item(VOCAB[outside_top5])) == {"lipread_top1": 0.0, "lipread_top5": 0.0}


def test_undefined_samples_raise_with_reason(critic):
    scorer = LipReadingScorer(weights=critic)
    with pytest.raises(MetricError, match="no word label"):
        scorer.score(_item(None))
    with pytest.raises(MetricError, match="outside the critic's 8-word vocabulary"):
        scorer.score(_item("ZEBRA"))
    with pytest.raises(MetricError, match="no frame has face landmarks"):
        item = _item(VOCAB[0])
        scorer.score(ScoreInput(**{**item.__dict__, "reference_landmarks": np.full((12, 68, 2), np.nan)}))


def test_runner_marks_out_of_vocabulary_not_applicable(critic):
    """A word outside the critic's vocabulary is neither a value nor a failure: no row, a reason."""
    from talkbench.runner import score_rows

    outside: dict[str, str] = {}
    rows = score_rows({"lipread": LipReadingScorer(weights=critic)}, _item("ZEBRA"), "m", "d", "s", outside)
    assert rows == [] and "'ZEBRA' is outside the critic's 8-word vocabulary" in outside["lipread"]
    inside: dict[str, str] = {}
    rows = score_rows({"lipread": LipReadingScorer(weights=critic)}, _item(VOCAB[0]), "m", "d", "s", inside)
    assert {r.metric for r in rows} == {"lipread_top1", "lipread_top5"} and not inside
    assert all(r.error is None and not math.isnan(r.value) for r in rows)


def test_provenance_and_versions_name_the_critic(critic, tmp_path):
    a = LipReadingScorer(weights=critic)
    prov = a.provenance()
    assert prov["lipreader"]["sha256"] == sha256_file(critic)
    assert prov["lipreader"]["card"]["vocabulary"] == VOCAB
    other = LipReadingScorer(weights=_critic(tmp_path / "other.safetensors", bias_scale=50.0))
    assert {o.version for o in a.outputs}.isdisjoint({o.version for o in other.outputs})
    assert sha256_file(critic)[:12] in a.outputs[0].version
    assert all(o.higher_is_better and o.kind == "no-reference" for o in a.outputs)


def test_vocabulary_must_match_classes(tmp_path):
    cfg = LipReaderConfig(width=0.0625, num_classes=3)
    p = tmp_path / "bad.safetensors"
    save_weights(p, LipReader(cfg).state_dict(), {"command": "t", "data": "-", "seed": 0, "metrics": {},
                                                   "config": {"model": config_dict(cfg)}})
    with pytest.raises(MetricError, match="3 classes but its vocabulary lists 500"):
        LipReadingScorer(weights=p)


def test_detect_mode_on_a_real_face(critic):
    """Without reference landmarks the scorer detects dlib landmarks on the generated frames."""
    from tests.conftest import talking_frames

    frames = talking_frames(12, size=128)  # the mouth-ROI pipelines need 12 frames
    scorer = LipReadingScorer(weights=critic, landmarks="detect")
    item = ScoreInput(sample_id="real", generated=frames, audio=np.zeros(12 * 640, np.float32), word=VOCAB[RANKING[0]])
    assert scorer.score(item) == {"lipread_top1": 1.0, "lipread_top5": 1.0}
    with pytest.raises(MetricError, match="no frame has face landmarks"):
        scorer.score(ScoreInput(**{**item.__dict__, "generated": np.zeros_like(frames)}))
