"""Photo identities: a real portrait with the mouth warped by the articulation; dlib finds the face and
its landmarks land near the ones we wrote. Skips when the shared portraits folder is missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkbench.datasets.synth.photo import PORTRAITS, PhotoFace, portraits, render_photo

pytestmark = pytest.mark.skipif(not portraits(), reason=f"no portraits at {PORTRAITS}")


def test_photo_frames_are_detected_and_mouth_moves() -> None:
    from talkbench.datasets.synth.face import pose_matrix
    from talkbench.faces.detect import FaceDetector
    from talkbench.faces.landmarks import detect_landmarks

    det = FaceDetector(upsample=1, max_side=0)
    faces = []
    for p in portraits()[:8]:
        try:
            faces.append(PhotoFace.load(p, 160))
        except Exception:  # a portrait dlib cannot read is skipped by the corpus too
            continue
    assert len(faces) >= 5
    errs = []
    m = pose_matrix(160, 0.03, 0.01, 0.0, 1.0)
    for f in faces:
        closed, lm_c = render_photo(f, np.array([0.05, 0, 0, 0.9, 0, 0, 0]), m, 160)
        opened, lm_o = render_photo(f, np.array([0.8, 0.2, 0, 0, 0, 0.6, 0.2]), m, 160)
        # The articulation opens the inner lips in the written landmarks and changes the mouth pixels.
        assert (lm_o[66, 1] - lm_o[62, 1]) > (lm_c[66, 1] - lm_c[62, 1]) + 3
        mouth = (slice(int(lm_o[48:68, 1].min()), int(lm_o[48:68, 1].max()) + 1),
                 slice(int(lm_o[48:68, 0].min()), int(lm_o[48:68, 0].max()) + 1))
        assert np.abs(opened[mouth].astype(int) - closed[mouth].astype(int)).mean() > 10
        d = det.detect(opened)
        if len(d):
            errs.append(np.linalg.norm(detect_landmarks(opened[None], d[:1, :4])[0] - lm_o, axis=1).mean())
    assert len(errs) >= len(faces) - 1
    assert np.mean(errs) < 5.0  # px on 160 px frames


def test_photo_corpus_records_portraits(tmp_path: Path) -> None:
    from talkbench.datasets.synth.corpus import build_corpus

    root = build_corpus("synth-lrs2", tmp_path / "p", clips=4, progress=False, workers=1, photo=True)
    info = json.loads((root / "CORPUS.json").read_text())
    assert info["version"].endswith("+photo") and info["portraits"]
    metas = [json.loads(p.read_text()) for p in sorted(root.rglob("*.meta.json"))]
    assert [m["photo"] for m in metas] == [False, False, False, True]
    assert metas[3]["identity"]["sha256"] in info["portraits"].values()
