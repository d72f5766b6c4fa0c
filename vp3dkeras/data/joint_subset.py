"""A source seen through another joint layout: the joints it names, picked by name.

Used when a model's layout and a data set's layout differ but share joints, e.g. a model
trained on the 15 HumanEva-I joint names taken from synthetic Human3.6M-layout records, or a
run scored on a real set whose convention has more joints than the run predicts. Picking by
name says nothing about whether the two sets *define* a joint alike (our Acclaim hip centres
are not HumanEva-I's hips); `shared_joints` reports what is compared.
"""
from __future__ import annotations

from typing import Dict, List, Sequence as Seq

import numpy as np

from posecontract.layouts import JointLayout
from vp3dkeras.data.codec import PoseCodec, load_layout
from vp3dkeras.data.sequences import Sequence, SequenceSource


def shared_joints(first: JointLayout, second: JointLayout) -> List[str]:
    """Joint names present in both layouts, in `first`'s order."""
    return [name for name in first.names if name in second.names]


def subset_layout(layout: JointLayout, names: Seq[str], name: str = "") -> JointLayout:
    """`layout` reduced to `names` (its root first): parents re-linked to the nearest kept
    ancestor, groups keep their kept joints. Raises ValueError for unknown names."""
    missing = [n for n in names if n not in layout.names]
    if missing:
        raise ValueError(f"layout {layout.name} has no joints {missing}")
    keep = [layout.index(n) for n in names]
    if layout.parents[keep[0]] != -1:
        raise ValueError(f"a joint subset must start with the root of {layout.name}")
    parents = []
    for index in keep:
        parent = layout.parents[index]
        while parent >= 0 and parent not in keep:
            parent = layout.parents[parent]
        parents.append(keep.index(parent) if parent >= 0 else -1)
    groups = {g: tuple(keep.index(j) for j in joints if j in keep)
              for g, joints in layout.groups.items()}
    return JointLayout(name=name or f"{layout.name}[{len(keep)}]", names=tuple(names),
                       parents=tuple(parents), groups={g: j for g, j in groups.items() if j})


def _indices(names: Seq[str], layout: JointLayout, what: str, where: str) -> np.ndarray:
    missing = [n for n in names if n not in layout.names]
    if missing:
        raise ValueError(f"{where}: its {what} joints ({layout.name}) lack {missing}")
    return np.array([layout.index(n) for n in names])


class JointSubsetSource(SequenceSource):
    """The sequences of `base` restricted and reordered to other layouts' joint names.

    base:         any `SequenceSource`.
    layout:       the 3D output joints (JointLayout or name), picked by name from the base's
                  output layout; its root must be the base root's name, so root-relative
                  poses stay root-relative.
    input_layout: the 2D input keypoints, picked from the base's input layout (default:
                  `layout`).
    A name the base lacks raises ValueError naming it. 2D keypoints are sliced; 3D poses are
    rebuilt in camera space and re-encoded.
    """

    def __init__(self, base: SequenceSource, layout, input_layout=None):
        layout = load_layout(layout)
        input_layout = layout if input_layout is None else load_layout(input_layout)
        self._base = base
        self._index_in = _indices(input_layout.names, base.codec.input_layout, "2D", base.name)
        self._index = _indices(layout.names, base.codec.layout, "3D", base.name)
        super().__init__(PoseCodec(layout, input_layout=input_layout), base.refs,
                         name=f"{base.name} [{layout.name}]", cache_bytes=base.cache_bytes)

    @property
    def base_codec(self) -> PoseCodec:
        """The codec of the data the joints were picked from."""
        return self._base.codec

    def _restrict(self, seq: Sequence) -> Sequence:
        poses = trajectory = None
        if seq.poses_3d is not None:
            joints = seq.poses_3d + seq.trajectory[:, None, :]
            poses, trajectory = self.codec.encode_3d(joints[:, self._index])
        return Sequence(ref=seq.ref, keypoints_2d=seq.keypoints_2d[:, self._index_in],
                        poses_3d=poses, trajectory=trajectory, intrinsics=seq.intrinsics,
                        image_size=seq.image_size)

    def _load_item(self, item) -> Dict[int, Sequence]:
        return {camera: self._restrict(seq)
                for camera, seq in self._base._load_item(item).items()}
