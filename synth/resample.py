"""Resampling a `Motion` to another frame rate: slerp for rotations, lerp for the root path."""
from __future__ import annotations

import numpy as np

from synth.kinematics import quat_normalize
from synth.motion import Motion


def slerp(q0: np.ndarray, q1: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Shortest-path spherical interpolation of (..., 4) unit quaternions.

    weight: broadcastable to q0[..., 0]; 0 gives q0, 1 gives q1 (up to sign).
    """
    weight = np.asarray(weight, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # q and -q are one rotation: take the short way
    dot = np.abs(dot)
    angle = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(angle)
    small = sin < 1e-6
    safe = np.where(small, 1.0, sin)
    w0 = np.where(small, 1.0 - weight, np.sin((1.0 - weight) * angle) / safe)
    w1 = np.where(small, weight, np.sin(weight * angle) / safe)
    return quat_normalize(w0 * q0 + w1 * q1)


def resample(motion: Motion, fps: float = 50.0) -> Motion:
    """`motion` sampled at times k / fps for every k with k / fps <= the last frame's time.

    Source frame i is at time i / motion.fps. Rotations are slerped, the root translation is
    interpolated linearly; skeleton, rig and source are kept.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    last_time = (motion.num_frames - 1) / motion.fps
    count = int(np.floor(last_time * fps + 1e-9)) + 1
    position = np.arange(count) * (motion.fps / fps)  # in source frames
    lower = np.minimum(np.floor(position + 1e-9).astype(np.int64), motion.num_frames - 1)
    upper = np.minimum(lower + 1, motion.num_frames - 1)
    weight = np.clip(position - lower, 0.0, 1.0)
    rotations = slerp(motion.local_rotations[lower], motion.local_rotations[upper],
                      np.broadcast_to(weight[:, None], (count, motion.skeleton.num_joints)))
    translation = ((1.0 - weight)[:, None] * motion.root_translation[lower]
                   + weight[:, None] * motion.root_translation[upper])
    return motion.with_(local_rotations=rotations, root_translation=translation, fps=float(fps),
                        skeleton=motion.skeleton.copy(), source=dict(motion.source))
