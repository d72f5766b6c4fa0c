"""Checks of a real set's 3D ground truth: frames no human body can take (a data defect).

A benchmark's ground truth is not always right. In HumanEva-I as VideoPose3D's preparation
writes it (`../shared/real/humaneva`), subject S3's walking trials have the head joint below
the thorax, pointing down the trunk while the person walks upright: all 478 frames of
Train/S3 "Walking 1 chunk0/chunk2" and 209 of the 267 frames of Validate/S3
"Walking 1 chunk4" (627 of the 14,544 test camera-frames). A lifter is scored there against a
pose that does not exist; one trained on Train/S3 learns it.

`implausible_frames` flags a frame when the head points more than `MAX_HEAD_ANGLE_DEG` away
from the trunk's direction (root -> thorax, or root -> neck): the angle between the
trunk axis and the thorax -> head segment. The cervical spine flexes about 45-50 degrees and
extends about 60-70 (e.g. Swartz et al. 2005, J. Orthop. Sports Phys. Ther. 35(7)), so a
head more than 100 degrees off the trunk axis is a wrong label, not a pose.

`python -m vp3dkeras.evaluate` reports such frames per sequence in one warning line and
scores them as the benchmark defines them; `--exclude-implausible` leaves them out.
NumPy only.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

#: Largest angle, degrees, between the trunk axis and the thorax -> head direction accepted.
MAX_HEAD_ANGLE_DEG = 100.0


def head_trunk_joints(layout) -> Optional[Tuple[int, int, int]]:
    """(root, trunk top, head) joint indices of a layout, or None when it has no head or no
    thorax/neck (e.g. COCO's 17 keypoints): the check does not apply."""
    names = list(layout.names)
    top = next((n for n in ("thorax", "neck") if n in names), None)
    if "head" not in names or top is None:
        return None
    return 0, names.index(top), names.index("head")


def head_angles(poses: np.ndarray, layout) -> Optional[np.ndarray]:
    """(T,) angle in degrees between the trunk axis and thorax -> head of (T, J, 3) poses;
    None when the layout lacks the joints (`head_trunk_joints`)."""
    joints = head_trunk_joints(layout)
    if joints is None:
        return None
    root, top, head = joints
    poses = np.asarray(poses, np.float64)
    trunk, neck = poses[:, top] - poses[:, root], poses[:, head] - poses[:, top]
    cos = (trunk * neck).sum(-1) / np.maximum(
        np.linalg.norm(trunk, axis=-1) * np.linalg.norm(neck, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def implausible_frames(poses: np.ndarray, layout,
                       max_angle_deg: float = MAX_HEAD_ANGLE_DEG) -> np.ndarray:
    """(T,) bool: frames of (T, J, 3) ground-truth poses whose head is bent more than
    `max_angle_deg` from the trunk axis. All False when the layout lacks the joints."""
    angles = head_angles(poses, layout)
    if angles is None:
        return np.zeros(len(poses), dtype=bool)
    return angles > max_angle_deg
