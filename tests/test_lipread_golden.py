"""Lip reading against golden vectors from mpc001's official code (0cc99fa; tests/fixtures/lipread_golden):
both mouth-ROI pipelines on LRW-layout clips built from real media, with dlib landmarks, and the logits
of official-layout checkpoints (seeded weights) on the official crops."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from talkbench.critics.lipreader import LipReader, LipReaderConfig, load_lipreader
from talkbench.critics.mouth_roi import ClipTooShortError, mouth_rois, smoothed_landmarks, to_model_input
from talkbench.critics.vocabulary import lrw_vocabulary
from talkbench.metrics.base import ScoreInput
from talkbench.metrics.lipread import LipReadingScorer, roi_pipeline_for
from tests.lipread_real_clips import CLIPS, frames_digest, lrw_frames, seeded_state_dict

FIX = Path(__file__).resolve().parent / "fixtures" / "lipread_golden"
GOLDEN = np.load(FIX / "golden.npz")
FACTS = json.loads((FIX / "golden.json").read_text())
PIPELINES = ("legacy", "preprocessing")
ACT_PIPELINE = {"swish": "preprocessing", "prelu": "legacy"}


def official_crops(clip: str, pipeline: str) -> np.ndarray:
    img = cv2.imread(str(FIX / f"{clip}_{pipeline}.png"), cv2.IMREAD_UNCHANGED)
    return img.reshape(-1, 96, 96)


@pytest.fixture(scope="module")
def clips(real_data: Path) -> dict[str, np.ndarray]:
    """The LRW-layout clips (29 frames, 256x256, 25 fps) the fixture was made from, rebuilt from real media."""
    out = {}
    for name, (video, _) in CLIPS.items():
        frames = lrw_frames(real_data, video)
        assert frames_digest(frames) == FACTS["clips"][name]["frames_sha256"], (
            f"{video}: decoded frames differ from those the golden crops were made from (another decoder?)")
        out[name] = frames
    return out


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("clip", list(CLIPS))
def test_rois_match_official_code(clips, clip, pipeline):
    landmarks = GOLDEN[f"{clip}/landmarks"]
    if CLIPS[clip][1]:  # missed detections (NaN rows) are interpolated as the official code does
        assert np.isnan(landmarks[list(CLIPS[clip][1])]).all()
    got = mouth_rois(clips[clip], landmarks, clip, pipeline=pipeline)
    want = official_crops(clip, pipeline)
    assert got.shape == want.shape == (29, 96, 96) and got.dtype == np.uint8
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1, (clip, pipeline, diff.max(), np.argwhere(diff > 1)[:5])
    assert diff.mean() < 0.02, (clip, pipeline, diff.mean())


def test_pipelines_differ_where_the_official_ones_differ(clips):
    for clip, frames in clips.items():
        lm = GOLDEN[f"{clip}/landmarks"]
        ours = {p: mouth_rois(frames, lm, clip, pipeline=p).astype(int) for p in PIPELINES}
        official = {p: official_crops(clip, p).astype(int) for p in PIPELINES}
        d_official = np.abs(official["legacy"] - official["preprocessing"]).mean(axis=(1, 2))
        d_ours = np.abs(ours["legacy"] - ours["preprocessing"]).mean(axis=(1, 2))
        # The official pipelines disagree on every frame here (alignment, smoothing, mouth centre)...
        assert (d_official > 1.0).all(), (clip, d_official.round(1))
        # ...and ours disagree frame by frame by the same amount...
        np.testing.assert_allclose(d_ours, d_official, atol=0.05)
        # ...so cropping with the other pipeline does not reproduce a model's crops.
        for p, other in (("legacy", "preprocessing"), ("preprocessing", "legacy")):
            wrong = np.abs(ours[other] - official[p])
            assert (wrong > 1).mean() > 0.2, (clip, p)


def test_preprocessing_window_is_centred_and_shrinks_at_the_ends():
    rng = np.random.default_rng(0)
    lm = rng.normal(100, 20, (20, 68, 2))

    def expect(t: int, m: int) -> np.ndarray:
        s = lm[t - m : t + m + 1].mean(0)
        return s - s.mean(0) + lm[t].mean(0)

    got = smoothed_landmarks(lm)
    np.testing.assert_allclose(got[0], lm[0])  # a window of one frame at each end
    np.testing.assert_allclose(got[19], lm[19])
    np.testing.assert_allclose(got[3], expect(3, 3))
    np.testing.assert_allclose(got[10], expect(10, 6))  # 13 frames in the middle
    np.testing.assert_allclose(got[16], expect(16, 3))
    assert not np.allclose(got[10], expect(10, 5))


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_short_clip_is_an_error_not_a_crop(clips, pipeline):
    # The official legacy script crashes on 11 frames and preprocessing/ writes nothing (recorded facts).
    assert not FACTS[f"short_clip_11_frames_{pipeline}"]["crops_written"]
    clip = next(iter(clips))
    with pytest.raises(ClipTooShortError, match="clip has 11 frames.*at least 12"):
        mouth_rois(clips[clip][:11], GOLDEN[f"{clip}/landmarks"][:11], "short.mp4", pipeline=pipeline)
    assert mouth_rois(clips[clip][:12], GOLDEN[f"{clip}/landmarks"][:12], pipeline=pipeline).shape == (12, 96, 96)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _exact_env() -> bool:
    """Same torch, same kernel dispatch level *and* the same CPU model as the golden: torch's capability
    string alone is not enough (an Intel Xeon reporting AVX512 gave logits a few float32 ulps off the golden's,
    2026-12-02, where the golden's machine gave them bit for bit). A golden without ``cpu_model`` never
    claims bit-exactness; the 1e-5 check still runs everywhere."""
    return (torch.__version__ == FACTS["torch"]
            and torch.backends.cpu.get_cpu_capability() == FACTS["torch_cpu_capability"]
            and FACTS.get("cpu_model") is not None and _cpu_model() == FACTS["cpu_model"])


@pytest.fixture(scope="module", params=["swish", "prelu"])
def official_file(request, tmp_path_factory) -> tuple[str, Path]:
    """An official-layout checkpoint (``{"model_state_dict": ...}``) with the golden's seeded weights."""
    act = request.param
    sd = seeded_state_dict(LipReader(LipReaderConfig(act=act)).state_dict())
    name = "lrw_resnet18_mstcn_video.pth" if act == "swish" else "lrw_resnet18_mstcn_adamw_s3.pth.tar"
    path = tmp_path_factory.mktemp("official") / name
    torch.save({"model_state_dict": sd, "epoch": 80}, path)
    return act, path


def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the golden was made with one thread; torch's reductions split by thread
    return threads


def test_logits_equal_the_official_model(official_file):
    act, path = official_file
    model = load_lipreader(path)
    assert model.config.act == act
    crops = [official_crops(c, ACT_PIPELINE[act]) for c in CLIPS]
    x = torch.from_numpy(np.stack([to_model_input(c) for c in crops]))
    threads = _one_thread()
    try:
        with torch.no_grad():
            got = model(x, [29, 29]).numpy()
    finally:
        torch.set_num_threads(threads)
    want = GOLDEN[f"logits_{act}"]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    if not _exact_env():
        pytest.skip(f"bit-exact check needs torch {FACTS['torch']} on {FACTS['torch_cpu_capability']} and the golden's CPU "
                    f"model ({FACTS.get('cpu_model') or 'not recorded'}; this one: {_cpu_model() or 'unknown'})")
    np.testing.assert_array_equal(got, want)


def test_scorer_on_real_clip_reproduces_official_logits(official_file, clips):
    """Real frames -> our crops with the pipeline bound to the file -> logits == the official crops through
    the official model (bit-exact for the Swish file, whose preprocessing/ crops are bit-exact)."""
    act, path = official_file
    scorer = LipReadingScorer(weights=path)
    assert scorer.roi_pipeline == ACT_PIPELINE[act]
    threads = _one_thread()
    try:
        for i, (clip, frames) in enumerate(clips.items()):
            item = ScoreInput(sample_id=f"ABOUT/test/{clip}", generated=frames, audio=np.zeros(29 * 640, np.float32),
                              word="ABOUT", reference_landmarks=GOLDEN[f"{clip}/landmarks"])
            got = scorer.logits(item).numpy()
            want = GOLDEN[f"logits_{act}_single"][i]
            if ACT_PIPELINE[act] == "legacy":
                # Our legacy crops are within 1 grey level of skimage's (a few pixels): close, not equal.
                np.testing.assert_allclose(got, want, rtol=0, atol=3e-4)
                continue
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
            if _exact_env():
                np.testing.assert_array_equal(got, want)
    finally:
        torch.set_num_threads(threads)


def test_each_official_file_is_bound_to_its_pipeline(tmp_path):
    assert roi_pipeline_for(tmp_path / "lrw_resnet18_mstcn_video.pth", "swish") == (
        "preprocessing", "official file name lrw_resnet18_mstcn_video.pth")
    for name in ("lrw_resnet18_mstcn_adamw_s3.pth.tar", "lrw_resnet18_mstcn.pth.tar"):
        assert roi_pipeline_for(tmp_path / name, "prelu")[0] == "legacy"
    # Unknown names: the activation decides (Swish came with preprocessing/ in the same official commit).
    assert roi_pipeline_for(tmp_path / "mine.pth", "swish")[0] == "preprocessing"
    assert roi_pipeline_for(tmp_path / "mine.pth", "prelu")[0] == "legacy"
    # The card decides for talkbench critics; old cards without the field were trained on legacy crops.
    assert roi_pipeline_for(tmp_path / "c.safetensors", "swish", {"roi_pipeline": "preprocessing"}) == (
        "preprocessing", "card")
    assert roi_pipeline_for(tmp_path / "c.safetensors", "swish", {})[0] == "legacy"
    from talkbench.errors import MetricError

    with pytest.raises(MetricError, match="official file of this name has swish activations but its keys are prelu"):
        roi_pipeline_for(tmp_path / "lrw_resnet18_mstcn_video.pth", "prelu")
    with pytest.raises(MetricError, match="unknown mouth-ROI pipeline 'fancy'"):
        roi_pipeline_for(tmp_path / "c.safetensors", "swish", {"roi_pipeline": "fancy"})


@pytest.fixture(scope="module")
def lrw_root(clips, tmp_path_factory) -> Path:
    """An LRW-layout folder of the real clips: ``lipread_mp4/ABOUT/test/ABOUT_0000N.mp4`` (+ .txt), and an
    11-frame clip."""
    from talkbench.io.video import write_video

    root = tmp_path_factory.mktemp("lrw") / "lipread_mp4"
    d = root / "ABOUT" / "test"
    d.mkdir(parents=True)
    for i, frames in enumerate([*clips.values(), next(iter(clips.values()))[:11]], start=1):
        write_video(d / f"ABOUT_{i:05d}.mp4", frames, np.zeros(len(frames) * 640, np.float32), fps=25)
        (d / f"ABOUT_{i:05d}.txt").write_text("Text:  ABOUT\nConf:  1\n\nDuration: 0.20 seconds\n")
    return root


@pytest.fixture(scope="module", params=["swish", "prelu"])
def small_official(request, tmp_path_factory) -> tuple[str, Path]:
    """A narrow official-layout file under an official name (the name and keys decide the pipeline)."""
    act = request.param
    torch.manual_seed(0)
    sd = LipReader(LipReaderConfig(width=0.125, act=act)).state_dict()
    name = "lrw_resnet18_mstcn_video.pth" if act == "swish" else "lrw_resnet18_mstcn_adamw_s3.pth.tar"
    path = tmp_path_factory.mktemp("small") / name
    torch.save({"model_state_dict": sd}, path)
    return act, path


def test_cli_score_names_the_pipeline_and_records_short_clips(small_official, lrw_root):
    from talkbench.cli import cli

    act, weights = small_official
    pipeline = ACT_PIPELINE[act]
    clip = lrw_root / "ABOUT" / "test" / "ABOUT_00001.mp4"
    args = ["score", str(clip), "--metrics", "lipread", "--word", "about", "--lipreader", str(weights),
            "--crop", "none", "--json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["metrics"]["lipread_top1"] in (0.0, 1.0)
    assert f"roi_{pipeline}" in out["versions"]["lipread_top1"]
    roi = out["critics"]["lipread"]["roi_pipeline"]
    assert roi["name"] == pipeline and roi["decided_by"] == f"official file name {weights.name}"
    assert roi["official"].endswith("legacy_preprocessing/crop_mouth_from_video.py" if pipeline == "legacy"
                                     else " preprocessing/crop_mouth_from_video.py")
    # The 11-frame clip: an error with its reason (exit code 1), not a silent skip.
    res = CliRunner().invoke(cli, [*args[:1], str(clip.with_name("ABOUT_00003.mp4")), *args[2:]])
    assert res.exit_code == 1
    assert "clip has 11 frames" in json.loads(res.output)["errors"]["lipread"]


def test_runner_records_short_clip_per_item(small_official, clips):
    from talkbench.runner import score_rows

    act, weights = small_official
    scorer = LipReadingScorer(weights=weights)
    assert lrw_vocabulary()[0] == "ABOUT"
    clip = next(iter(clips))
    short = ScoreInput(sample_id="ABOUT/test/ABOUT_00003", generated=clips[clip][:11],
                       audio=np.zeros(11 * 640, np.float32), word="ABOUT",
                       reference_landmarks=GOLDEN[f"{clip}/landmarks"][:11])
    rows = score_rows({"lipread": scorer}, short, "gt", "lrw", short.sample_id)
    assert {r.metric for r in rows} == {"lipread_top1", "lipread_top5"}
    assert all(math.isnan(r.value) and "clip has 11 frames" in r.error for r in rows)


def test_cli_run_on_lrw_layout_records_pipeline_and_short_clip(lrw_root, tmp_path, monkeypatch):
    """`talkbench run` on the LRW-layout folder with an official-named Swish file found in
    $TALKBENCH_WEIGHTS: run.json names the pipeline; the 11-frame clip is a per-item error row."""
    from talkbench.cli import cli
    from talkbench.store import ResultStore

    torch.manual_seed(0)
    weights = tmp_path / "weights"
    weights.mkdir()
    sd = LipReader(LipReaderConfig(width=0.125)).state_dict()
    torch.save({"model_state_dict": sd}, weights / "lrw_resnet18_mstcn_video.pth")
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(weights))
    run_dir = tmp_path / "run"
    res = CliRunner().invoke(cli, ["run", "--methods", "static", "--dataset", "lrw", "--root", str(lrw_root.parent),
                                   "--metrics", "lipread", "--device", "cpu", "--run-dir", str(run_dir),
                                   "--no-report", "--no-gen-cache"])
    assert res.exit_code == 1, res.output  # the short clip's rows are failures
    record = json.loads((run_dir / "run.json").read_text())
    assert record["critics"]["lipread"]["roi_pipeline"]["name"] == "preprocessing"
    assert all(m["version"].endswith("-roi_preprocessing-2") for m in record["metrics"]["lipread"])
    store = ResultStore(run_dir / "results.sqlite")
    rows = list(store.rows())
    store.close()
    short = [r for r in rows if r.sample_id == "ABOUT/test/ABOUT_00003"]
    assert len(short) == 4 and all("clip has 11 frames" in r.error for r in short)  # gt and static
    ok = [r for r in rows if r.sample_id != "ABOUT/test/ABOUT_00003"]
    assert len(ok) == 8 and all(r.error is None and r.value in (0.0, 1.0) for r in ok)
