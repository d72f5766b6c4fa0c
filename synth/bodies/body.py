"""`AnnyBody`: a cached Anny body behind the interface of `synth.avatars.Avatar`.

Retargeting (`synth.retarget`) reads `segment_length` and `leg_length`; skinning and
rendering (`synth.skinning`, `synth.rendering`) read `mesh(rest_positions)`; keypoint
conventions read `landmarks()`. The mesh stays in Anny's own rest pose (an A-pose); `mesh`
adds per-segment bind transforms that carry each canonical segment's vertices onto the
retargeted skeleton's rest pose, so linear blend skinning composes "Anny rest -> skeleton
rest -> posed" per segment instead of deforming a mesh built for another pose.
"""
from __future__ import annotations

import functools
import json
import pathlib
from typing import Dict, Optional

import numpy as np

from ..avatars import CANONICAL_JOINTS, CANONICAL_PARENTS, SkinnedMesh
from ..retarget import smallest_rotation
from . import cache

_J = {name: i for i, name in enumerate(CANONICAL_JOINTS)}
# Joints that fix the trunk's orientation (pelvis, spine and shoulder girdle).
_TRUNK = ("hip", "l_hip", "r_hip", "spine", "thorax", "l_shoulder", "r_shoulder")
# Limb segments (named by their end joint), whose rest direction is a matter of pose (arms
# down in Anny's A-pose, out in a mocap T-pose); the trunk, neck, head, pelvis and clavicle
# segments differ between rigs by where their joints sit, not by pose, and only turn with
# the trunk.
_LIMBS = frozenset(f"{s}_{j}" for s in "lr" for j in ("elbow", "wrist", "knee", "ankle", "toe"))


#: The vocabulary landmarks (`posecontract.conventions.LANDMARKS`) every Anny body provides,
#: known without reading a body (e.g. to check `--keypoints` before building any).
ANNY_LANDMARKS = tuple(sorted(
    ("nose", "head_top", "chin", "neck_base", "pelvis_centre", "mid_shoulder")
    + tuple(f"{s}_{n}" for s in "lr" for n in (
        "eye", "ear", "heel", "big_toe", "small_toe", "hip_centre", "shoulder_centre",
        "acromion", "greater_trochanter"))))


