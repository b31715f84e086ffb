"""``talkbench train lipreader`` end to end on a tiny synthetic word corpus: progress log, checkpoint,
resume, metrics.json, export with a card the scorer reads; and the evaluation arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from talkbench.cache import sha256_file
from talkbench.cli import cli
from talkbench.critics.lipreader import LipReader, LipReaderConfig
from talkbench.critics.train_lipreader import build_vocab_corpus, evaluate, load_rois, vocabulary


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return build_vocab_corpus(tmp_path_factory.mktemp("lrw") / "corpus", 2, {"train": 2, "val": 1, "test": 1},
                              progress=False)


def test_corpus_holds_only_the_vocabulary(corpus):
    words = sorted(p.name for p in (corpus / "lipread_mp4").iterdir())
    assert words == vocabulary(2) == ["ABOUT", "ABSOLUTELY"]
    items, failures = load_rois("synth-lrw", str(corpus), "train", vocabulary(2), progress=False)
    assert len(items) + len(failures) == 4
    for _, rois, label in items:
        assert rois.shape == (29, 96, 96) and rois.dtype == np.uint8 and label in (0, 1)


def test_train_resume_export(corpus, tmp_path):
    out = tmp_path / "run"
    export = tmp_path / "lipreader.safetensors"
    args = ["train", "lipreader", "--dataset", "synth-lrw", "--root", str(corpus), "--vocab", "2", "--width",
            "0.0625", "--batch-size", "2", "--threads", "1", "--out", str(out), "--roi-pipeline", "preprocessing"]
    r = CliRunner().invoke(cli, [*args, "--steps", "2"])
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2
    r = CliRunner().invoke(cli, [*args, "--steps", "3", "--resume", "--export", str(export)])
    assert r.exit_code == 0, r.output
    logs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in logs] == [1, 2, 3]  # resumed at step 2, not restarted
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and 0 <= metrics["test"]["top1"] <= metrics["test"]["top5"] <= 1
    card = json.loads(export.with_suffix(".json").read_text())
    assert card["sha256"] == sha256_file(export)
    assert card["vocabulary"] == ["ABOUT", "ABSOLUTELY"]
    assert "ground_truth_test" in card["metrics"] and card["data"]["dataset"] == "synth-lrw"
    assert card["roi_pipeline"] == "preprocessing" and card["config"]["roi_pipeline"] == "preprocessing"

    from talkbench.metrics.lipread import LipReadingScorer

    scorer = LipReadingScorer(weights=export)
    assert scorer.model.config.num_classes == 2 and scorer.provenance()["vocabulary_size"] == 2
    # The scorer crops with the pipeline the critic was trained on, and says so.
    assert scorer.provenance()["roi_pipeline"]["name"] == "preprocessing"
    assert scorer.provenance()["roi_pipeline"]["decided_by"] == "card"
    assert "roi_preprocessing" in scorer.outputs[0].version


def test_evaluate_counts_top1_and_top5():
    model = LipReader(LipReaderConfig(width=0.0625, num_classes=7)).eval()
    with torch.no_grad():
        model.tcn.tcn_output.weight.zero_()
        model.tcn.tcn_output.bias.copy_(torch.tensor([6.0, 5, 4, 3, 2, 1, 0]))  # ranking 0,1,2,3,4,5,6
    rois = np.zeros((5, 96, 96), np.uint8)
    labels = [0, 0, 1, 4, 5, 6]
    got = evaluate(model, [(str(i), rois, lab) for i, lab in enumerate(labels)], batch_size=4)
    assert got == {"top1": 2 / 6, "top5": 4 / 6, "clips": 6}
