"""Audio2Head preprocessing: 41-d features against python_speech_features / pyworld on real speech and
against the official feature function (golden fixture), F0 gap filling, pose boxes, windows, bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from baselines.audio2head.preprocess import (
    CAMERA,
    audio_features,
    denormalise_pose,
    draw_pose,
    fill_unvoiced,
    frame_blocks,
    normalise_pose,
    project_box,
    reference_image,
    to_pcm16,
    window_inputs,
    windows,
)
from baselines.audio2head.seeded import synthetic_speech
from talkbench.errors import MediaError

GOLDEN = Path(__file__).parent / "fixtures" / "audio2head" / "golden.npz"
pyworld = pytest.importorskip("pyworld")
psf = pytest.importorskip("python_speech_features")


@pytest.fixture(scope="module")
def speech(real_data: Path) -> np.ndarray:
    """3 s of real English speech, 16 kHz mono float (from a 16 kHz stereo s16 file)."""
    from scipy.io import wavfile

    sr, x = wavfile.read(real_data / "speech" / "RD_Radio31_000.wav")
    assert sr == 16000 and x.ndim == 2
    return x[: 3 * sr]


def test_features_match_python_speech_features_and_pyworld(speech) -> None:
    feats = audio_features(speech, 16000)
    mono = np.round(speech.astype(np.float64).mean(axis=1)).astype(np.int16).astype(np.float64)
    x = mono - mono.mean()
    x = x / np.abs(x).max()
    mf, fb = psf.mfcc(x, 16000), psf.logfbank(x, 16000)
    f0, _ = pyworld.harvest(x, 16000, frame_period=10)
    n = min(len(mf), len(fb), len(f0))
    assert feats.shape == (n, 41) and n == 299
    np.testing.assert_allclose(feats[:, :13], mf[:n], atol=1e-3)
    np.testing.assert_allclose(feats[:, 13:39], fb[:n], atol=1e-3)
    voiced = f0[:n] > 0
    assert 0.2 < voiced.mean() < 0.95  # real speech: voiced and unvoiced stretches
    np.testing.assert_array_equal(feats[:, 40], voiced.astype(np.float32))
    np.testing.assert_allclose(feats[voiced, 39], f0[:n][voiced], rtol=1e-6)
    # unvoiced gaps: linear between voiced neighbours, held at the ends (np.interp's rule)
    idx = np.flatnonzero(f0 > 0)
    np.testing.assert_allclose(feats[:, 39], np.interp(np.arange(len(f0)), idx, f0[idx])[:n], rtol=1e-5)


def test_features_match_official_function_on_synthetic_speech() -> None:
    want = np.load(GOLDEN)["features/official"]
    got = audio_features(synthetic_speech(), 16000)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert want[:, 40].min() == 0 and want[:, 40].max() == 1  # the gaps were exercised


def test_fill_unvoiced_edges() -> None:
    f0 = np.array([0, 0, 100, 0, 0, 130, 0, 140, 0, 0], float)
    out = fill_unvoiced(f0, f0 > 0)
    np.testing.assert_allclose(out, [100, 100, 100, 110, 120, 130, 135, 140, 140, 140])
    np.testing.assert_array_equal(fill_unvoiced(np.zeros(5), np.zeros(5, bool)), np.zeros(5))


def test_frame_blocks_four_rows_per_frame() -> None:
    feats = np.arange(10 * 41, dtype=np.float32).reshape(10, 41)
    b = frame_blocks(feats)
    assert b.shape == (2, 4, 41)
    np.testing.assert_array_equal(b[1, 0], feats[4])


def test_stereo_and_sample_rates(speech) -> None:
    """48 kHz stereo and 8 kHz mono are brought to 16 kHz mono first (as ffmpeg -ac 1 -ar 16000);
    features keep the 100 Hz rate and the same duration."""
    from scipy.signal import resample_poly

    x = speech.astype(np.float64) / 32768
    ref = audio_features(speech, 16000)
    st48 = resample_poly(x, 3, 1, axis=0)
    f48 = audio_features(st48.astype(np.float32), 48000)
    assert abs(len(f48) - len(ref)) <= 1
    n = min(len(f48), len(ref))
    # same speech: MFCC 1..12 correlate strongly
    assert np.corrcoef(f48[:n, 1:13].ravel(), ref[:n, 1:13].ravel())[0, 1] > 0.95
    mono8 = resample_poly(x.mean(axis=1), 1, 2)
    f8 = audio_features(mono8.astype(np.float32), 8000)
    assert abs(len(f8) - len(ref)) <= 1
    # stereo channels are averaged
    np.testing.assert_array_equal(to_pcm16(st48, 48000), to_pcm16(st48.mean(axis=1), 48000))


def test_silence_is_refused_and_unvoiced_noise_is_kept() -> None:
    with pytest.raises(MediaError, match="silent"):
        audio_features(np.zeros(16000, np.float32), 16000)
    with pytest.raises(MediaError, match="too short"):
        audio_features(np.ones(100, np.float32) * 0.1, 16000)
    noise = (np.random.default_rng(0).standard_normal(8000) * 1e-3).astype(np.float32)
    feats = audio_features(noise, 16000)
    assert feats.shape == (49, 41) and np.isfinite(feats).all()
    assert (feats[:, 40] == 0).all() and (feats[:, 39] == 0).all()  # F0 all unvoiced stays zero, as official


def test_reference_image_is_256_rgb_unit_range() -> None:
    img = np.zeros((128, 128, 4), np.uint8)
    img[..., 0] = 255
    out = reference_image(img)
    assert out.shape == (3, 256, 256) and out.dtype == np.float32
    assert out[0].min() == 1.0 and out[1:].max() == 0.0


def test_pose_denormalisation_ranges_and_inverse() -> None:
    rot, trans = denormalise_pose(np.array([[-1] * 6, [1] * 6], np.float32))
    np.testing.assert_allclose(rot[0], [-0.639, -0.501, -0.47], rtol=1e-6)
    np.testing.assert_allclose(trans[1], [159.1, 116.5, 376.5], rtol=1e-6)
    p = np.random.default_rng(1).uniform(-1, 1, (5, 6)).astype(np.float32)
    np.testing.assert_allclose(normalise_pose(*denormalise_pose(p)), p, atol=1e-5)


def test_box_projection_is_a_pinhole_camera() -> None:
    """Independent pinhole projection of the box corners (rotation by Rodrigues, f 233.333, c 128)."""
    rot, trans = np.array([0.1, -0.2, 0.05]), np.array([10.0, -5.0, 280.0])
    r, _ = cv2.Rodrigues(rot)
    corners = np.array([[-75, -75, 0], [-75, 75, 0], [75, 75, 0], [75, -75, 0], [-75, -75, 0],
                        [-100, -100, 100], [-100, 100, 100], [100, 100, 100], [100, -100, 100], [-100, -100, 100]], float)
    cam = corners @ r.T + trans
    uv = cam[:, :2] / cam[:, 2:] * CAMERA[0, 0] + 128
    np.testing.assert_array_equal(project_box(rot, trans), np.trunc(uv).astype(np.int32))
    img = draw_pose(rot, trans)
    assert img.shape == (256, 256) and set(np.unique(img)) == {0.0, 255.0}
    for u, v in np.trunc(uv).astype(int):
        if 0 <= u < 256 and 0 <= v < 256:
            assert img[v, u] == 255.0


def test_windows_keep_official_ranges() -> None:
    assert windows(40) == [(0, 0, 40)]
    assert windows(48) == [(0, 0, 48)]
    assert windows(59) == [(0, 0, 48), (32, 16, 27)]
    w = windows(200)
    assert w[:3] == [(0, 0, 48), (32, 16, 48), (64, 16, 48)]
    assert sum(hi - lo for _, lo, hi in w) == 200
    # every frame is produced once, in order
    frames = [s + t for s, lo, hi in w for t in range(lo, hi)]
    assert frames == list(range(200))


def test_window_padding_zero_audio_last_pose() -> None:
    blocks = np.ones((10, 4, 41), np.float32)
    rot = np.zeros((11, 3), np.float32)
    trans = np.tile(np.array([0, 0, 300], np.float32), (11, 1))
    trans[-1] = [40, 0, 300]  # the last pose (row T) is the padding pose
    audio, poses = window_inputs(blocks, rot, trans, 0)
    assert audio.shape == (64, 4, 41) and poses.shape == (64, 256, 256)
    assert (audio[:10] == 1).all() and (audio[10:] == 0).all()
    np.testing.assert_array_equal(poses[10], draw_pose(rot[-1], trans[-1]))
    np.testing.assert_array_equal(poses[63], draw_pose(rot[-1], trans[-1]))
    assert not np.array_equal(poses[9], poses[10])


def test_short_audio_generates_every_frame() -> None:
    """Audio shorter than one 64-frame window: zero-padded window, every frame produced."""
    import torch

    from baselines.audio2head.pipeline import generate
    from baselines.audio2head.seeded import seeded_networks, synthetic_image

    torch.set_num_threads(1)
    feats = audio_features(synthetic_speech(seconds=0.5), 16000)
    nets = seeded_networks(0.125)
    gen = generate(nets, reference_image(synthetic_image(2)), feats)
    assert len(gen.frames) == len(feats) // 4 == 12
    assert gen.poses.shape == (13, 6) and gen.frames.shape[1:] == (3, 256, 256)
    with pytest.raises(ValueError, match="shorter than one video frame"):
        generate(nets, reference_image(synthetic_image(2)), feats[:3])
