"""Keypoint conventions evaluated on a retargeted clip: where each convention's keypoints are.

`posecontract.conventions` defines each keypoint on a body (a canonical joint, a landmark, or
a point fixed in a bone). Here those definitions become (T, K, 3) world positions of a
`synth.retarget.RetargetedClip`:

- a `Joint` is the canonical joint's position;
- a `Landmark` or `BonePoint` has a rest position on the body (`body.landmarks()`, or its
  origin plus an offset) and moves rigidly with its bone: with p its position in the source
  skeleton's rest pose, k the source joint whose rotation carries the bone (the parent of
  the bone's end joint; the root for the pelvis), P_k(t) and R_k(t) that joint's world
  position and rotation, the posed point is P_k(t) + R_k(t) (p - rest_k).

The body's rest pose (the avatar's T-pose) and the source skeleton's rest pose differ in their
bone directions, so a point is carried from one to the other in its bone's frame: for limbs
(clavicles, arms, legs, feet) the frame's first axis is the bone, its second the body's
forward (arms) or lateral (legs, feet) axis; for the trunk and head, whose rest direction in
the avatar is a modelling choice, the frame is the body's axes (lateral from the right to the
left hip joint, up from the root to the thorax), so faces stay upright in both rest poses.

A body is anything with `name`, `height` (stature, metres), `rest_positions()` ((19, 3)
canonical joints, metres) and `landmarks()` (name -> (3,) rest position, same frame), such as
`synth.avatars.Avatar`.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from posecontract.conventions import (BONES, CANONICAL_JOINTS, LANDMARKS, BonePoint, Joint,
                                      KeypointConvention, Landmark, body_to_rest,
                                      get_convention, pelvis_axes)

from .kinematics import quat_rotate
from .retarget import RetargetedClip

_TRUNK_BONES = ("pelvis", "abdomen", "chest", "neck", "head")
_ARM_BONES = ("clavicle", "upper_arm", "forearm")


def body_axes(rest: np.ndarray) -> np.ndarray:
    """(3, 3) rows: lateral (towards the left hip), forward, up of (19, 3) canonical joints."""
    at = {n: rest[i] for i, n in enumerate(CANONICAL_JOINTS)}
    up = _unit(at["thorax"] - at["hip"])
    lateral = _unit(at["l_hip"] - at["r_hip"])
    forward = _unit(np.cross(lateral, up))
    return np.stack([_unit(np.cross(up, forward)), forward, up])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _bone_frame(rest: np.ndarray, bone: str) -> np.ndarray:
    """(3, 3) columns: orthonormal frame of `bone` in a rest pose of the canonical joints."""
    axes = body_axes(rest)
    start, end = (CANONICAL_JOINTS.index(j) for j in BONES[bone])
    kind = bone[2:] if bone[:2] in ("l_", "r_") else bone
    direction = rest[end] - rest[start]
    if kind in _TRUNK_BONES or np.linalg.norm(direction) < 1e-9:
        return axes.T
    first = _unit(direction)
    reference = axes[1] if kind in _ARM_BONES else axes[0]
    second = _unit(reference - (reference @ first) * first)
    return np.stack([first, second, np.cross(first, second)], axis=1)


class ConventionEvaluator:
    """Evaluates keypoint conventions on one retargeted clip (one body).

    clip: the retargeted clip; body: its body (default `clip.avatar`).
    """

    def __init__(self, clip: RetargetedClip, body=None):
        self.clip = clip
        self.body = clip.avatar if body is None else body
        self.body_rest = np.asarray(self.body.rest_positions(), dtype=np.float64)
        self.body_landmarks = {k: np.asarray(v, dtype=np.float64)
                               for k, v in self.body.landmarks().items()}
        self.source_rest = clip.skeleton.rest_positions()
        self.canonical_source_rest = self.source_rest[clip.canonical_indices]
        self._bones: Dict[str, tuple] = {}

    def _bone(self, bone: str):
        """(source joint k carrying the bone, Q body-rest -> source-rest rotation)."""
        if bone not in self._bones:
            start, end = (CANONICAL_JOINTS.index(j) for j in BONES[bone])
            idx = self.clip.canonical_indices
            if bone == "pelvis" or idx[start] == idx[end]:
                carrier = idx[start] if bone == "pelvis" else idx[end]
            else:
                carrier = int(self.clip.skeleton.parents[idx[end]])
            q = (_bone_frame(self.canonical_source_rest, bone)
                 @ _bone_frame(self.body_rest, bone).T)
            self._bones[bone] = (int(carrier), q, start)
        return self._bones[bone]

    def _rest_point(self, convention: str, keypoint: str, name: str) -> np.ndarray:
        if name in CANONICAL_JOINTS:
            return self.body_rest[CANONICAL_JOINTS.index(name)]
        if name not in self.body_landmarks:
            raise ValueError(f"keypoint convention {convention!r}: keypoint {keypoint!r} needs "
                             f"landmark {name!r}, which body {self.body.name!r} lacks")
        return self.body_landmarks[name]

    def attached(self, bone: str, body_rest_point: np.ndarray) -> np.ndarray:
        """(T, 3) world positions of a point given in the body's rest pose, moving rigidly
        with `bone`."""
        carrier, q, start = self._bone(bone)
        source_point = (self.canonical_source_rest[start]
                        + q @ (body_rest_point - self.body_rest[start]))
        lever = source_point - self.source_rest[carrier]
        rotations = self.clip.global_rotations[:, carrier]
        return self.clip.positions[:, carrier] + quat_rotate(rotations, lever[None, :])

    def positions(self, convention) -> np.ndarray:
        """(T, K, 3) float64 world positions (metres) of `convention`'s keypoints (a name or
        a `KeypointConvention`). ValueError (one line) when the body lacks a landmark."""
        convention: KeypointConvention = get_convention(convention)
        convention.check_body(self.body_landmarks, self.body.name)
        columns = []
        for keypoint, d in zip(convention.names, convention.definitions):
            if isinstance(d, Joint):
                columns.append(self.clip.canonical_positions[:, CANONICAL_JOINTS.index(d.name)])
            elif isinstance(d, Landmark):
                point = self._rest_point(convention.name, keypoint, d.name)
                columns.append(self.attached(LANDMARKS[d.name].bone, point))
            elif isinstance(d, BonePoint):
                scale = self.body.height if d.measure == "height" else 1.0
                start, end = (CANONICAL_JOINTS.index(j) for j in BONES[d.bone])
                point = (self._rest_point(convention.name, keypoint, d.origin_name())
                         + body_to_rest(d.offset) * scale
                         + d.along * (self.body_rest[end] - self.body_rest[start]))
                columns.append(self.attached(d.bone, point))
            else:  # KeypointConvention validated its definitions
                raise TypeError(d)
        return np.stack(columns, axis=1)


def convention_positions(clip: RetargetedClip, conventions: Sequence[str],
                         body=None) -> Dict[str, np.ndarray]:
    """Convention name -> (T, K, 3) world positions (metres) on `clip`."""
    evaluator = ConventionEvaluator(clip, body)
    return {name: evaluator.positions(name) for name in conventions}


def pelvis_frame(positions: np.ndarray, root: int, right_hip: int, left_hip: int,
                 top: int) -> np.ndarray:
    """(T, K, 3) positions -> the convention's own pelvis frame (x towards the right hip,
    y forward, z up towards `top`, origin at `root`), the frame of
    `posecontract.conventions.BODY_FRAME_TARGETS`."""
    rotation = pelvis_axes(positions, root, right_hip, left_hip, top)
    origin = positions[:, root]
    return np.einsum("tij,tkj->tki", rotation, positions - origin[:, None])
