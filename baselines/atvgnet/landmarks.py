"""ATVGnet's landmark space: the PCA basis AT-net predicts in, the alignment templates and the example
landmark VG-net is conditioned on.

Two kinds, both read from files beside the weights (never bundled):

- ``official``: the ``basics/*.npy`` of lelechen63/ATVGnet (``U_lrw1.npy``, ``mean_lrw1.npy``,
  ``base_68.npy``, ``base_68_close.npy``, ``mean_shape_img.npy``, ``mean_shape_norm.npy``, ``S.npy``).
  ``demo.py`` normalises the re-detected landmarks of the 128-px crop with ``normLmarks`` and multiplies
  them by 5; for a single image ``normLmarks``' ``init_params`` are the image's own parameters, so the
  example landmark is ``mean_shape_norm`` minus the fixed "open mouth" offset whatever the face
  (:meth:`LandmarkSpace.example`); the image's landmarks only need to be found.
- ``motion`` (ours, fitted with ``talkbench train atvgnet --stage basis``): landmarks of the aligned
  128-px crop as ``p / 128 - 0.5`` (scale 1) with each clip's own mean shape replaced by the template's,
  so that, as in the official space, identity is normalised away and the example landmark is a constant
  (the basis mean); a PCA of the training frames. Stored as one ``.npz`` (no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkbench.errors import CheckpointError

OFFICIAL_FILES = ("U_lrw1.npy", "mean_lrw1.npy", "base_68.npy", "base_68_close.npy", "mean_shape_img.npy",
                  "mean_shape_norm.npy", "S.npy")
N_COEFS = 6
EXAGGERATION = 2.0 * np.array([1.1, 1.2, 1.3, 1.4, 1.5], np.float32)  # demo.py, on coefficients 1..5


@dataclass(frozen=True)
class LandmarkSpace:
    kind: str  # "official" | "motion"
    mean: np.ndarray  # (136,) in the scaled space
    components: np.ndarray  # (136, 6)
    template: np.ndarray  # (68, 2) in the 163-px crop, eyes open
    template_close: np.ndarray  # (68, 2), eyes closed
    scale: float = 5.0
    example_official: np.ndarray | None = None  # (136,) official constant example landmark (unscaled)
    source: str = ""

    def to_coefs(self, lmark: np.ndarray) -> np.ndarray:
        """Scaled landmarks (..., 136) -> (..., 6)."""
        return (lmark - self.mean) @ self.components

    def from_coefs(self, coefs: np.ndarray) -> np.ndarray:
        return coefs @ self.components.T + self.mean

    def example(self, pts128: np.ndarray) -> np.ndarray:
        """Landmarks (68, 2) re-detected on the aligned 128-px crop -> the example landmark (136,), scaled.
        Both kinds normalise identity away, so this is a constant; the detection only has to succeed."""
        if self.kind == "official":
            assert self.example_official is not None
            return self.example_official * self.scale
        return self.mean.astype(np.float64).copy()

    def points(self, pts128: np.ndarray) -> np.ndarray:
        """Identity-normalised aligned-crop landmarks (..., 68, 2) -> the scaled space (..., 136) (ours)."""
        p = np.asarray(pts128, np.float64)
        return (p.reshape(*p.shape[:-2], 136) / 128.0 - 0.5) * self.scale

    def save(self, path: str | Path) -> None:
        np.savez(path, kind=np.array(self.kind), mean=self.mean, components=self.components,
                 template=self.template, template_close=self.template_close, scale=np.array(self.scale))


def _official_example(ms_norm: np.ndarray, S: np.ndarray) -> np.ndarray:
    """demo.py ``normLmarks`` on one image: mean_shape_norm with the mouth's PCA offset ``mouthParams[1] =
    -0.06`` taken out (the image's own parameters cancel)."""
    msk = ms_norm.reshape(1, 136).astype(np.float64)
    sk = S.reshape(S.shape[0], 136).astype(np.float64)
    mouth = np.zeros((1, S.shape[0]))
    mouth[0, 1] = -0.06
    tmp = msk.copy()
    tmp[:, 96:] += (mouth @ sk)[:, 96:]
    open_mouth = (sk @ (tmp[0] - msk[0]))[None]
    return (msk - open_mouth @ sk)[0]


def load_space(folder: str | Path) -> LandmarkSpace:
    """The official ``basics/`` files from ``folder`` (or ``folder/basics``), or our ``.npz``."""
    p = Path(folder)
    if p.suffix == ".npz":
        if not p.exists():
            raise CheckpointError("landmark basis file not found", p)
        with np.load(p, allow_pickle=False) as z:
            missing = [k for k in ("mean", "components", "template", "template_close") if k not in z]
            if missing:
                raise CheckpointError(f"landmark basis lacks {', '.join(missing)}", p)
            return LandmarkSpace(kind=str(z["kind"]), mean=z["mean"].astype(np.float32),
                                 components=z["components"][:, :N_COEFS].astype(np.float32),
                                 template=z["template"].astype(np.float64), template_close=z["template_close"].astype(np.float64),
                                 scale=float(z["scale"]), source=str(p))
    base = p / "basics" if (p / "basics").is_dir() else p
    missing = [f for f in OFFICIAL_FILES if not (base / f).exists()]
    if missing:
        raise CheckpointError(f"ATVGnet landmark files missing: {', '.join(missing)} (the official basics/ folder "
                              "of lelechen63/ATVGnet, placed beside the weights)", base)
    ld = lambda f: np.load(base / f, allow_pickle=False)  # noqa: E731
    U, mean = ld("U_lrw1.npy"), ld("mean_lrw1.npy")
    if U.shape[0] != 136 or U.shape[1] < N_COEFS or mean.reshape(-1).shape != (136,):
        raise CheckpointError(f"U_lrw1.npy {U.shape} / mean_lrw1.npy {mean.shape}: need (136, >=6) and (136,)", base)
    return LandmarkSpace(kind="official", mean=mean.reshape(-1).astype(np.float32), components=U[:, :N_COEFS].astype(np.float32),
                         template=ld("base_68.npy").reshape(68, 2).astype(np.float64),
                         template_close=ld("base_68_close.npy").reshape(68, 2).astype(np.float64), scale=5.0,
                         example_official=_official_example(ld("mean_shape_norm.npy"), ld("S.npy")), source=str(base))


def identity_normalised(lmarks128: np.ndarray, template: np.ndarray) -> np.ndarray:
    """One clip's aligned landmarks (T, 68, 2) with the clip's mean shape replaced by the template's
    (in the 128-px crop: ``template - 1``): what is left is the clip's motion on a common face."""
    return (lmarks128 - lmarks128.mean(0, keepdims=True) + (template - 1.0)[None]).astype(np.float32)


def fit_space(lmarks128: np.ndarray, template: np.ndarray, k: int = N_COEFS, scale: float = 1.0) -> LandmarkSpace:
    """Our basis: PCA (SVD of the centred frames, as the author's posted snippet) of identity-normalised
    aligned-crop landmarks (N, 68, 2) in ``(p / 128 - 0.5) * scale``; ``template`` (68, 2) in the 163-px crop
    serves open and closed eyes. ``scale`` plays the part of the official ``* 5`` after ``normLmarks``: it sets
    how large a mouth movement is in the numbers VG-net's landmark encoder sees."""
    x = (lmarks128.reshape(len(lmarks128), 136).astype(np.float64) / 128.0 - 0.5) * scale
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return LandmarkSpace(kind="motion", mean=mean.astype(np.float32), components=vt[:k].T.astype(np.float32),
                         template=template, template_close=template, scale=float(scale))
