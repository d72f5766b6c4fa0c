"""Retargeting a clip onto an avatar: same local rotations, the avatar's segment lengths.

The source skeleton keeps its topology and its local rotations; only bone offsets are
rescaled so that every canonical segment (`synth.avatars.SEGMENTS`, e.g. hip -> knee) has the
avatar's length. Source bones that lie on no canonical segment (hands, fingers, toe tips)
take the scale of their parent. The root path is scaled by the leg-length ratio so strides
fit the new legs (feet do not slide more than in the source), and the clip is shifted
vertically so the avatar's feet rest on the floor z = 0.

A joint map may put a keypoint on a zero-length end site (Bandai-Namco's head top sits on
the head joint): that segment then takes its direction from the bone above it and its
length from the avatar (`extend_zero_length_ends`). A zero-length segment that is not an
end (two keypoints on one joint) is refused, naming the segment.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .avatars import CANONICAL_JOINTS, SEGMENTS, Avatar
from .kinematics import forward_kinematics, quat_rotate
from .motion import MocapError, Motion, Skeleton

_FOOT_JOINTS = ("l_ankle", "r_ankle", "l_toe", "r_toe")


@dataclasses.dataclass
class RetargetedClip:
    """A clip on one avatar.

    skeleton:          the source topology with the avatar's bone offsets (metres).
    positions:         (T, J, 3) float64 world positions of every source joint, metres.
    global_rotations:  (T, J, 4) world orientation of every joint (w, x, y, z).
    canonical_indices: (19,) index into J of each `CANONICAL_JOINTS` entry.
    root_scale:        leg-length ratio avatar / source that scaled the root path.
    """

    avatar: Avatar
    skeleton: Skeleton
    positions: np.ndarray
    global_rotations: np.ndarray
    canonical_indices: np.ndarray
    root_scale: float

    @property
    def canonical_positions(self) -> np.ndarray:
        """(T, 19, 3) canonical joints (17-joint layout plus toes), world, metres."""
        return self.positions[:, self.canonical_indices]


class Retargeter:
    """Puts one clip on any number of avatars, sharing the per-clip work.

    Local rotations are the same on every avatar, so the joints' world orientations are too:
    each joint's position is the root plus the sum over its ancestors' bones of
    (bone scale x the source bone vector rotated into the world). The rotated source bone
    vectors are computed once; an avatar then costs one (J, J) x (T, J, 3) product.
    """

    def __init__(self, motion: Motion, canonical_indices: np.ndarray):
        self.canonical_indices = np.asarray(canonical_indices)
        skeleton, self.extended_ends = extend_zero_length_ends(
            motion.skeleton, self.canonical_indices, motion.source.get("path", "<motion>"))
        self.motion = motion = motion.with_(skeleton=skeleton)
        positions, self.global_rotations = forward_kinematics(
            skeleton.parents, skeleton.offsets, motion.local_rotations, motion.root_translation)
        # (T, J, 3): joint minus parent position, i.e. the world-rotated rest offset.
        self.bone_vectors = positions - positions[:, np.maximum(skeleton.parents, 0)]
        self.ancestors = _ancestor_matrix(skeleton.parents)
        self.feet = self.canonical_indices[[CANONICAL_JOINTS.index(n) for n in _FOOT_JOINTS]]
        self.source_floor = _floor_height(positions[:, self.feet, 2])
        self.source_leg_length = _leg_length(skeleton.rest_positions(), self.canonical_indices)

    def __call__(self, avatar: Avatar) -> RetargetedClip:
        source = self.motion.skeleton
        scales = bone_scales(source, avatar, self.canonical_indices)
        offsets = source.offsets * scales[:, None]
        changed: list = []
        body_rest = getattr(avatar, "trunk_rest_positions", None)
        if body_rest is not None:
            offsets, changed = body_trunk_offsets(source, offsets, self.canonical_indices,
                                                  body_rest())
        skeleton = Skeleton(list(source.names), source.parents.copy(), offsets)
        root_scale = avatar.leg_length() / self.source_leg_length
        root = (self.motion.root_translation - [0.0, 0.0, self.source_floor]) * root_scale
        num_frames, num_joints = self.bone_vectors.shape[:2]
        # One (J, J) @ (J, T*3) product: the sum of scaled bone vectors down each chain.
        if changed:  # re-aimed rest offsets, rotated by their parents' world orientations
            vectors = self.bone_vectors * scales[None, :, None]
            vectors[:, changed] = quat_rotate(
                self.global_rotations[:, source.parents[changed]], offsets[changed])
            chains = self.ancestors @ vectors.transpose(1, 0, 2).reshape(num_joints, -1)
        else:
            chains = (self.ancestors * scales) @ self.bone_vectors.transpose(1, 0, 2).reshape(
                num_joints, -1)
        positions = root[:, None, :] + chains.reshape(num_joints, num_frames, 3).transpose(1, 0, 2)
        positions[..., 2] -= _floor_height(positions[:, self.feet, 2])
        if body_rest is not None:  # its soles, not its lowest foot joint, meet the floor
            positions[..., 2] += self._sole_clearance(body_rest())
        return RetargetedClip(avatar, skeleton, positions, self.global_rotations,
                              self.canonical_indices, root_scale)

    def _sole_clearance(self, body_rest: np.ndarray) -> float:
        """Height above the floor (metres) of the body's lowest foot joint the rig has, at
        rest (soles on z = 0): the ball of the foot, or the ankle for rigs without toes."""
        index = {n: CANONICAL_JOINTS.index(n) for n in _FOOT_JOINTS}
        present = [n for n in _FOOT_JOINTS if not n.endswith("toe") or
                   self.canonical_indices[index[n]]
                   != self.canonical_indices[index[n.replace("toe", "ankle")]]]
        return float(min(body_rest[index[n], 2] for n in present))


# Segments (by end joint) whose rest direction says where a rig places its joints, not how
# the body stands: pelvis to hip joints, the spine, neck, head and clavicles.
_TRUNK_SEGMENTS = frozenset(("l_hip", "r_hip", "spine", "thorax", "neck_nose", "head",
                             "l_shoulder", "r_shoulder"))
_TRUNK_JOINTS = ("hip", "l_hip", "r_hip", "spine", "thorax", "l_shoulder", "r_shoulder")


def body_trunk_offsets(source: Skeleton, offsets: np.ndarray, canonical_indices: np.ndarray,
                       body_rest: np.ndarray) -> tuple:
    """Rest offsets whose trunk segments have the body's own rest layout.

    source: the source skeleton; offsets: (J, 3) its offsets already scaled to the body's
    segment lengths; body_rest: (19, 3) the body's canonical joints at rest (a body that
    brings its own anatomy, `synth.bodies`). Rigs disagree on where the pelvis centre, spine,
    neck and shoulder joints sit (an Acclaim root lies 8 cm above its hip joints, the
    body model's between them), so for the trunk segments (`_TRUNK_SEGMENTS`) the chain of
    source bones is re-aimed (smallest rotation, and scaled) to give the body's own rest
    vector, turned into the source's facing (Kabsch rotation of the trunk joints). Limbs keep
    the source's rest directions: local rotations are relative to them.

    Returns (offsets (J, 3), sorted indices of the re-aimed joints).
    """
    parents = source.parents
    source_rest = source.rest_positions()
    new = np.array(offsets, dtype=np.float64)

    def rest_of(off: np.ndarray) -> np.ndarray:
        positions = np.zeros_like(off)
        for j in range(1, len(off)):
            positions[j] = positions[parents[j]] + off[j]
        return positions

    J = {name: i for i, name in enumerate(CANONICAL_JOINTS)}
    now = rest_of(new)
    trunk = [J[n] for n in _TRUNK_JOINTS]
    a = body_rest[trunk] - body_rest[trunk].mean(axis=0)
    b = now[canonical_indices[trunk]] - now[canonical_indices[trunk]].mean(axis=0)
    u, _, vt = np.linalg.svd(b.T @ a)
    turn = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    changed = set()
    for parent_name, child_name in SEGMENTS:
        if child_name not in _TRUNK_SEGMENTS:
            continue
        start, end = canonical_indices[J[parent_name]], canonical_indices[J[child_name]]
        chain = _chain(parents, source_rest, start, end)
        if not chain:
            continue
        now = rest_of(new)
        target = turn @ (body_rest[J[child_name]] - body_rest[J[parent_name]])
        # The chain hangs from its first bone's parent, which need not be the start joint.
        needed = target - (now[parents[chain[0]]] - now[start])
        extent = new[chain].sum(axis=0)
        if np.linalg.norm(extent) < 1e-9 or np.linalg.norm(needed) < 1e-9:
            continue
        rotation = smallest_rotation(extent, needed)
        new[chain] = (np.linalg.norm(needed) / np.linalg.norm(extent)) * new[chain] @ rotation.T
        changed.update(chain)
    return new, sorted(changed)


def smallest_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(3, 3) the smallest rotation taking direction a onto direction b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if c < -0.999999:  # opposite: half a turn about an axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def retarget(motion: Motion, avatar: Avatar, canonical_indices: np.ndarray) -> RetargetedClip:
    """Put `motion` on `avatar`. `canonical_indices` (19,) maps CANONICAL_JOINTS to joints of
    `motion.skeleton` (see `synth.joint_maps`). Use `Retargeter` for several avatars."""
    return Retargeter(motion, canonical_indices)(avatar)


_REFERENCE = Avatar("reference", height=1.7)


def extend_zero_length_ends(skeleton: Skeleton, canonical_indices: np.ndarray,
                            path: str = "<motion>"):
    """Give zero-length canonical segments that end in a leaf joint a length.

    skeleton: the source; canonical_indices (19,) its joints for `CANONICAL_JOINTS`.
    A segment (`SEGMENTS`) whose end joint sits where its start joint does at rest, and
    whose end joint has no children (an End Site written as ``OFFSET 0 0 0``), gets the
    direction of the nearest non-zero bone above it and the reference body's length for
    that segment relative to leg length (Drillis & Contini fractions, `synth.avatars`),
    scaled to the source's legs; retargeting then gives it each avatar's own length.
    Returns (skeleton, names of the joints extended); the input is not changed.
    Raises MocapError naming the segment when the end joint is not a leaf.
    """
    rest = skeleton.rest_positions()
    source_legs = _leg_length(rest, canonical_indices)
    offsets, extended = skeleton.offsets, []
    for parent_name, child_name in SEGMENTS:
        a = canonical_indices[CANONICAL_JOINTS.index(parent_name)]
        b = canonical_indices[CANONICAL_JOINTS.index(child_name)]
        if np.linalg.norm(rest[b] - rest[a]) > 1e-6 * max(source_legs, 1e-9):
            continue
        if a == b or np.any(skeleton.parents == b) or source_legs <= 0:
            raise MocapError(path, f"the joint map's {parent_name} -> {child_name} segment "
                                   f"({skeleton.names[a]} -> {skeleton.names[b]}) has zero "
                                   f"length; map {child_name} to another joint")
        j = skeleton.parents[b]
        while j > 0 and np.linalg.norm(offsets[j]) == 0:
            j = skeleton.parents[j]
        direction = offsets[j] / max(np.linalg.norm(offsets[j]), 1e-12)
        length = (source_legs * _REFERENCE.segment_length(parent_name, child_name)
                  / _REFERENCE.leg_length())
        if offsets is skeleton.offsets:
            offsets = offsets.copy()
        offsets[b] = direction * length
        extended.append(skeleton.names[b])
    if not extended:
        return skeleton, extended
    return Skeleton(list(skeleton.names), skeleton.parents.copy(), offsets), extended


def _ancestor_matrix(parents: np.ndarray) -> np.ndarray:
    """(J, J) float: [j, k] = 1 where joint k is j or an ancestor of j, except the root."""
    matrix = np.zeros((len(parents), len(parents)))
    for j in range(1, len(parents)):
        matrix[j] = matrix[parents[j]]
        matrix[j, j] = 1.0
    return matrix


def bone_scales(source: Skeleton, avatar: Avatar, canonical_indices: np.ndarray) -> np.ndarray:
    """(J,) factor for each source offset that gives every canonical segment the avatar's
    length; bones on no segment take their parent's factor."""
    canonical_indices = np.asarray(canonical_indices)
    # Clips of one actor share a skeleton: cache on its content.
    key = (source.parents.tobytes(), source.offsets.tobytes(), canonical_indices.tobytes(),
           avatar)
    if key not in _BONE_SCALE_CACHE:
        if len(_BONE_SCALE_CACHE) >= 256:
            _BONE_SCALE_CACHE.clear()
        _BONE_SCALE_CACHE[key] = _compute_bone_scales(source, avatar, canonical_indices)
    return _BONE_SCALE_CACHE[key].copy()


_BONE_SCALE_CACHE: dict = {}


def _compute_bone_scales(source: Skeleton, avatar: Avatar,
                         canonical_indices: np.ndarray) -> np.ndarray:
    parents = source.parents
    factors = np.full(source.num_joints, np.nan)
    factors[0] = 1.0

    def factor(j: int) -> float:
        while np.isnan(factors[j]):
            j = parents[j]
        return factors[j]

    def new_position(j: int) -> np.ndarray:
        position = np.zeros(3)
        while j > 0:
            position += source.offsets[j] * factor(j)
            j = parents[j]
        return position

    rest = source.rest_positions()
    for parent_name, child_name in SEGMENTS:
        a = canonical_indices[CANONICAL_JOINTS.index(parent_name)]
        b = canonical_indices[CANONICAL_JOINTS.index(child_name)]
        chain = _chain(parents, rest, a, b)
        if not chain:
            continue
        # Solve |P + f c - A| = L for the scale f of the chain: P is the (already scaled)
        # position the chain hangs from, c its unscaled extent, A the segment's start.
        c = sum(source.offsets[j] for j in chain)
        d = new_position(parents[chain[0]]) - new_position(a)
        target = avatar.segment_length(parent_name, child_name)
        cc, dc, dd = c @ c, d @ c, d @ d
        if cc < 1e-12:
            continue
        f = (-dc + np.sqrt(max(dc * dc - cc * (dd - target ** 2), 0.0))) / cc
        factors[chain] = f
    return np.array([factor(j) for j in range(source.num_joints)])


def _chain(parents: np.ndarray, rest: np.ndarray, a: int, b: int) -> list:
    """Joints from just below the common ancestor of a and b down to b, top first, without
    leading joints that sit where a sits at rest (such a joint continues a's own bone)."""
    ancestors_a = set(_ancestors(parents, a))
    chain = []
    j = b
    while j not in ancestors_a:
        chain.append(j)
        j = parents[j]
    chain.reverse()
    while chain and np.linalg.norm(rest[chain[0]] - rest[a]) < 1e-6:
        chain.pop(0)
    return chain


def _ancestors(parents: np.ndarray, j: int) -> list:
    """j and every joint above it."""
    out = [j]
    while parents[j] >= 0:
        j = parents[j]
        out.append(j)
    return out


def _leg_length(rest: np.ndarray, canonical_indices: np.ndarray) -> float:
    def dist(p, c):
        return np.linalg.norm(rest[canonical_indices[CANONICAL_JOINTS.index(p)]]
                              - rest[canonical_indices[CANONICAL_JOINTS.index(c)]])
    return 0.5 * sum(dist(f"{s}_hip", f"{s}_knee") + dist(f"{s}_knee", f"{s}_ankle")
                     for s in "lr")


def _floor_height(foot_heights: np.ndarray) -> float:
    """Floor estimate from (T, F) foot-joint heights: the lowest foot point, robust to a few
    glitched frames (5th percentile over time of the per-frame minimum)."""
    return float(np.percentile(foot_heights.min(axis=1), 5))
