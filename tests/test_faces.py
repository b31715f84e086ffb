from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import medfilt

from talkbench.errors import FaceNotFoundError
from talkbench.faces.crop import load_clip, square_boxes
from talkbench.faces.detect import FaceDetector
from talkbench.faces.landmarks import LandmarkPredictor, detect_landmarks
from talkbench.faces.models import hog_detector
from talkbench.faces.track import smooth_boxes, track_faces
from talkbench.io.video import write_video
from talkbench.types import Sample
from tests.conftest import portrait_frame, talking_frames, tone


def test_detector_matches_raw_dlib_on_real_portrait() -> None:
    img = portrait_frame(224)
    ours = FaceDetector(max_side=0).detect(img)
    rects = hog_detector()(img, 0)
    assert len(ours) == len(rects) == 1
    r = rects[0]
    np.testing.assert_allclose(ours[0, :4], [r.left(), r.top(), r.right(), r.bottom()], atol=1)


def test_downscaled_detection_maps_boxes_back() -> None:
    import cv2

    img = cv2.resize(portrait_frame(224), (640, 640))
    full = FaceDetector(max_side=0).detect(img)[0, :4]
    small = FaceDetector(max_side=320).detect(img)[0, :4]
    assert np.abs(full - small).max() < 0.08 * (full[2] - full[0])


def test_grayscale_frames_are_accepted() -> None:
    gray = portrait_frame(224).mean(axis=2).astype(np.uint8)
    assert len(FaceDetector().detect(gray)) == 1


def test_tracking_follows_motion_and_interpolates() -> None:
    frames = talking_frames(20, dx=2.0)
    boxes = track_faces(frames, detect_every=5)
    assert not np.isnan(boxes).any()
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    det = FaceDetector()
    for t in (0, 5, 10, 15):  # detection frames carry the detector's own box
        np.testing.assert_allclose(boxes[t], det.detect(frames[t])[0, :4], atol=1e-3)
    for t in (1, 2, 3, 4):  # in between: linear interpolation
        np.testing.assert_allclose(boxes[t], boxes[0] + (boxes[5] - boxes[0]) * t / 5, atol=1e-6)
    # The face moved 30 px between frames 0 and 15 (HOG boxes are quantised to its 8 px cells).
    assert cx[15] - cx[0] == pytest.approx(30, abs=12)
    assert np.allclose(boxes[16:], boxes[15])  # held after the last detection


def test_face_lost_for_a_while_gives_nan_rows() -> None:
    frames = talking_frames(40, dx=0.0)
    frames[10:40] = 0  # the face disappears after frame 9
    boxes = track_faces(frames, detect_every=5, max_gap=5)
    assert not np.isnan(boxes[:10]).any()
    assert np.isnan(boxes[20:]).all()


def test_several_faces_pick_the_largest() -> None:
    import cv2

    big = portrait_frame(224)
    small = cv2.resize(big, (150, 150))
    canvas = np.zeros((240, 400, 3), np.uint8)
    canvas[8:232, 0:224] = big
    canvas[40:190, 240:390] = small
    boxes = track_faces(np.stack([canvas] * 6), detect_every=5)
    assert ((boxes[:, 0] + boxes[:, 2]) / 2 < 224).all()


def test_smooth_boxes_is_a_median_filter() -> None:
    rng = np.random.default_rng(0)
    boxes = np.cumsum(rng.normal(size=(30, 4)), axis=0) + 100
    ours = smooth_boxes(boxes, 5)
    padded = np.pad(boxes, ((2, 2), (0, 0)), mode="edge")
    ref = np.stack([medfilt(padded[:, c], 5)[2:-2] for c in range(4)], axis=1)
    np.testing.assert_allclose(ours, ref)
    gap = boxes.copy()
    gap[10:12] = np.nan
    assert np.isnan(smooth_boxes(gap, 5)[10:12]).all() and not np.isnan(smooth_boxes(gap, 5)[:10]).any()


def test_landmarks_mouth_inside_lower_face() -> None:
    img = portrait_frame(224)
    lms = detect_landmarks(img[None])
    assert lms.shape == (1, 68, 2) and not np.isnan(lms).any()
    box = FaceDetector(max_side=0).detect(img)[0]
    mouth = lms[0, 48:68]
    assert (mouth[:, 1] > (box[1] + box[3]) / 2).all()  # mouth in the lower half of the box
    nose_tip, chin = lms[0, 30], lms[0, 8]
    assert nose_tip[1] < mouth[:, 1].mean() < chin[1]
    assert np.isnan(detect_landmarks(np.zeros((1, 100, 100, 3), np.uint8))).all()


def test_load_clip_crops_caches_and_maps_landmarks(talking_clip: Path) -> None:
    s = Sample("folder", "test", "talking", talking_clip)
    clip = load_clip(s, size=96)
    assert clip.frames.shape == (25, 96, 96, 3) and clip.audio.shape == (16000,)
    assert clip.meta["frames_without_face"] == 0
    # Landmarks mapped into crop pixels agree with landmarks predicted on the crops themselves.
    direct = detect_landmarks(clip.frames[:3], predictor=LandmarkPredictor())
    assert np.nanmean(np.abs(direct[:, 48:68] - clip.landmarks[:3, 48:68])) < 3.0
    again = load_clip(s, size=96)
    np.testing.assert_array_equal(again.frames, clip.frames)
    assert again.meta["cache"] == clip.meta["cache"]


def test_load_clip_no_face_raises(tmp_path: Path) -> None:
    path = tmp_path / "noface.mp4"
    write_video(path, np.full((10, 64, 64, 3), 90, np.uint8), tone(0.4))
    with pytest.raises(FaceNotFoundError, match="noface.mp4"):
        load_clip(Sample("folder", "test", "noface", path))


def test_load_clip_keeps_only_frames_with_audio(tmp_path: Path) -> None:
    path = tmp_path / "short.mp4"
    write_video(path, talking_frames(25), tone(0.5))
    clip = load_clip(Sample("folder", "test", "short", path), size=64, landmarks=False)
    # AAC adds a few ms of priming: 0.5 s of audio covers 12 frames (the 13th only partly).
    assert len(clip.frames) in (12, 13) and clip.audio.shape == (len(clip.frames) * 640,)
    assert clip.meta["audio_mismatch_s"] < -0.4 and "shorter than the video" in clip.meta["notes"][0]


def test_square_boxes_geometry() -> None:
    w = square_boxes(np.array([[10.0, 20.0, 50.0, 80.0]]), scale=1.5, shift=0.1)[0]
    side = 1.5 * 60
    assert w[2] - w[0] == pytest.approx(side) and w[3] - w[1] == pytest.approx(side)
    assert (w[0] + w[2]) / 2 == pytest.approx(30) and (w[1] + w[3]) / 2 == pytest.approx(50 + 0.1 * side)


@pytest.mark.parametrize("name", ["vox_00015.mp4", "retalking_4.mp4"])
def test_real_videos_crop(real_data: Path, name: str) -> None:
    clip = load_clip(Sample("folder", "test", name, real_data / "videos" / name))
    assert clip.frames.shape[1:] == (128, 128, 3)
    assert clip.meta["frames_without_face"] == 0
    mouth = clip.landmarks[:, 48:68]
    assert not np.isnan(mouth).any()
    # The mouth sits in the lower middle of the protocol crop.
    assert 40 < np.median(mouth[..., 0]) < 88 and 64 < np.median(mouth[..., 1]) < 120
