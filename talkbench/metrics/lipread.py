"""Lip-reading word accuracy (``lipread``): ``lipread_top1`` / ``lipread_top5`` per sample (0 or 1).

A named LRW word classifier (:mod:`talkbench.critics.lipreader`) reads the generated clip's mouth ROIs
(:mod:`talkbench.critics.mouth_roi`) and is scored against the sample's word label; the mean over a
method's samples is its word accuracy (the CALS paper's "LRW acc"). Run it on the ground-truth clips to
get the "Ground Truth" row.

Weights: ``weights=`` if given; else an official ``lrw_resnet18_mstcn*.pth(.tar)`` found in
``$TALKBENCH_WEIGHTS`` / the cache ``weights/`` folder; else the shipped
``talkbench/checkpoints/lipreader-synth.safetensors``. The metric version carries the critic's sha256 prefix, so
numbers from different critics never share a column.

Landmarks: by default the ground truth's (``ScoreInput.reference_landmarks``): in the protocol the
generated frames share the ground truth's geometry, and landmarks detected on a poorly generated mouth
would move the ROI with the error being measured. ``landmarks="detect"`` detects dlib landmarks on the
generated frames instead (also the fallback when no reference landmarks are given).

Mouth ROIs: each critic is bound to the mouth-ROI pipeline it was trained/evaluated with
(:func:`roi_pipeline_for`: card, official file name, activation); provenance and metric version name it.

Scope: a sample whose word is outside the critic's vocabulary (a critic trained on a word subset) is
*not applicable* (:meth:`LipReadingScorer.not_applicable`): the runner writes no row, never counts it as a
failure, and reports per-word coverage. NaN with a reason (a :class:`MetricError`, recorded by the
runner) when the clip is shorter than the pipelines' 12 frames. Called directly, ``score`` also raises a
:class:`MetricError` for an out-of-vocabulary word and for a sample without a word label (sentence
datasets; the runner skips those through ``requires``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from talkbench.critics.vocabulary import lrw_vocabulary
from talkbench.errors import MetricError, TalkbenchError
from talkbench.metrics.base import MetricInfo, ScoreInput

OFFICIAL_NAMES = ("lrw_resnet18_mstcn_video.pth", "lrw_resnet18_mstcn.pth", "lrw_resnet18_mstcn.pth.tar",
                  "lrw_resnet18_mstcn_adamw_s3.pth.tar")
# The mouth-ROI pipeline each released file was evaluated on, and the activation its config had
# (mpc001 README at 0cc99fa: Table 1, incl. resnet18_mstcn_video 88.9%, used preprocessing/; the
# 2020-21 resnet18_mstcn releases, 85.5% and adamw_s3 87.9%, predate it: commit b98500c moved their
# script to legacy_preprocessing/ and switched the config from PReLU to Swish at the same time).
OFFICIAL_ROI = {
    "lrw_resnet18_mstcn_video.pth": ("preprocessing", "swish"),
    "lrw_resnet18_mstcn_adamw_s3.pth.tar": ("legacy", "prelu"),
    "lrw_resnet18_mstcn.pth.tar": ("legacy", "prelu"),
}
ROI_BY_ACTIVATION = {"swish": "preprocessing", "prelu": "legacy"}
ROI_OFFICIAL_SCRIPT = {
    "legacy": "mpc001/Lipreading_using_Temporal_Convolutional_Networks@0cc99fa legacy_preprocessing/crop_mouth_from_video.py",
    "preprocessing": "mpc001/Lipreading_using_Temporal_Convolutional_Networks@0cc99fa preprocessing/crop_mouth_from_video.py",
}


def default_lipreader_weights() -> Path | None:
    """Official weights when found, else the shipped synthetic critic, else None."""
    from talkbench.weights import find_weights, shipped_weights

    for name in OFFICIAL_NAMES:
        p = find_weights(name)
        if p is not None:
            return p
    return shipped_weights("lipreader-synth")


def roi_pipeline_for(path: str | Path, act: str, card: dict[str, Any] | None = None) -> tuple[str, str]:
    """``(pipeline, why)``: the mouth-ROI pipeline the critic at ``path`` was trained/evaluated with.

    The card's ``roi_pipeline`` decides; else an official file name (:data:`OFFICIAL_ROI`, whose
    activation must match the keys'); else, for an official-layout torch file, its activation (Swish:
    the 2022 ``preprocessing/`` models, PReLU: the 2020-21 legacy ones); else (a talkbench critic whose
    card predates the field) ``legacy``, the crops ``train lipreader`` always used before.
    """
    from talkbench.critics.mouth_roi import ROI_PIPELINES

    p = Path(path)
    if card and card.get("roi_pipeline") is not None:
        pipeline = card["roi_pipeline"]
        if pipeline not in ROI_PIPELINES:
            raise MetricError(f"card names unknown mouth-ROI pipeline {pipeline!r} "
                              f"(known: {', '.join(ROI_PIPELINES)})", p)
        return pipeline, "card"
    if p.name in OFFICIAL_ROI:
        pipeline, want = OFFICIAL_ROI[p.name]
        if act != want:
            raise MetricError(f"the official file of this name has {want} activations but its keys are {act}: "
                              "it is not the file its name says; rename it or pass roi_pipeline=", p)
        return pipeline, f"official file name {p.name}"
    if p.suffix != ".safetensors" and act in ROI_BY_ACTIVATION:
        return ROI_BY_ACTIVATION[act], f"official layout with {act} activations"
    return "legacy", "talkbench critic without roi_pipeline on its card"


class LipReadingScorer:
    """Word accuracy of a lip-reading critic on one sample (see module docstring)."""

    name = "lipread"
    requires = ("word",)  # samples without a word label (sentence datasets) are not scored

    def __init__(self, device: str = "cpu", weights: str | Path | None = None,
                 landmarks: Literal["reference", "detect"] = "reference", roi_pipeline: str | None = None,
                 **_: Any) -> None:
        from talkbench.critics.lipreader import load_lipreader
        from talkbench.critics.mouth_roi import ROI_PIPELINES
        from talkbench.weights import read_card, weights_record

        if landmarks not in ("reference", "detect"):
            raise MetricError(f"landmarks must be 'reference' or 'detect', got {landmarks!r}")
        if roi_pipeline is not None and roi_pipeline not in ROI_PIPELINES:
            raise MetricError(f"roi_pipeline must be one of {', '.join(ROI_PIPELINES)}, got {roi_pipeline!r}")
        path = Path(weights) if weights else default_lipreader_weights()
        if path is None:
            raise MetricError("no lip-reader weights: put lrw_resnet18_mstcn.pth in $TALKBENCH_WEIGHTS, pass "
                              "weights=, or train one with `talkbench train lipreader`")
        self.model = load_lipreader(path).to(device)
        self.record = weights_record(path)
        card = read_card(path) if str(path).endswith(".safetensors") else {}
        # The class order: the card's vocabulary (a word-subset critic), else LRW's 500 sorted words.
        self.vocab = [w.upper() for w in card.get("vocabulary", [])] or lrw_vocabulary()
        if len(self.vocab) != self.model.config.num_classes:
            raise MetricError(f"critic has {self.model.config.num_classes} classes but its vocabulary "
                              f"lists {len(self.vocab)} words", path)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.device, self.landmarks = device, landmarks
        if roi_pipeline is None:
            self.roi_pipeline, self.roi_source = roi_pipeline_for(path, self.model.config.act, card)
        else:  # an explicit choice; the version names it, so its numbers get their own column
            self.roi_pipeline, self.roi_source = roi_pipeline, "roi_pipeline option"
        tag = f"lipreader-{self.record['sha256'][:12]}-{landmarks}-roi_{self.roi_pipeline}-2"
        self.outputs = (
            MetricInfo("lipread_top1", True, "no-reference", tag, "word read correctly (top-1)",
                       label="Lip-read acc."),
            MetricInfo("lipread_top5", True, "no-reference", tag, "word among the critic's 5 best guesses",
                       label="Lip-read top-5"),
        )
        self._predictor = None

    def provenance(self) -> dict[str, Any]:
        from talkbench.critics.mouth_roi import WINDOW

        return {"lipreader": self.record, "landmarks": self.landmarks, "vocabulary_size": len(self.vocab),
                "roi_pipeline": {"name": self.roi_pipeline, "decided_by": self.roi_source,
                                 "official": ROI_OFFICIAL_SCRIPT[self.roi_pipeline],
                                 "min_frames": WINDOW}}

    def _landmarks(self, item: ScoreInput) -> np.ndarray:
        if self.landmarks == "reference" and item.reference_landmarks is not None:
            lm = np.asarray(item.reference_landmarks, np.float32)
            if len(lm) != len(item.generated):
                raise MetricError(f"{len(item.generated)} generated frames but {len(lm)} reference landmark rows",
                                  item.sample_id)
            return lm
        from talkbench.faces.landmarks import LandmarkPredictor, detect_landmarks

        if self._predictor is None:
            self._predictor = LandmarkPredictor()
        return detect_landmarks(item.generated, predictor=self._predictor)

    def logits(self, item: ScoreInput) -> torch.Tensor:
        """The critic's class logits for the sample's generated frames."""
        from talkbench.critics.mouth_roi import mouth_rois, to_model_input

        try:
            rois = mouth_rois(item.generated, self._landmarks(item), item.sample_id, pipeline=self.roi_pipeline)
        except TalkbenchError as exc:
            raise MetricError(exc.reason, item.sample_id) from exc
        x = torch.from_numpy(to_model_input(rois))[None].to(self.device)
        with torch.inference_mode():
            return self.model(x)[0].float().cpu()

    def not_applicable(self, item: ScoreInput) -> str | None:
        """The reason when ``item``'s word is outside this critic's vocabulary (else None)."""
        if item.word and item.word.upper() not in self.index:
            return f"word {item.word.upper()!r} is outside the critic's {len(self.vocab)}-word vocabulary"
        return None

    def score(self, item: ScoreInput) -> dict[str, float]:
        # Undefined cases are MetricErrors: the runner records them as NaN with this reason.
        if not item.word:
            raise MetricError("no word label (lip-reading accuracy needs word-level samples)", item.sample_id)
        word = item.word.upper()
        if word not in self.index:
            raise MetricError(f"word {word!r} is outside the critic's {len(self.vocab)}-word vocabulary",
                              item.sample_id)
        if len(item.generated) == 0:
            raise MetricError("clip has no frames", item.sample_id)
        logits = self.logits(item)
        top = torch.topk(logits, min(5, len(logits))).indices.tolist()
        target = self.index[word]
        return {"lipread_top1": float(top[0] == target), "lipread_top5": float(target in top)}
