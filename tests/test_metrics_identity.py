from __future__ import annotations

import numpy as np
import pytest

from talkbench.errors import MetricError
from talkbench.faces.models import dlib_model_path
from talkbench.metrics import METRICS
from talkbench.metrics.base import ScoreInput
from talkbench.metrics.identity import face_embedding
from tests.conftest import REAL, portrait_frame


def _portrait(name: str, size: int = 160) -> np.ndarray:
    import cv2

    p = REAL / "portraits" / name
    if not p.exists():
        pytest.skip("portraits not present")
    return cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA)


def test_embedding_equals_raw_dlib_pipeline() -> None:
    import dlib

    img = portrait_frame(160)
    det = dlib.get_frontal_face_detector()(img, 1)[0]
    sp = dlib.shape_predictor(str(dlib_model_path("landmarks5")))
    rec = dlib.face_recognition_model_v1(str(dlib_model_path("recognition")))
    ref = np.array(rec.compute_face_descriptor(img, sp(img, det)))
    ours = face_embedding(img)
    assert ours is not None and np.abs(ours - ref).max() < 0.02  # box rounding only


def test_same_identity_scores_higher_than_another() -> None:
    a = _portrait("vox_512400353_000000.jpg")
    shifted = np.roll(a, 3, axis=1)
    other = _portrait("vox_741400163_000000.jpg")
    scorer = METRICS.get("csim")()
    same = scorer.score(ScoreInput("x", shifted[None], np.zeros(1), reference=a[None]))["csim"]
    diff = scorer.score(ScoreInput("x", other[None], np.zeros(1), reference=a[None]))["csim"]
    assert same > 0.95 and diff < same - 0.03


def test_no_face_is_an_error() -> None:
    blank = np.full((2, 128, 128, 3), 127, np.uint8)
    with pytest.raises(MetricError, match="reference identity"):
        METRICS.get("csim")().score(ScoreInput("x", blank, np.zeros(1), reference=blank))
