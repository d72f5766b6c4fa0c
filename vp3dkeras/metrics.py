"""Evaluation metrics for 3D pose estimation, in NumPy.

Every function takes poses shaped ``(..., J, 3)`` and returns errors in the input's units:
pass millimetres (or metres and convert) yourself. `evaluate_poses` does the conversion to
millimetres and gathers the protocols reported by VideoPose3D (Pavllo et al., CVPR 2019):

* Protocol 1 (P1): MPJPE, mean Euclidean joint error.
* Protocol 2 (P2): P-MPJPE, error after a rigid alignment with uniform scale (Procrustes).
* Protocol 3 (P3): N-MPJPE, error after the least-squares optimal uniform scale only.

P1 and P3 compare the poses as given, so callers pass root-relative poses when they want the
usual root-relative protocols.
"""
from __future__ import annotations

from typing import Dict, Optional, Union

import numpy as np

from posecontract.layouts import JointLayout, get_layout

#: Thresholds (mm) over which `auc` averages PCK, as in the MPI-INF-3DHP evaluation.
AUC_THRESHOLDS_MM = np.linspace(0.0, 150.0, 31)


def _check_pair(pred, target):
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
    if pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(f"poses must be shaped (..., J, 3), got {pred.shape}")
    return pred, target


def joint_errors(pred, target) -> np.ndarray:
    """Euclidean distance per joint.

    pred, target: (..., J, 3), any length unit.
    Returns (..., J) in the same unit.
    """
    pred, target = _check_pair(pred, target)
    return np.linalg.norm(pred - target, axis=-1)


def mpjpe(pred, target) -> float:
    """Mean per-joint position error (Protocol 1).

    pred, target: (..., J, 3). Returns the mean Euclidean joint distance, input units.
    """
    return float(np.mean(joint_errors(pred, target)))


def weighted_mpjpe(pred, target, weights) -> float:
    """MPJPE with each joint error multiplied by a weight, then averaged: mean(w * ||p - t||).

    The weights are not renormalised, matching the paper's trajectory loss, whose weight is the
    inverse ground-truth depth 1 / z.

    pred, target: (..., J, 3). weights: broadcastable to (..., J), unitless.
    Returns input units times weight units.
    """
    errors = joint_errors(pred, target)
    weights = np.broadcast_to(np.asarray(weights, dtype=np.float64), errors.shape)
    return float(np.mean(weights * errors))


def procrustes_align(pred, target) -> np.ndarray:
    """Aligns each predicted pose to its target with translation, rotation and uniform scale.

    Least-squares similarity transform (Umeyama); the rotation is kept proper (det = +1), so a
    mirror image of the target is not aligned away.

    pred, target: (..., J, 3). Returns the aligned prediction, (..., J, 3), target units.
    """
    pred, target = _check_pair(pred, target)
    shape = pred.shape
    pred = pred.reshape(-1, *shape[-2:])
    target = target.reshape(-1, *shape[-2:])

    mu_pred = pred.mean(axis=-2, keepdims=True)
    mu_target = target.mean(axis=-2, keepdims=True)
    p0 = pred - mu_pred
    t0 = target - mu_target

    # Maximise trace(R^T H) with H = p0^T t0; rows are points, aligned = s * p0 @ R + mu_target.
    h = np.einsum("nji,njk->nik", p0, t0)
    u, sigma, vt = np.linalg.svd(h)
    # Reflection fix: if U V^T is improper, flip the axis of the smallest singular value.
    sign = np.sign(np.linalg.det(u @ vt))
    sign[sign == 0] = 1.0
    u[:, :, -1] *= sign[:, None]
    sigma[:, -1] *= sign
    rotation = u @ vt

    norm_sq = np.sum(p0**2, axis=(-2, -1))
    scale = sigma.sum(axis=-1) / np.maximum(norm_sq, np.finfo(np.float64).tiny)
    aligned = scale[:, None, None] * (p0 @ rotation) + mu_target
    return aligned.reshape(shape)


def p_mpjpe(pred, target) -> float:
    """Procrustes-aligned MPJPE (Protocol 2).

    pred, target: (..., J, 3); each pose (last two axes) is aligned on its own.
    Returns the mean joint error after alignment, input units.
    """
    return mpjpe(procrustes_align(pred, target), target)


def optimal_scale(pred, target) -> np.ndarray:
    """Least-squares scale s minimising ||s * pred - target||^2 per pose.

    pred, target: (..., J, 3). Returns (..., 1, 1), unitless, ready to broadcast.
    """
    pred, target = _check_pair(pred, target)
    num = np.sum(pred * target, axis=(-2, -1), keepdims=True)
    den = np.sum(pred * pred, axis=(-2, -1), keepdims=True)
    return num / np.maximum(den, np.finfo(np.float64).tiny)


def n_mpjpe(pred, target) -> float:
    """Scale-normalised MPJPE (Protocol 3): MPJPE after the optimal uniform scale per pose.

    No translation or rotation is removed, so pass root-relative poses.
    pred, target: (..., J, 3). Returns input units.
    """
    return mpjpe(optimal_scale(pred, target) * np.asarray(pred, dtype=np.float64), target)


