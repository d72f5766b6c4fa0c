"""The error decomposition of experiments/sim_to_real_errors.py on poses whose answer is known."""
import importlib.util

import numpy as np

from conftest import REPO_ROOT
from posecontract.layouts import HUMANEVA_15

_SPEC = importlib.util.spec_from_file_location(
    "sim_to_real_errors", REPO_ROOT / "experiments" / "sim_to_real_errors.py")
errors = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(errors)


def _poses(n=50, seed=0):
    """(n, 15, 3) root-relative HumanEva-I-like poses, mm, turned about the vertical."""
    rng = np.random.default_rng(seed)
    names = HUMANEVA_15.names
    base = np.zeros((15, 3))
    spots = {"thorax": (0, 0, 480), "l_shoulder": (-160, 0, 460), "r_shoulder": (160, 0, 460),
             "l_elbow": (-200, 0, 180), "r_elbow": (200, 0, 180), "l_wrist": (-210, 80, -60),
             "r_wrist": (210, 80, -60), "l_hip": (-47, 50, 0), "r_hip": (47, 50, 0),
             "l_knee": (-110, 80, -400), "r_knee": (110, 80, -400),
             "l_ankle": (-120, 40, -800), "r_ankle": (120, 40, -800), "head": (0, 30, 790)}
    for name, xyz in spots.items():
        base[names.index(name)] = xyz
    poses = base + rng.normal(0, 20, (n, 15, 3))
    poses[:, 0] = 0.0
    angle = rng.uniform(0, 2 * np.pi, n)
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([c, -s, 0 * c], -1), np.stack([s, c, 0 * c], -1),
                         np.stack([0 * c, 0 * c, 1 + 0 * c], -1)], -2)
    return np.einsum("nij,nkj->nki", rotation, poses)


def test_a_perfect_prediction_has_no_error_anywhere():
    target = _poses()
    result = errors.decompose(target.copy(), target, HUMANEVA_15)
    assert result["P1"] < 1e-9 and result["P2"] < 1e-6
    assert abs(result["optimal_scale"] - 1) < 1e-9 and result["bone_direction_error_deg"] < 1e-3


def test_a_constant_offset_on_the_body_is_a_definition_bias():
    """A keypoint placed 30 mm off in the body frame, whatever the body's heading: the bias
    removal takes it all; the other parts see it as pose error."""
    target = _poses()
    frames = errors.pelvis_frames(target, list(HUMANEVA_15.names))
    pred = target.copy()
    knee = HUMANEVA_15.index("l_knee")
    pred[:, knee] += frames @ np.array([30.0, 0.0, 0.0])  # 30 mm towards the right hip
    result = errors.decompose(pred, target, HUMANEVA_15)
    assert abs(result["P1"] - 30.0 / 15) < 1e-6
    assert result["P1_minus_body_frame_bias"] < 1e-6
    assert np.allclose(result["body_frame_bias_mm"]["l_knee"], [30.0, 0.0, 0.0], atol=0.05)


def test_a_scaled_skeleton_is_a_bone_length_error_not_a_pose_error():
    target = _poses()
    result = errors.decompose(0.9 * target, target, HUMANEVA_15)
    assert result["P1"] > 10.0
    assert result["P1_true_bone_lengths"] < 1e-6
    assert abs(result["optimal_scale"] - 1 / 0.9) < 1e-6
    assert result["bone_direction_error_deg"] < 1e-3


def test_nearest_pose_angle_is_zero_for_seen_poses_and_grows_with_novelty():
    poses = _poses(200)
    train = errors.bone_directions(poses[:100], HUMANEVA_15)
    # Seen poses, the person turned 90 degrees: not new (directions are in the pelvis frame).
    turned = poses[:10] @ np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).T
    seen = errors.nearest_pose_angles(errors.bone_directions(turned, HUMANEVA_15), train)
    assert np.allclose(seen, 0.0, atol=1e-3)
    novel = errors.nearest_pose_angles(errors.bone_directions(poses[100:], HUMANEVA_15), train)
    assert novel.mean() > 1.0


def test_knee_and_thigh_angles_of_known_legs():
    """Straight legs hanging along the trunk give 0 and 0; a leg bent at the knee by 30
    degrees with the thigh swung 20 degrees forward gives 30 and 20, whatever the heading."""
    poses = _poses(n=8)
    names = HUMANEVA_15.names
    frames = errors.pelvis_frames(poses, list(names))
    for side in "lr":
        hip = poses[:, names.index(f"{side}_hip")]
        down = -frames[:, :, 2]  # minus the body's z (towards the thorax), camera space
        forward = frames[:, :, 1]
        a, b = np.radians(20), np.radians(20 + 30)
        knee = hip + 400 * (np.cos(a) * down + np.sin(a) * forward)
        ankle = knee + 400 * (np.cos(b) * down + np.sin(b) * forward)
        poses[:, names.index(f"{side}_knee")] = knee
        poses[:, names.index(f"{side}_ankle")] = ankle
    # Moving knees and ankles leaves the pelvis frame (hips, thorax) as it was.
    np.testing.assert_allclose(errors.knee_flexion(poses, HUMANEVA_15), 30.0, atol=1e-6)
    np.testing.assert_allclose(errors.thigh_flexion(poses, HUMANEVA_15), 20.0, atol=1e-6)
    stats = errors.posture(poses, HUMANEVA_15)
    assert abs(stats["knee_p1"] - 30) < 1e-6 and abs(stats["thigh_mean"] - 20) < 1e-6
