"""Leading frames that break a clip's continuity (a T-pose or rest frame before the motion).

The widespread cgspeed BVH conversion of the CMU database starts every clip with a T-pose
frame, then jumps (up to 154 degrees at a joint) into the captured motion; other exporters
write a rest pose, or a few, first. Such a frame is not motion: kept, it teaches a model a
31 m/s jump.

The test is relative to the clip's own motion, so it holds at any frame rate and for any
activity: the per-frame step of a transition is the largest distance any joint moves between
two frames (metres, world positions, root included). A transition among the first
`MAX_LEADING_SECONDS` (and the first tenth of the clip) breaks continuity when its step is
more than `MIN_JUMP_M` and more than `JUMP_RATIO` times each of: the 99th percentile of the
steps after it, and the steps just before and after it. A real movement, however fast, is
part of the clip's own step distribution and builds up over several frames; a break is one
isolated step far outside both. A still rest frame before a still clip moves nothing.
Measured on the 460 CMU and HDM05 AMC clips in ../shared/mocap: the cgspeed T-pose frames
step 0.7-1.1 m at 17-22 times the clip's 99th percentile; four CMU clips (03_02, 16_15,
16_23, 16_28) also start with 2-24 frames that end in such a jump (0.28-0.93 m).
"""
from __future__ import annotations

import numpy as np

from .kinematics import motion_positions
from .motion import Motion

MAX_LEADING_SECONDS = 0.5
JUMP_RATIO = 4.0
MIN_JUMP_M = 0.05


def frame_steps(positions: np.ndarray) -> np.ndarray:
    """(T-1,) metres: the largest distance any joint moves between consecutive frames, of
    positions (T, J, 3)."""
    return np.linalg.norm(np.diff(positions, axis=0), axis=-1).max(axis=1)


def leading_break(positions: np.ndarray, fps: float) -> int:
    """How many leading frames to drop: frames 0..t when transition t -> t+1 is the first
    leading transition that breaks continuity (module docstring), else 0.

    positions: (T, J, 3) world joint positions, metres. fps: frames per second.
    """
    steps = frame_steps(positions)
    window = min(int(round(MAX_LEADING_SECONDS * fps)), len(steps) // 10)
    for t in range(window):
        reference = max(np.percentile(steps[t + 1:], 99), steps[t + 1],
                        steps[t - 1] if t else 0.0)
        if steps[t] > MIN_JUMP_M and steps[t] > JUMP_RATIO * reference:
            return t + 1
    return 0


def drop_leading_break(motion: Motion) -> Motion:
    """`motion` without the leading frames that break continuity (`leading_break`); their
    number is kept in ``source["dropped_leading_frames"]`` (absent when none)."""
    count = leading_break(motion_positions(motion), motion.fps)
    if not count:
        return motion
    source = dict(motion.source, dropped_leading_frames=str(count))
    return motion.with_(local_rotations=motion.local_rotations[count:],
                        root_translation=motion.root_translation[count:], source=source)