def mpjve(pred, target) -> float:
    """Mean per-joint velocity error: MPJPE of the first differences along time.

    pred, target: (..., T, J, 3) with time on axis -3 and T >= 2.
    Returns input units per frame (multiply by the frame rate for units per second).
    """
    pred, target = _check_pair(pred, target)
    if pred.ndim < 3 or pred.shape[-3] < 2:
        raise ValueError(f"mpjve needs (..., T, J, 3) with T >= 2, got {pred.shape}")
    return mpjpe(np.diff(pred, axis=-3), np.diff(target, axis=-3))


def pck3d(pred, target, threshold: float) -> float:
    """Percentage of correct keypoints in 3D, as a fraction in [0, 1].

    A joint is correct when its Euclidean error is strictly below `threshold`.
    pred, target: (..., J, 3); threshold in the same units.
    """
    return float(np.mean(joint_errors(pred, target) < threshold))


def auc(pred, target, thresholds=AUC_THRESHOLDS_MM) -> float:
    """Area under the PCK curve: mean of `pck3d` over `thresholds`, a fraction in [0, 1].

    pred, target: (..., J, 3). The default thresholds are 0..150 mm in 31 steps, so pass mm.
    """
    errors = joint_errors(pred, target)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    return float(np.mean(errors[..., None] < thresholds))


def _as_layout(layout: Union[JointLayout, str]) -> JointLayout:
    return get_layout(layout) if isinstance(layout, str) else layout


def per_joint_group_mpjpe(pred, target, layout: Union[JointLayout, str]) -> Dict[str, float]:
    """MPJPE of each joint group of a layout (hip, shoulder, head, elbow, wrist, knee, ankle).

    pred, target: (..., J, 3) with J == layout.num_joints. layout: a JointLayout or its name.
    Returns group name -> mean joint error over the group's joints, input units.
    """
    layout = _as_layout(layout)
    errors = joint_errors(pred, target)
    if errors.shape[-1] != layout.num_joints:
        raise ValueError(f"layout {layout.name!r} has {layout.num_joints} joints, "
                         f"poses have {errors.shape[-1]}")
    return {group: float(np.mean(errors[..., list(joints)]))
            for group, joints in layout.groups.items()}


def evaluate_poses(pred, target, layout: Optional[Union[JointLayout, str]] = None,
                   scale_to_mm: float = 1000.0, time_axis: bool = True) -> Dict[str, object]:
    """All pose metrics at once, in millimetres.

    pred, target: (..., J, 3) in units that `scale_to_mm` converts to mm (1000 for metres).
    layout: JointLayout or name for the per-group table; None skips it.
    time_axis: whether axis -3 is time; MPJVE is reported only then (and when T >= 2).

    Returns a dict: "P1", "P2", "P3" (mm), "MPJVE" (mm per frame, when available),
    "PCK150", "PCK200", "AUC" (fractions in [0, 1]) and "per_group" (group -> mm) when a
    layout is given.
    """
    pred, target = _check_pair(pred, target)
    pred = pred * scale_to_mm
    target = target * scale_to_mm
    results: Dict[str, object] = {
        "P1": mpjpe(pred, target),
        "P2": p_mpjpe(pred, target),
        "P3": n_mpjpe(pred, target),
    }
    if time_axis and pred.ndim >= 3 and pred.shape[-3] >= 2:
        results["MPJVE"] = mpjve(pred, target)
    results["PCK150"] = pck3d(pred, target, 150.0)
    results["PCK200"] = pck3d(pred, target, 200.0)
    results["AUC"] = auc(pred, target)
    if layout is not None:
        results["per_group"] = per_joint_group_mpjpe(pred, target, layout)
    return results


def bone_lengths(poses, layout: Union[JointLayout, str]) -> np.ndarray:
    """Length of every bone (parent, child) of `layout`.

    poses: (..., J, 3). Returns (..., num_bones) in the poses' unit, bones in
    `layout.bones()` order.
    """
    layout = _as_layout(layout)
    poses = np.asarray(poses, dtype=np.float64)
    parents, children = (np.array(side) for side in zip(*layout.bones()))
    return np.linalg.norm(poses[..., children, :] - poses[..., parents, :], axis=-1)


def bone_length_report(pred, target, layout: Union[JointLayout, str],
                       scale_to_mm: float = 1000.0) -> Dict[str, object]:
    """Predicted against true bone lengths, in mm.

    pred, target: (..., J, 3) in units that `scale_to_mm` converts to mm.
    Returns {"error": mean over frames and bones of |predicted - true length|,
    "per_bone": {"parent-child": {"pred", "true", "error"}}} with per-bone means.
    """
    layout = _as_layout(layout)
    predicted = bone_lengths(pred, layout).reshape(-1, len(layout.bones())) * scale_to_mm
    true = bone_lengths(target, layout).reshape(-1, len(layout.bones())) * scale_to_mm
    errors = np.abs(predicted - true)
    per_bone = {f"{layout.names[p]}-{layout.names[c]}": {
        "pred": float(predicted[:, k].mean()), "true": float(true[:, k].mean()),
        "error": float(errors[:, k].mean())} for k, (p, c) in enumerate(layout.bones())}
    return {"error": float(errors.mean()), "per_bone": per_bone}
