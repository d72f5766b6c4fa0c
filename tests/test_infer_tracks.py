"""Lifting real detector tracks: models whose input convention differs from their output
convention (VideoPose3D's in-the-wild COCO-in / Human3.6M-out model), flip test-time
augmentation with each side's own left/right pairs, and the CLI on the real-input cases."""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from conftest import shared_dir
from posecontract.layouts import COCO_17, H36M_17
from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.infer import main as infer_main
from vp3dkeras.inference import keras_lifter, predict_poses
from vp3dkeras.models import TemporalModel

CASES = shared_dir() / "cases" / "real_inputs"
# VideoPose3D's index lists (its in-the-wild metadata and Human3.6M skeleton): COCO keypoint
# left/right pairs and Human3.6M-17 joint left/right pairs.
KPS_LEFT, KPS_RIGHT = [1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]
JOINTS_LEFT, JOINTS_RIGHT = [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]


def _case(name):
    path = CASES / name
    if not path.exists():
        pytest.fail(f"{path} not found; set VP3D_SHARED_DIR to the shared/ folder")
    return path


@pytest.fixture(scope="module")
def coco_model():
    keras.utils.set_random_seed(7)
    model = TemporalModel(17, 2, 17, (3, 3), channels=16)
    model(np.zeros((1, 9, 17, 2), "float32"))
    return model


def _mirror(points, left, right):
    mirrored = np.array(points)
    mirrored[..., 0] *= -1
    mirrored[..., left + right, :] = mirrored[..., right + left, :]
    return mirrored


def test_coco_in_h36m_out_flip_average_matches_videopose3d(coco_model):
    lifter = keras_lifter(coco_model)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (30, 17, 2)).astype("float32")
    both = lifter(np.stack([x, _mirror(x, KPS_LEFT, KPS_RIGHT)]))
    expected = (both[0] + _mirror(both[1], JOINTS_LEFT, JOINTS_RIGHT)) / 2
    expected[:, 0] = 0
    ours = predict_poses(lifter, x, PoseCodec(H36M_17), True, input_codec=PoseCodec(COCO_17))
    np.testing.assert_allclose(ours, expected, atol=1e-6)
    # mirroring the COCO input with Human3.6M's pairs would be a different (wrong) average
    wrong = predict_poses(lifter, x, PoseCodec(H36M_17), True)
    assert np.abs(wrong - expected).max() > 1e-3


@pytest.fixture(scope="module")
def coco_run(coco_model, tmp_path_factory):
    run = tmp_path_factory.mktemp("coco_run")
    coco_model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"keypoints_in": "coco17",
                                                 "keypoints_out": "h36m17"}))
    return run


def test_cli_lifts_coco_results_with_missing_frames(coco_run, tmp_path, capsys):
    out = tmp_path / "poses.npz"
    track = _case("09_coco_results_missing_frames/coco_results_missing_12-14.json")
    assert infer_main([str(coco_run), "--keypoints", str(track), "--width", "640",
                       "--height", "480", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "interpolated 3 frames: 12-14" in printed
    assert "640x480 px" in printed and "image size unknown" not in printed  # the size given
    with np.load(out) as result:
        assert result["poses_3d"].shape == (40, 17, 3)
        assert np.isfinite(result["poses_3d"]).all()
        assert list(result["interpolated_frames"]) == [12, 13, 14]
        assert list(result["joint_names"]) == list(H36M_17.names)
        assert result["keypoints_2d"].shape == (40, 17, 2)  # the COCO input, as the model saw


def test_cli_lifts_alphapose_and_nan_tracks_through_an_h36m_input_model(coco_run, tmp_path):
    h36m_run = tmp_path / "h36m_run"
    h36m_run.mkdir()
    (h36m_run / "model.keras").symlink_to(coco_run / "model.keras")
    for name, size in (("10_alphapose_results/alphapose-results.json", ["--width", "640",
                                                                         "--height", "480"]),
                       ("14_nan_frames_npz/track_nan_frames.npz", [])):
        out = tmp_path / "poses.npz"
        assert infer_main([str(h36m_run), "--keypoints", str(_case(name)), "--out", str(out),
                           *size]) == 0
        with np.load(out) as result:
            assert result["poses_3d"].shape == (40, 17, 3)
            assert np.isfinite(result["poses_3d"]).all()


def test_cli_refuses_an_empty_detection_list_in_one_line(coco_run, tmp_path, capsys):
    path = _case("12_empty_detection_list/coco_results_empty.json")
    assert infer_main([str(coco_run), "--keypoints", str(path), "--width", "640", "--height",
                       "480", "--out", str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: no detections in {path}\n"
    assert not (tmp_path / "p.npz").exists()


def test_cli_refuses_a_long_gap_naming_the_frames(coco_run, tmp_path, capsys):
    path = _case("14_nan_frames_npz/track_nan_frames.npz")
    assert infer_main([str(coco_run), "--keypoints", str(path), "--max-gap", "2",
                       "--out", str(tmp_path / "p.npz")]) == 2
    assert "frames 12-14 have no usable keypoints" in capsys.readouterr().err


def test_cli_lifts_with_a_videopose3d_checkpoint(tmp_path, capsys):
    checkpoint = _case("15_vp3d_checkpoint_with_random_state/vp3d_style_checkpoint.bin")
    track = _case("10_alphapose_results/alphapose-results.json")
    out = tmp_path / "poses.npz"
    assert infer_main([str(checkpoint), "--keypoints", str(track), "--keypoints-in", "coco17",
                       "--width", "640", "--height", "480", "--out", str(out)]) == 0
    from vp3dkeras.convert import load_videopose3d
    from vp3dkeras.data.keypoint_formats import read_track

    lifter = keras_lifter(load_videopose3d(checkpoint))
    keypoints = PoseCodec(COCO_17).normalize_2d(read_track(track).keypoints, (640, 480))
    expected = predict_poses(lifter, keypoints, PoseCodec(H36M_17), True,
                             input_codec=PoseCodec(COCO_17))
    with np.load(out) as result:
        np.testing.assert_allclose(result["poses_3d"], expected, atol=1e-6)
