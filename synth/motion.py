"""The `Motion` record every mocap reader produces and every later stage consumes.

World frame: right-handed, Z up, metres. Readers convert their source's frame (Y-up for
ASF/AMC and BVH) into it, so a skeleton with all local rotations set to identity stands
upright in its rest pose (the source's T-pose or whatever rest the file defines).

Quaternions are scalar-first ``(w, x, y, z)`` throughout the synth package.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Dict, List, Optional

import numpy as np


class MocapError(ValueError):
    """A mocap file that cannot be turned into a `Motion`; the message names file and problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclasses.dataclass
class Skeleton:
    """A joint tree.

    names:   (J,) joint names, unique.
    parents: (J,) int, index of the parent joint, -1 for the root (index 0); parents[j] < j.
    offsets: (J, 3) float64, metres: rest offset of each joint from its parent, expressed in
             the parent's frame at rest (which is the world frame, since rest rotations are
             identity). The root's offset is zero.
    """

    names: List[str]
    parents: np.ndarray
    offsets: np.ndarray

    def __post_init__(self):
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        n = len(self.names)
        if self.parents.shape != (n,) or self.offsets.shape != (n, 3):
            raise ValueError(f"skeleton shapes disagree: {n} names, parents {self.parents.shape}, "
                             f"offsets {self.offsets.shape}")
        if n == 0 or self.parents[0] != -1:
            raise ValueError("skeleton root must be joint 0 with parent -1")
        if np.any(self.parents[1:] >= np.arange(1, n)) or np.any(self.parents[1:] < 0):
            raise ValueError("skeleton parents must precede their children")
        if len(set(self.names)) != n:
            raise ValueError("skeleton joint names must be unique")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions at rest, root at the origin."""
        positions = np.zeros((self.num_joints, 3))
        for j in range(1, self.num_joints):
            positions[j] = positions[self.parents[j]] + self.offsets[j]
        return positions

    def copy(self) -> "Skeleton":
        return Skeleton(list(self.names), self.parents.copy(), self.offsets.copy())


@dataclasses.dataclass
class Motion:
    """One mocap clip.

    skeleton:          the source's full skeleton.
    local_rotations:   (T, J, 4) float64 unit quaternions (w, x, y, z): rotation of each joint
                       relative to its parent; the root's entry is its world orientation.
    root_translation:  (T, 3) float64, metres, world position of the root joint.
    fps:               frames per second.
    rig:               name of the joint map that relates this skeleton to the 17-joint layout
                       (``"acclaim"``, ``"cmu_bvh"`` or a custom map's name).
    source:            metadata: ``path``, ``dataset``, ``actor``, ``motion_class``,
                       ``clip_id``, ``description`` (strings; unknown ones are "").
    """

    skeleton: Skeleton
    local_rotations: np.ndarray
    root_translation: np.ndarray
    fps: float
    rig: str
    source: Dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.local_rotations = np.asarray(self.local_rotations, dtype=np.float64)
        self.root_translation = np.asarray(self.root_translation, dtype=np.float64)
        path = self.source.get("path", "<motion>")
        t = self.local_rotations.shape[0] if self.local_rotations.ndim == 3 else -1
        if self.local_rotations.shape != (t, self.skeleton.num_joints, 4):
            raise MocapError(path, f"local_rotations has shape {self.local_rotations.shape}, "
                                   f"expected (T, {self.skeleton.num_joints}, 4)")
        if self.root_translation.shape != (t, 3):
            raise MocapError(path, f"root_translation has shape {self.root_translation.shape}, "
                                   f"expected ({t}, 3)")
        if t < 1:
            raise MocapError(path, "clip has no frames")
        if not (np.all(np.isfinite(self.local_rotations))
                and np.all(np.isfinite(self.root_translation))):
            bad = np.where(~np.isfinite(self.local_rotations).all(axis=(1, 2))
                           | ~np.isfinite(self.root_translation).all(axis=1))[0]
            raise MocapError(path, f"non-finite values (NaN/inf) in frame(s) {bad[:5].tolist()}")
        if not self.fps > 0:
            raise MocapError(path, f"frame rate must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return self.local_rotations.shape[0]

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def clip_name(self) -> str:
        return self.source.get("clip_id") or "clip"

    def with_(self, **changes) -> "Motion":
        return dataclasses.replace(self, **changes)


def source_metadata(path, dataset: str = "", actor: str = "", motion_class: str = "",
                    clip_id: str = "", description: str = "",
                    extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The `Motion.source` dict with every documented key present."""
    meta = {"path": str(path), "dataset": dataset, "actor": actor,
            "motion_class": motion_class, "clip_id": clip_id, "description": description}
    meta.update(extra or {})
    return meta


def parse_value_rows(path, rows: List[List[str]], where: List[str]) -> np.ndarray:
    """(N, K) float64 from N rows of K number tokens read from a mocap file.

    where: (N,) description of each row for messages, e.g. "frame 12 (bone 'lfemur')".
    Raises MocapError naming the first token that is not a finite number.
    """
    count = len(rows[0]) if rows else 0
    try:
        values = np.array(rows, dtype=np.float64).reshape(len(rows), count)
    except ValueError:
        for k, row in enumerate(rows):
            for token in row:
                try:
                    float(token)
                except ValueError:
                    raise MocapError(path, f"value {token!r} in {where[k]} is not a "
                                           f"number") from None
        raise MocapError(path, "values are not numbers") from None
    bad = ~np.isfinite(values)
    if bad.any():
        k, c = np.argwhere(bad)[0]
        raise MocapError(path, f"value {rows[k][c]!r} in {where[k]}")
    return values


def read_text_lines(path) -> List[str]:
    """The lines of a mocap text file; MocapError for an unreadable or empty file."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MocapError(path, f"cannot read file: {err.strerror or err}") from None
    if not data.strip():
        raise MocapError(path, "empty file")
    # Latin-1 maps every byte, so stray bytes in comments never stop a read.
    return data.decode("latin-1").splitlines()
