"""Joint maps: which joint of a source skeleton plays each role of the 17-joint H36M layout.

A `JointMap` names, for every joint of `posecontract.layouts.H36M_17`, one joint of a source
skeleton (`synth.motion.Skeleton`), plus the optional extra keys ``l_toe`` / ``r_toe`` that
floor-contact code uses. Readers place joints at bone *starts* (see `synth.acclaim`), so a
source joint's position is where the named body part begins: ``r_knee = "rtibia"`` is the
start of the shin, ``head = "head_end"`` the top of the head.

Built-in maps: ``"acclaim"`` (ASF/AMC rigs of CMU and HDM05 as read by `synth.acclaim`) and
``"cmu_bvh"`` (the cgspeed BVH conversion of the CMU database, ``Hips/LHipJoint/...``).

Any other rig is described by a JSON file read with `load_joint_map`::

    {
      "name": "boxing_rig",
      "joints": {
        "hip": "Hips", "r_hip": "RightHip", "r_knee": "RightKnee", "r_ankle": "RightAnkle",
        "l_hip": "LeftHip", "l_knee": "LeftKnee", "l_ankle": "LeftAnkle",
        "spine": "Ab", "thorax": "Neck", "neck_nose": "Head", "head": "Head_end",
        "l_shoulder": "LeftShoulder", "l_elbow": "LeftElbow", "l_wrist": "LeftWrist",
        "r_shoulder": "RightShoulder", "r_elbow": "RightElbow", "r_wrist": "RightWrist",
        "l_toe": "LeftToes", "r_toe": "RightToes"
      }
    }

``name`` is required and must not shadow a built-in; ``joints`` must give all 17 layout
names (``l_toe`` / ``r_toe`` are optional; no other keys are allowed). End sites are named
``<joint>_end`` by both readers.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Dict, Mapping, Sequence, Tuple, Union

import numpy as np

from synth.motion import Skeleton
from posecontract.layouts import H36M_17

EXTRA_KEYS: Tuple[str, ...] = ("l_toe", "r_toe")


@dataclasses.dataclass(frozen=True)
class JointMap:
    """name: rig name stored in `Motion.rig`; joints: layout/extra key -> source joint name."""

    name: str
    joints: Mapping[str, str]

    def __post_init__(self):
        missing = [k for k in H36M_17.names if k not in self.joints]
        unknown = [k for k in self.joints if k not in H36M_17.names and k not in EXTRA_KEYS]
        if missing or unknown:
            raise ValueError(f"joint map {self.name!r}: missing keys {missing}, "
                             f"unknown keys {unknown}")
        object.__setattr__(self, "joints", dict(self.joints))

    def source_names(self) -> Tuple[str, ...]:
        """The source joints of the 17 layout joints, in layout order."""
        return tuple(self.joints[k] for k in H36M_17.names)

    def missing_joints(self, skeleton: Skeleton, include_extras: bool = False) -> list:
        keys = list(H36M_17.names) + [k for k in EXTRA_KEYS if include_extras and k in self.joints]
        present = set(skeleton.names)
        return [self.joints[k] for k in keys if self.joints[k] not in present]


def _symmetric(name: str, common: Dict[str, str], left: Dict[str, str],
               right_of) -> JointMap:
    joints = dict(common)
    for key, source in left.items():
        joints[key] = source
        joints["r_" + key[2:]] = right_of(source)
    return JointMap(name, joints)


ACCLAIM = _symmetric(
    "acclaim",
    {"hip": "root", "spine": "upperback", "thorax": "lowerneck", "neck_nose": "head",
     "head": "head_end"},
    {"l_hip": "lfemur", "l_knee": "ltibia", "l_ankle": "lfoot", "l_shoulder": "lhumerus",
     "l_elbow": "lradius", "l_wrist": "lwrist", "l_toe": "ltoes"},
    lambda s: "r" + s[1:])

CMU_BVH = _symmetric(
    "cmu_bvh",
    {"hip": "Hips", "spine": "Spine", "thorax": "Neck", "neck_nose": "Head",
     "head": "Head_end"},
    {"l_hip": "LeftUpLeg", "l_knee": "LeftLeg", "l_ankle": "LeftFoot", "l_shoulder": "LeftArm",
     "l_elbow": "LeftForeArm", "l_wrist": "LeftHand", "l_toe": "LeftToeBase"},
    lambda s: "Right" + s[4:])

BUILTIN_JOINT_MAPS: Dict[str, JointMap] = {m.name: m for m in (ACCLAIM, CMU_BVH)}


def load_joint_map(json_path) -> JointMap:
    """Read a joint map from JSON (format in the module docstring)."""
    path = pathlib.Path(json_path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: cannot read joint map: {err}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
            or not isinstance(spec.get("joints"), dict):
        raise ValueError(f"{path}: a joint map is an object with 'name' (string) and "
                         f"'joints' (object)")
    if spec["name"] in BUILTIN_JOINT_MAPS:
        raise ValueError(f"{path}: joint map name {spec['name']!r} is a built-in's name")
    try:
        return JointMap(spec["name"], {str(k): str(v) for k, v in spec["joints"].items()})
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def get_joint_map(spec: Union[str, pathlib.Path, JointMap]) -> JointMap:
    """A `JointMap` from itself, a built-in name or a JSON file path."""
    if isinstance(spec, JointMap):
        return spec
    if isinstance(spec, str) and spec in BUILTIN_JOINT_MAPS:
        return BUILTIN_JOINT_MAPS[spec]
    if str(spec).lower().endswith(".json") or pathlib.Path(spec).is_file():
        return load_joint_map(spec)
    raise ValueError(f"unknown joint map {spec!r}; built-ins: {sorted(BUILTIN_JOINT_MAPS)}, "
                     f"or give a .json file")


def find_rig(skeleton: Skeleton):
    """The built-in `JointMap` whose 17 joints all exist in `skeleton`, or None."""
    for joint_map in BUILTIN_JOINT_MAPS.values():
        if not joint_map.missing_joints(skeleton):
            return joint_map
    return None


def choose_joint_map(skeleton: Skeleton, candidates: Sequence[JointMap] = ()):
    """The first of `candidates`, then of the built-ins, whose 17 joints all exist in
    `skeleton`; None when none fits. Several rigs in one folder: each clip takes the map
    that fits it."""
    for joint_map in list(candidates) + list(BUILTIN_JOINT_MAPS.values()):
        if not joint_map.missing_joints(skeleton):
            return joint_map
    return None


def detect_rig(skeleton: Skeleton) -> JointMap:
    """The built-in `JointMap` that fits `skeleton`; ValueError naming what each one lacks."""
    joint_map = find_rig(skeleton)
    if joint_map is None:
        lacks = "; ".join(f"{m.name} lacks {m.missing_joints(skeleton)}"
                          for m in BUILTIN_JOINT_MAPS.values())
        raise ValueError(f"skeleton fits no built-in joint map ({lacks}); "
                         f"give a JSON joint map")
    return joint_map


def joint_indices(skeleton: Skeleton, joint_map: JointMap, keys=None) -> np.ndarray:
    """(K,) int skeleton indices of `keys` (default: the 17 H36M_17 joints, layout order)."""
    keys = tuple(H36M_17.names if keys is None else keys)
    unknown = [k for k in keys if k not in joint_map.joints]
    if unknown:
        raise ValueError(f"joint map {joint_map.name!r} has no entry for {unknown}")
    index = {name: i for i, name in enumerate(skeleton.names)}
    missing = [joint_map.joints[k] for k in keys if joint_map.joints[k] not in index]
    if missing:
        raise ValueError(f"skeleton lacks joints {missing} required by joint map "
                         f"{joint_map.name!r}")
    return np.array([index[joint_map.joints[k]] for k in keys], dtype=np.int64)
