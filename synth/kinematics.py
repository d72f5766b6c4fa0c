"""Forward kinematics and quaternion helpers (NumPy, scalar-first quaternions (w, x, y, z))."""
from __future__ import annotations

import functools
from typing import Tuple

import numpy as np


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b of (..., 4) quaternions (w, x, y, z); broadcasts."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) vectors v by (..., 4) unit quaternions q; broadcasts."""
    w = q[..., :1]
    u = q[..., 1:]
    uv = np.cross(u, v)
    return v + 2.0 * (w * uv + np.cross(u, uv))


def quat_normalize(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """The representative with w >= 0 (q and -q are the same rotation)."""
    return np.where(q[..., :1] < 0, -q, q)


def quat_from_matrix(matrices: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z), w >= 0, of (..., 3, 3) rotation matrices."""
    m = np.asarray(matrices, dtype=np.float64)
    # Each component from the diagonal, the largest one decides the signs of the others
    # (numerically stable for every rotation).
    trace = np.stack([1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2],
                      1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                      1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                      1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], axis=-1)
    best = np.argmax(trace, axis=-1)[..., None]
    s = np.sqrt(np.maximum(np.take_along_axis(trace, best, axis=-1), 1e-12))  # 2|q_best|
    candidates = np.stack([
        np.stack([s[..., 0] ** 2, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                  m[..., 1, 0] - m[..., 0, 1]], axis=-1),
        np.stack([m[..., 2, 1] - m[..., 1, 2], s[..., 0] ** 2, m[..., 0, 1] + m[..., 1, 0],
                  m[..., 0, 2] + m[..., 2, 0]], axis=-1),
        np.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], s[..., 0] ** 2,
                  m[..., 1, 2] + m[..., 2, 1]], axis=-1),
        np.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                  m[..., 1, 2] + m[..., 2, 1], s[..., 0] ** 2], axis=-1)], axis=-2)
    q = np.take_along_axis(candidates, best[..., None], axis=-2)[..., 0, :] / (2.0 * s)
    return quat_canonical(quat_normalize(q))


def forward_kinematics(parents: np.ndarray, offsets: np.ndarray, local_rotations: np.ndarray,
                       root_translation: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """World joint positions and orientations.

    parents:          (J,) parent indices, -1 for the root, parents[j] < j.
    offsets:          (J, 3) rest offsets from the parent, in the parent's frame.
    local_rotations:  (T, J, 4) rotations relative to the parent (root: world orientation).
    root_translation: (T, 3) world root position.
    Returns positions (T, J, 3) and global rotations (T, J, 4).
    """
    num_frames, num_joints = local_rotations.shape[:2]
    positions = np.empty((num_frames, num_joints, 3))
    rotations = np.empty((num_frames, num_joints, 4))
    positions[:, 0] = root_translation
    rotations[:, 0] = local_rotations[:, 0]
    # All joints at one depth of the tree at once: a handful of NumPy calls per level
    # instead of per joint.
    for joints in _tree_levels(tuple(int(p) for p in parents)):
        parent_rotations = rotations[:, parents[joints]]
        positions[:, joints] = (positions[:, parents[joints]]
                                + quat_rotate(parent_rotations, offsets[joints]))
        rotations[:, joints] = quat_multiply(parent_rotations, local_rotations[:, joints])
    return positions, rotations


@functools.lru_cache(maxsize=64)
def _tree_levels(parents: Tuple[int, ...]) -> Tuple[np.ndarray, ...]:
    """Joint indices grouped by depth below the root (depth 1 first)."""
    depth = [0] * len(parents)
    for j in range(1, len(parents)):
        depth[j] = depth[parents[j]] + 1
    return tuple(np.flatnonzero(np.array(depth) == d) for d in range(1, max(depth) + 1))


def motion_positions(motion) -> np.ndarray:
    """(T, J, 3) world joint positions, metres, of a `synth.motion.Motion`."""
    positions, _ = forward_kinematics(motion.skeleton.parents, motion.skeleton.offsets,
                                      motion.local_rotations, motion.root_translation)
    return positions
