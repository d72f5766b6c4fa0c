"""Training, evaluation and inference between keypoint conventions: COCO-17 2D in,
Human3.6M-17 3D out (the in-the-wild case) on the tiny real dataset."""
import json

import numpy as np
import pytest

from posecontract.layouts import COCO_17, H36M_17
from vp3dkeras.data import PoseCodec, WindowSampler, open_split
from vp3dkeras.evaluate import main as evaluate_main
from vp3dkeras.infer import main as infer_main
from vp3dkeras.train import main as train_main
from run_helpers import TINY_TRAINING


def test_codec_flips_input_and_output_with_their_own_pairs():
    codec = PoseCodec(H36M_17, input_layout=COCO_17)
    assert (codec.num_joints_in, codec.num_joints) == (17, 17)
    coco = np.random.default_rng(0).normal(size=(4, 17, 2))
    flipped = codec.flip_2d(coco)
    # COCO: l_eye (1) <-> r_eye (2); Human3.6M: r_hip (1) <-> l_hip (4).
    np.testing.assert_array_equal(flipped[:, 1, 1], coco[:, 2, 1])
    np.testing.assert_array_equal(flipped[:, 1, 0], -coco[:, 2, 0])
    h36m = np.random.default_rng(1).normal(size=(4, 17, 3))
    np.testing.assert_array_equal(codec.flip(h36m)[:, 1, 1], h36m[:, 4, 1])
    np.testing.assert_array_equal(codec.flip_2d(flipped), coco)
    # The two permutations differ: using one for the other would swap the wrong joints.
    assert not np.array_equal(codec.flip_permutation, codec.flip_permutation_2d)


def test_coco_windows_feed_human36m_targets(tiny_synth_dataset):
    train, _ = open_split(tiny_synth_dataset, "actor_out_hdm05_mm", keypoints_in="coco17",
                          keypoints_out="h36m17")
    assert train.codec.input_layout.name == "coco17" and train.codec.layout.name == "h36m17"
    seq = train.load(0)
    assert seq.keypoints_2d.shape[1:] == (17, 2) and seq.poses_3d.shape[1:] == (17, 3)
    # Input and target are different definitions of the same body: COCO's hips (11, 12) sit
    # closer together than Human3.6M's (4, 1), in 2D as in 3D.
    same, _ = open_split(tiny_synth_dataset, "actor_out_hdm05_mm", keypoints_in="h36m17",
                         keypoints_out="h36m17")
    h36m_2d = same.load(0).keypoints_2d
    coco_width = np.linalg.norm(seq.keypoints_2d[:, 11] - seq.keypoints_2d[:, 12], axis=-1)
    h36m_width = np.linalg.norm(h36m_2d[:, 4] - h36m_2d[:, 1], axis=-1)
    assert coco_width.mean() < 0.97 * h36m_width.mean()
    sampler = WindowSampler(train, (4, 4), 16, augment=True, seed=0)
    inputs, targets = next(sampler.batches(0))
    assert inputs.shape == (16, 9, 17, 2) and targets.shape == (16, 1, 17, 3)
    assert np.isfinite(inputs).all() and np.isfinite(targets).all()


def test_missing_convention_is_a_one_line_error(tiny_synth_dataset):
    with pytest.raises(ValueError, match="not 'humaneva15'.*--keypoints humaneva15"):
        open_split(tiny_synth_dataset, "actor_out_hdm05_mm", keypoints_in="humaneva15")
    with pytest.raises(ValueError, match="unknown keypoint convention 'mpii16'"):
        open_split(tiny_synth_dataset, "actor_out_hdm05_mm", keypoints_out="mpii16")


def test_coco_in_h36m_out_run_is_evaluated_and_used_with_its_conventions(
        tiny_synth_dataset, tmp_path):
    run = tmp_path / "coco2h36m"
    assert train_main(["--dataset", str(tiny_synth_dataset), "--out", str(run), "--epochs",
                       "2", "--keypoints-in", "coco17", "--keypoints-out", "h36m17",
                       *TINY_TRAINING]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["keypoints_in"], config["keypoints_out"]) == ("coco17", "h36m17")
    assert evaluate_main([str(run)]) == 0
    result = json.loads((run / "eval_actor_out_hdm05_mm_test.json").read_text())
    assert np.isfinite(result["metrics"]["P1"])
    # Inference: a COCO track goes in unchanged, Human3.6M joints come out.
    _, test = open_split(tiny_synth_dataset, "actor_out_hdm05_mm", keypoints_in="coco17",
                         keypoints_out="h36m17")
    seq = test.load(0)
    width, height = seq.image_size
    track = test.codec.denormalize_2d(seq.keypoints_2d, (width, height))
    np.savez(tmp_path / "track.npz", keypoints=track, width=width, height=height)
    out = tmp_path / "poses.npz"
    assert infer_main([str(run), "--keypoints", str(tmp_path / "track.npz"), "--layout",
                       "coco17", "--width", str(width), "--height", str(height),
                       "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as poses:
        assert tuple(poses["joint_names"]) == H36M_17.names
        assert poses["poses_3d"].shape == (len(track), 17, 3)
        np.testing.assert_allclose(poses["keypoints_2d"], track, atol=1e-3)
    # Default runs (no options) store the resolved conventions too.
    default_run = tmp_path / "default"
    assert train_main(["--dataset", str(tiny_synth_dataset), "--out", str(default_run),
                       "--epochs", "1", *TINY_TRAINING]) == 0
    config = json.loads((default_run / "config.json").read_text())
    assert (config["keypoints_in"], config["keypoints_out"]) == ("h36m17", "h36m17")
