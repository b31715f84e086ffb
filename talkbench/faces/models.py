"""Locate and load the dlib model files shipped by ``face-recognition-models``.

Its ``__init__`` imports ``pkg_resources`` (gone from setuptools >= 81), so the files are found from
the package spec without importing it.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

from talkbench.errors import TalkbenchError

DLIB_MODELS = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "mmod": "mmod_human_face_detector.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}


def dlib_models_dir() -> Path | None:
    """The ``models/`` folder of face_recognition_models (or ``$TALKBENCH_DLIB_MODELS``)."""
    env = os.environ.get("TALKBENCH_DLIB_MODELS")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def dlib_model_path(name: str) -> Path:
    """Path of a dlib model by short name (see :data:`DLIB_MODELS`) or file name."""
    fname = DLIB_MODELS.get(name, name)
    root = dlib_models_dir()
    if root is None:
        raise TalkbenchError("face-recognition-models is not installed: pip install face-recognition-models")
    path = root / fname
    if not path.exists():
        raise TalkbenchError("dlib model file missing", path)
    return path


@lru_cache(maxsize=1)
def hog_detector():  # -> dlib.fhog_object_detector
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def mmod_detector():  # -> dlib.cnn_face_detection_model_v1
    import dlib

    return dlib.cnn_face_detection_model_v1(str(dlib_model_path("mmod")))


@lru_cache(maxsize=2)
def shape_predictor(name: str = "landmarks68"):  # -> dlib.shape_predictor
    import dlib

    return dlib.shape_predictor(str(dlib_model_path(name)))
