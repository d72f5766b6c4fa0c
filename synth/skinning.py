"""Linear blend skinning of an avatar's mesh to a retargeted clip.

The mesh is built around the retargeted skeleton's rest pose (rest rotations are identity),
or carries per-segment bind transforms onto it (`SkinnedMesh.bind`: bodies modelled in
their own rest pose, whose transforms are composed before blending), so each segment of
`synth.avatars.CANONICAL_PARENTS` moves rigidly with the source bone that ends at the
segment's end joint: the segment parent(c) -> c takes the world rotation of the
source parent of ``canonical_indices[c]`` and stays anchored at its start joint,

    x_posed = R_c (x_rest - rest[parent(c)]) + posed[parent(c)].

A canonical segment can span several source bones (Acclaim's root -> lowerback -> upperback
is the pelvis-to-spine segment); the last bone's rotation then need not point the segment
exactly at its end joint, so R_c is followed by the smallest rotation that does (identity for
single-bone segments), which keeps the mesh on the skeleton whatever the inner bones do.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .avatars import CANONICAL_JOINTS, CANONICAL_PARENTS, SkinnedMesh
from .retarget import RetargetedClip

_PARENTS = np.array(CANONICAL_PARENTS)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def _align_rotations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3, 3) smallest rotations taking directions a (..., 3) onto b (..., 3)."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)[..., None, None]
    vx = np.zeros(v.shape + (3,))
    vx[..., 0, 1], vx[..., 0, 2], vx[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    vx = vx - np.swapaxes(vx, -1, -2)
    # Rodrigues with (1 - c) / s^2 = 1 / (1 + c); opposite directions (c = -1) cannot occur
    # for a few-degree correction, and are left unrotated rather than divided by zero.
    scale = np.where(c > -0.999, 1.0 / np.maximum(1.0 + c, 1e-3), 0.0)
    return np.eye(3) + vx + vx @ vx * scale


class Skinner:
    """Poses one avatar mesh along one retargeted clip.

    clip: the `RetargetedClip`; mesh: its avatar's mesh built around the clip's rest pose
    (default: ``clip.avatar.mesh(rest_positions(clip))``).
    """

    def __init__(self, clip: RetargetedClip, mesh: Optional[SkinnedMesh] = None):
        self.clip = clip
        self.rest = rest_positions(clip)
        mesh = mesh if mesh is not None else clip.avatar.mesh(self.rest)
        weights = np.asarray(mesh.weights, dtype=np.float64)
        self._used = np.flatnonzero(np.abs(weights).sum(axis=0) > 0)
        self._weights = weights[:, self._used]
        # A mesh modelled in another rest pose is posed through its per-segment bind
        # transforms (composed before blending); `self.mesh` is it at the skeleton's rest.
        self._bind = None if mesh.bind is None else np.asarray(mesh.bind)[self._used]
        self._rest_vertices = np.asarray(mesh.vertices, dtype=np.float64)
        self.rest_normals = np.asarray(mesh.trimesh().vertex_normals, dtype=np.float64)
        self.mesh = mesh.bound()
        source_parents = clip.skeleton.parents[clip.canonical_indices]
        self._bone_of_segment = np.maximum(source_parents, 0)

    @property
    def num_frames(self) -> int:
        return self.clip.positions.shape[0]

    def segment_transforms(self, frames: Sequence[int]) -> np.ndarray:
        """(F, 19, 3, 4) affine world transforms [R | t] of every segment's rest geometry.

        Column 0 (the root, which ends no segment) is the identity.
        """
        frames = np.asarray(frames)
        posed = self.clip.positions[frames][:, self.clip.canonical_indices]  # (F, 19, 3)
        rotations = quat_to_matrix(self.clip.global_rotations[frames][:, self._bone_of_segment])
        rest_dir = self.rest - self.rest[np.maximum(_PARENTS, 0)]
        posed_dir = posed - posed[:, np.maximum(_PARENTS, 0)]
        rotated = np.einsum("fcij,cj->fci", rotations, rest_dir)
        lengths = np.linalg.norm(rest_dir, axis=-1)
        correct = _align_rotations(rotated, posed_dir)
        correct[:, lengths < 1e-6] = np.eye(3)
        rotations = correct @ rotations
        rotations[:, 0] = np.eye(3)
        anchors_rest = self.rest[np.maximum(_PARENTS, 0)]
        anchors_posed = posed[:, np.maximum(_PARENTS, 0)]
        translations = anchors_posed - np.einsum("fcij,cj->fci", rotations, anchors_rest)
        translations[:, 0] = 0.0
        return np.concatenate([rotations, translations[..., None]], axis=-1)

    def pose(self, frames: Sequence[int]) -> tuple:
        """Posed vertices and normals of `frames`: two (F, V, 3) float32 arrays, metres,
        world frame (normals blended, not renormalised: the renderer normalises). Memory
        grows as F x V x 12 float64: pose a long clip a few dozen frames at a time."""
        transforms = self.segment_transforms(frames)[:, self._used]  # (F, S, 3, 4)
        if self._bind is not None:
            linear = transforms[..., :3] @ self._bind[..., :3]
            shift = (transforms[..., :3] @ self._bind[..., 3:])[..., 0] + transforms[..., 3]
            transforms = np.concatenate([linear, shift[..., None]], axis=-1)
        f, s = transforms.shape[:2]
        # One (V, S) x (S, F*12) product blends every vertex's matrix for every frame.
        blended = (self._weights @ transforms.reshape(f, s, 12).transpose(1, 0, 2).reshape(s, -1))
        blended = blended.reshape(-1, f, 3, 4).transpose(1, 0, 2, 3)  # (F, V, 3, 4)
        linear = blended[..., :3]
        vertices = np.einsum("fvij,vj->fvi", linear, self._rest_vertices) + blended[..., 3]
        normals = np.einsum("fvij,vj->fvi", linear, self.rest_normals)
        return vertices.astype(np.float32), normals.astype(np.float32)


def rest_positions(clip: RetargetedClip) -> np.ndarray:
    """(19, 3) canonical joints of the clip's retargeted skeleton at rest, metres."""
    return clip.skeleton.rest_positions()[clip.canonical_indices]


