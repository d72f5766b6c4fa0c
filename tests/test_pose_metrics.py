"""Pose metrics: hand-computed cases and the invariances each protocol promises."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vp3dkeras import metrics
from posecontract.layouts import H36M_17


def random_poses(rng, *leading, joints=17):
    """Non-planar, asymmetric poses in mm."""
    return rng.normal(scale=300.0, size=(*leading, joints, 3))


def similarity(poses, rng):
    """Each pose rotated, scaled and translated by its own random similarity transform."""
    flat = poses.reshape(-1, *poses.shape[-2:])
    rotations = Rotation.random(len(flat), random_state=rng).as_matrix()
    scales = rng.uniform(0.5, 2.0, size=(len(flat), 1, 1))
    shifts = rng.normal(scale=1000.0, size=(len(flat), 1, 3))
    moved = scales * np.einsum("nij,nkj->nki", rotations, flat) + shifts
    return moved.reshape(poses.shape)


def test_mpjpe_hand_computed():
    target = np.zeros((2, 3))
    pred = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    assert metrics.mpjpe(pred, target) == pytest.approx((5.0 + 1.0) / 2)


def test_weighted_mpjpe_scales_each_joint_error():
    target = np.zeros((2, 3))
    pred = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    assert metrics.weighted_mpjpe(pred, target, [2.0, 0.5]) == pytest.approx((10.0 + 0.5) / 2)
    assert metrics.weighted_mpjpe(pred, target, 1.0) == pytest.approx(metrics.mpjpe(pred, target))


def test_p_mpjpe_removes_similarity_transform():
    rng = np.random.default_rng(0)
    target = random_poses(rng, 4, 5)
    assert metrics.p_mpjpe(similarity(target, rng), target) < 1e-6


def test_p_mpjpe_keeps_a_mirror_image():
    rng = np.random.default_rng(1)
    target = random_poses(rng, 8)
    mirrored = target * np.array([-1.0, 1.0, 1.0])
    error = metrics.p_mpjpe(mirrored, target)
    # An improper rotation would map it exactly; a proper one leaves a large residual.
    assert error > 0.1 * metrics.mpjpe(np.zeros_like(target), target)


def test_procrustes_rotation_is_proper():
    rng = np.random.default_rng(2)
    target = random_poses(rng, 6)
    pred = target * np.array([1.0, -1.0, 1.0]) + rng.normal(size=target.shape)
    aligned = metrics.procrustes_align(pred, target)
    # Recover the linear map from centred pred to centred aligned: a positive-scale rotation.
    p0 = pred - pred.mean(-2, keepdims=True)
    a0 = aligned - aligned.mean(-2, keepdims=True)
    for p, a in zip(p0, a0):
        m, *_ = np.linalg.lstsq(p, a, rcond=None)
        assert np.linalg.det(m) > 0


def test_protocol_ordering_for_noisy_scaled_copies():
    rng = np.random.default_rng(3)
    target = random_poses(rng, 32)
    target -= target[..., :1, :]
    pred = 1.3 * target + rng.normal(scale=20.0, size=target.shape)
    p1, p2, p3 = (metrics.mpjpe(pred, target), metrics.p_mpjpe(pred, target),
                  metrics.n_mpjpe(pred, target))
    assert p2 <= p3 <= p1
    assert p3 < 0.5 * p1


def test_n_mpjpe_removes_uniform_scale_exactly():
    rng = np.random.default_rng(4)
    target = random_poses(rng, 3)
    assert metrics.n_mpjpe(0.7 * target, target) < 1e-9
    assert metrics.optimal_scale(0.5 * target, target) == pytest.approx(2.0)


def test_mpjve_of_constant_offset_is_zero():
    rng = np.random.default_rng(5)
    target = random_poses(rng, 2, 10)
    assert metrics.mpjve(target + np.array([5.0, -3.0, 40.0]), target) == pytest.approx(0.0)


def test_mpjve_hand_computed():
    target = np.zeros((3, 1, 3))
    pred = np.array([[[0.0, 0, 0]], [[3.0, 4.0, 0]], [[3.0, 4.0, 0]]])
    # velocity errors: 5 then 0
    assert metrics.mpjve(pred, target) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="T >= 2"):
        metrics.mpjve(pred[:1], target[:1])


def test_pck_and_auc():
    target = np.zeros((4, 3))
    pred = np.array([[10.0, 0, 0], [0, 50.0, 0], [0, 0, 100.0], [200.0, 0, 0]])
    assert metrics.pck3d(pred, target, 50.0) == pytest.approx(0.25)  # strict
    assert metrics.pck3d(pred, target, 150.0) == pytest.approx(0.75)
    thresholds = np.linspace(0, 300, 61)
    curve = [metrics.pck3d(pred, target, t) for t in thresholds]
    assert np.all(np.diff(curve) >= 0)
    assert metrics.auc(pred, target, thresholds) == pytest.approx(np.mean(curve))
    assert metrics.auc(target, target) == pytest.approx(30 / 31)  # 0 < 0 fails at threshold 0


def test_per_joint_group_mpjpe():
    target = np.zeros((2, H36M_17.num_joints, 3))
    pred = target.copy()
    pred[..., H36M_17.index("l_wrist"), 0] = 10.0
    table = metrics.per_joint_group_mpjpe(pred, target, "h36m17")
    assert set(table) == {"hip", "shoulder", "head", "elbow", "wrist", "knee", "ankle"}
    assert table["wrist"] == pytest.approx(5.0)
    assert table["knee"] == 0.0
    with pytest.raises(ValueError, match="17 joints"):
        metrics.per_joint_group_mpjpe(pred[..., :15, :], target[..., :15, :], H36M_17)


def test_evaluate_poses_reports_mm():
    rng = np.random.default_rng(6)
    target = random_poses(rng, 2, 9) / 1000.0  # metres
    pred = target + rng.normal(scale=0.02, size=target.shape)
    report = metrics.evaluate_poses(pred, target, layout=H36M_17)
    assert report["P1"] == pytest.approx(metrics.mpjpe(pred * 1000, target * 1000))
    assert report["P2"] <= report["P1"]
    assert report["MPJVE"] == pytest.approx(metrics.mpjve(pred * 1000, target * 1000))
    assert 0.0 <= report["AUC"] <= report["PCK150"] <= report["PCK200"] <= 1.0
    assert set(report["per_group"]) == set(H36M_17.groups)
    single = metrics.evaluate_poses(pred[0, 0], target[0, 0])
    assert "MPJVE" not in single and "per_group" not in single


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="differs"):
        metrics.mpjpe(np.zeros((17, 3)), np.zeros((16, 3)))
