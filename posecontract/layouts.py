"""Joint layouts as data: names, parents, left/right pairs and the joint groups metrics report.

Pure Python/NumPy: the synth package imports this module, and it must never pull in
TensorFlow or Keras.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class JointLayout:
    """A keypoint layout.

    names:   (J,) joint names.
    parents: (J,) parent index per joint, -1 for the root.
    groups:  joint-group name -> joint indices, for per-group error tables.
    """

    name: str
    names: Tuple[str, ...]
    parents: Tuple[int, ...]
    groups: Dict[str, Tuple[int, ...]]

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, joint: str) -> int:
        return self.names.index(joint)

    @property
    def left_joints(self) -> List[int]:
        return [i for i, n in enumerate(self.names) if n.startswith("l_")]

    @property
    def right_joints(self) -> List[int]:
        """Right-side partner of each entry of `left_joints`, in the same order."""
        return [self.names.index("r_" + self.names[i][2:]) for i in self.left_joints]

    def flip_permutation(self) -> np.ndarray:
        """(J,) index array that swaps every left joint with its right partner."""
        perm = np.arange(self.num_joints)
        for left, right in zip(self.left_joints, self.right_joints):
            perm[left], perm[right] = right, left
        return perm

    def bones(self) -> List[Tuple[int, int]]:
        """(parent, child) pairs."""
        return [(p, c) for c, p in enumerate(self.parents) if p >= 0]


H36M_17 = JointLayout(
    name="h36m17",
    names=("hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
           "thorax", "neck_nose", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder",
           "r_elbow", "r_wrist"),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    groups={"hip": (0, 1, 4), "shoulder": (11, 14), "head": (9, 10), "elbow": (12, 15),
            "wrist": (13, 16), "knee": (2, 5), "ankle": (3, 6)},
)

HUMANEVA_15 = JointLayout(
    name="humaneva15",
    names=("hip", "thorax", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow",
           "r_wrist", "l_hip", "l_knee", "l_ankle", "r_hip", "r_knee", "r_ankle", "head"),
    parents=(-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1),
    groups={"hip": (0, 8, 11), "shoulder": (2, 5), "head": (14,), "elbow": (3, 6),
            "wrist": (4, 7), "knee": (9, 12), "ankle": (10, 13)},
)

#: Today's joints (the Acclaim skeleton's joint centres) in Human3.6M's order, so that a
#: dataset can hold them beside Human3.6M's own definitions (`posecontract.conventions`).
ACCLAIM_17 = dataclasses.replace(H36M_17, name="acclaim17")

#: The 17 keypoints of the COCO person category in COCO's order (Lin et al. 2014,
#: cocodataset.org "keypoints" of category 1), what most 2D detectors output. COCO has no
#: pelvis: the parents here (nose as root, hips hanging from the shoulders) only serve drawing.
COCO_17 = JointLayout(
    name="coco17",
    names=("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
           "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle",
           "r_ankle"),
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    groups={"hip": (11, 12), "shoulder": (5, 6), "head": (0, 1, 2, 3, 4), "elbow": (7, 8),
            "wrist": (9, 10), "knee": (13, 14), "ankle": (15, 16)},
)

LAYOUTS = {layout.name: layout for layout in (H36M_17, HUMANEVA_15, ACCLAIM_17, COCO_17)}


def get_layout(name: str) -> JointLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown joint layout {name!r}; known: {sorted(LAYOUTS)}") from None