def skin(clip: RetargetedClip, mesh: Optional[SkinnedMesh] = None,
         frames: Optional[Sequence[int]] = None) -> np.ndarray:
    """(F, V, 3) float32 posed vertices of `frames` (default: all), metres, world frame."""
    skinner = Skinner(clip, mesh)
    frames = np.arange(skinner.num_frames) if frames is None else np.asarray(frames)
    # In chunks: blending keeps a (chunk, V, 3, 4) float64 array.
    return np.concatenate([skinner.pose(frames[i:i + 64])[0]
                           for i in range(0, len(frames), 64)]) if len(frames) else \
        np.zeros((0, len(skinner.mesh.vertices), 3), np.float32)


def vertex_segments(mesh: SkinnedMesh) -> np.ndarray:
    """(V,) canonical joint index of the segment each vertex belongs to: its largest weight,
    ties (the even split at a segment's start) going to the segment itself, not its parent."""
    weights = np.asarray(mesh.weights)
    return weights.shape[1] - 1 - np.argmax(weights[:, ::-1], axis=1)


def joint_radii(mesh: SkinnedMesh, rest: np.ndarray) -> np.ndarray:
    """(19,) the body's local radius at each canonical joint, metres: the thickest segment
    that meets there or whose volume holds the joint (the pelvis holds the hip joints), each
    measured as the median distance of its rest vertices from its axis (the skull counts for
    the head and neck)."""
    owner = vertex_segments(mesh)
    segment_radius = np.zeros(len(CANONICAL_JOINTS))
    for c, p in enumerate(CANONICAL_PARENTS):
        points = mesh.vertices[owner == c]
        if p >= 0 and len(points):
            segment_radius[c] = np.median(_distance_to_segment(points, rest[p], rest[c]))
    radii = segment_radius.copy()
    for c, p in enumerate(CANONICAL_PARENTS):
        if p < 0:
            continue
        radii[p] = max(radii[p], segment_radius[c])
        inside = _distance_to_segment(rest, rest[p], rest[c]) < segment_radius[c]
        radii[inside] = np.maximum(radii[inside], segment_radius[c])
    head, neck = CANONICAL_JOINTS.index("head"), CANONICAL_JOINTS.index("neck_nose")
    radii[neck] = max(radii[neck], radii[head])
    return radii


def _distance_to_segment(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) distance of (N, 3) points from the line segment a-b."""
    axis = b - a
    along = np.clip((points - a) @ axis / max(float(axis @ axis), 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - a - along[:, None] * axis, axis=1)