class AnnyBody:
    """One built body, read from its cache file (checksum verified).

    name:   "anny-<key>" (the cache file's stem), unique per body content.
    height: stature, metres (floor to top of head).
    spec:   the `BodySpec` fields (sex, age, stature, bmi, muscle, proportions) as a dict.
    measures: stature, BMI and mass the built body reaches.
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        arrays = cache.read_body(self.path)
        self.name = self.path.stem
        self._joints = np.asarray(arrays["joints"], dtype=np.float64)
        self._vertices = np.asarray(arrays["vertices"], dtype=np.float64)
        self._faces = np.asarray(arrays["faces"], dtype=np.int64)
        self._weights = np.asarray(arrays["weights"], dtype=np.float64)
        self._landmarks = {str(n): np.asarray(p, dtype=np.float64)
                           for n, p in zip(arrays["landmark_names"], arrays["landmarks"])}
        self.spec = json.loads(str(arrays["spec"]))
        self.measures = json.loads(str(arrays["measures"]))
        self.height = float(self.measures["stature"])

    def __repr__(self) -> str:
        s = self.spec
        return (f"AnnyBody({self.name}: {s['sex']}, {s['age']:.0f} y, {self.height:.3f} m, "
                f"BMI {self.measures['bmi']:.1f})")

    def __eq__(self, other) -> bool:
        return isinstance(other, AnnyBody) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("AnnyBody", self.name))

    def segment_length(self, parent: str, child: str) -> float:
        """Length in metres of the segment parent -> child (names from CANONICAL_JOINTS)."""
        return float(np.linalg.norm(self._joints[_J[child]] - self._joints[_J[parent]]))

    def leg_length(self) -> float:
        """Thigh plus shin (mean of both sides), metres."""
        return 0.5 * sum(self.segment_length(f"{s}_hip", f"{s}_knee")
                         + self.segment_length(f"{s}_knee", f"{s}_ankle") for s in "lr")

    def rest_positions(self) -> np.ndarray:
        """(19, 3) canonical joints in Anny's rest pose (A-pose), facing -Y, Z up, soles on
        z = 0, metres."""
        return self._joints.copy()

    def standing_height(self) -> float:
        return self.height

    def trunk_rest_positions(self) -> np.ndarray:
        """(19, 3) this body's own rest joints, which retargeting gives the trunk segments
        (pelvis, spine, neck, head, clavicles: `synth.retarget.body_trunk_offsets`), so the
        skeleton's trunk matches the mesh's anatomy whatever rig the clip comes from."""
        return self.rest_positions()

    def landmarks(self) -> Dict[str, np.ndarray]:
        """Rest positions (metres, the frame of `rest_positions`) of the vocabulary landmarks
        (`posecontract.conventions.LANDMARKS`) this body provides: nose, eyes, ears, heels
        and toe tips from Anny's COCO keypoint regressor (vertex blends); hip and shoulder
        joint centres, neck base and pelvis centre from its rig; head top, chin, acromia and
        greater trochanters as extreme surface points (`synth.bodies.anny_build`); the
        midpoint of the two shoulder joint centres (`mid_shoulder`) from those."""
        out = {k: v.copy() for k, v in self._landmarks.items()}
        out["mid_shoulder"] = 0.5 * (out["l_shoulder_centre"] + out["r_shoulder_centre"])
        return out

    def mesh(self, rest_positions: Optional[np.ndarray] = None) -> SkinnedMesh:
        """The skinned mesh, with bind transforms onto `rest_positions` (19, 3) (default:
        this body's own rest pose, identity binds)."""
        bind = None
        if rest_positions is not None:
            bind = bind_transforms(self._joints, np.asarray(rest_positions, dtype=np.float64))
        return SkinnedMesh(self._vertices, self._faces, self._weights, bind=bind,
                           skin=self._hands())

    def _hands(self) -> np.ndarray:
        """(V,) bool: the hands, forearm-segment vertices beyond the wrist joint."""
        hands = np.zeros(len(self._vertices), dtype=bool)
        for side in "lr":
            elbow, wrist = self._joints[_J[f"{side}_elbow"]], self._joints[_J[f"{side}_wrist"]]
            axis = wrist - elbow
            along = (self._vertices - elbow) @ axis / float(axis @ axis)
            hands |= (self._weights[:, _J[f"{side}_wrist"]] > 0.5) & (along > 1.0)
        return hands


def bind_transforms(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(19, 3, 4) rigid transforms [R | t], one per canonical segment (column c: the segment
    parent(c) -> c), taking the body's rest pose `source` (19, 3) onto another rest pose
    `target` (19, 3) with the same segment lengths.

    The trunk is first turned as a whole (the Kabsch rotation of the trunk joints, so the
    person's facing direction carries over); each limb segment then takes the smallest
    rotation that points its direction along the target's. Every segment stays anchored at
    its start joint.
    """
    trunk = [_J[n] for n in _TRUNK]
    a = source[trunk] - source[trunk].mean(axis=0)
    b = target[trunk] - target[trunk].mean(axis=0)
    u, _, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    turn = u @ np.diag([1.0, 1.0, d]) @ vt
    out = np.zeros((len(CANONICAL_JOINTS), 3, 4))
    out[:, :, :3] = np.eye(3)
    for c, p in enumerate(CANONICAL_PARENTS):
        if p < 0:
            continue
        rotation = turn
        if CANONICAL_JOINTS[c] in _LIMBS:
            rotation = smallest_rotation(turn @ (source[c] - source[p]),
                                          target[c] - target[p]) @ turn
        out[c, :, :3] = rotation
        out[c, :, 3] = target[p] - rotation @ source[p]
    return out


@functools.lru_cache(maxsize=32)
def load_body(path: str) -> AnnyBody:
    """An `AnnyBody` read once per process per file (the last 32 kept, about 2.5 MB each)."""
    return AnnyBody(path)
