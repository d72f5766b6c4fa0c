"""Sequences: one subject filmed by one camera, the unit the input pipeline cuts windows from.

A source (a synth dataset, a set of VideoPose3D-format files) lists cheap `SequenceRef`s up
front and loads the arrays of a `Sequence` only when asked, through a small LRU cache bounded
in bytes, so an index over a dataset larger than RAM costs a few bytes per frame.

Sources are selected by clip keys (`source.select(keys)`), which is how train/test splits and
labeled/unlabeled subsets are made.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Callable, Dict, Hashable, Iterable, List, Optional, Sequence as Seq

import numpy as np

from posecontract.dataset_format import RecordError, check_finite

from vp3dkeras.data.codec import PoseCodec


@dataclasses.dataclass(frozen=True)
class SequenceRef:
    """Metadata of one sequence, available without loading it.

    key:          unique id, e.g. "<clip_key>/<avatar>/cam0".
    clip_key:     the source clip; splits and labeled/unlabeled subsets select by it.
    subject:      performer (e.g. "hdm05_bd" or "S9"); action: the clip id or action name;
    motion_class: the class used for per-class tables.
    camera:       camera index within the item; item: what the source loads at once (a record
                  file, a subject/action pair) - several sequences share it.
    num_frames:   T; fps: frames per second (0 when unknown).
    has_3d:       whether 3D targets exist (2D-only data is allowed for unlabeled use).
    """

    key: str
    clip_key: str
    subject: str
    action: str
    motion_class: str
    camera: int
    item: Hashable
    num_frames: int
    fps: float = 0.0
    has_3d: bool = True


@dataclasses.dataclass
class Sequence:
    """The arrays of one sequence, already encoded by the source's `PoseCodec`.

    keypoints_2d: (T, J_in, 2) float32, normalised screen coordinates (input layout).
    poses_3d:     (T, J, 3) float32, metres, camera space, root-relative (root = 0); or None
                  (output layout; `PoseCodec` says both).
    trajectory:   (T, 3) float32, metres, the root's camera-space position; or None.
    intrinsics:   (9,) float32 pixel intrinsics [fx, fy, cx, cy, k1, k2, k3, p1, p2], or None.
    image_size:   (2,) (width, height) pixels.
    """

    ref: SequenceRef
    keypoints_2d: np.ndarray
    poses_3d: Optional[np.ndarray]
    trajectory: Optional[np.ndarray]
    intrinsics: Optional[np.ndarray]
    image_size: np.ndarray

    def normalized_intrinsics(self) -> Optional[np.ndarray]:
        """(9,) intrinsics whose projection gives normalised coordinates (see PoseCodec)."""
        if self.intrinsics is None:
            return None
        return PoseCodec.normalize_intrinsics(self.intrinsics, self.image_size)

    @property
    def nbytes(self) -> int:
        arrays = (self.keypoints_2d, self.poses_3d, self.trajectory)
        return sum(a.nbytes for a in arrays if a is not None)


class ByteLRU:
    """A mapping that evicts its least recently used entries beyond `max_bytes`.

    `size_of(value)` gives an entry's cost; the newest entry is always kept, even when it alone
    exceeds the budget.
    """

    def __init__(self, max_bytes: int, size_of: Callable[[object], int]):
        self.max_bytes = int(max_bytes)
        self._size_of = size_of
        self._entries: "collections.OrderedDict[Hashable, object]" = collections.OrderedDict()
        self._bytes = 0

    def get(self, key, load: Callable[[], object]):
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = load()
        self._entries[key] = value
        self._bytes += self._size_of(value)
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            _, old = self._entries.popitem(last=False)
            self._bytes -= self._size_of(old)
        return value

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self):
        return len(self._entries)


class SequenceSource:
    """Base class of the data sources: a list of refs and lazy, cached loading.

    Subclasses implement `_load_item(item) -> {camera: Sequence}` (all sequences sharing an
    item, read at once) and set `codec`, `refs`, `name`.
    cache_bytes: budget of the LRU cache of loaded items.
    lens_model: the lens model (`vp3dkeras.camera.LENS_MODELS`) of every sequence's
    intrinsics; a source whose cameras declare another one sets it.
    """

    DEFAULT_CACHE_BYTES = 1 << 30
    lens_model = "opencv"

    def __init__(self, codec: PoseCodec, refs: Seq[SequenceRef], name: str = "",
                 cache_bytes: int = DEFAULT_CACHE_BYTES, _cache: Optional[ByteLRU] = None):
        self.codec = codec
        self.refs: List[SequenceRef] = list(refs)
        self.name = name
        keys = [r.key for r in self.refs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{name}: duplicate sequence keys")
        self._cache = _cache or ByteLRU(
            cache_bytes, lambda seqs: sum(s.nbytes for s in seqs.values()))

    @property
    def cache_bytes(self) -> int:
        return self._cache.max_bytes

    def __len__(self):
        return len(self.refs)

    def load(self, index: int) -> Sequence:
        """The sequence of `self.refs[index]`, loaded (or taken from the cache)."""
        ref = self.refs[index]
        return self._cache.get(ref.item, lambda: self._load_item(ref.item))[ref.camera]

    def __iter__(self):
        for i in range(len(self.refs)):
            yield self.load(i)

    def _load_item(self, item) -> Dict[int, Sequence]:
        raise NotImplementedError

    def validate(self) -> None:
        """Loads every item once (through the cache), so a missing, corrupt or non-finite
        record raises its one-line error (`ValueError` naming the file and the array) before
        training or evaluation starts, not from inside a `tf.data` pipeline."""
        for item in dict.fromkeys(r.item for r in self.refs):
            self._cache.get(item, lambda: self._load_item(item))

    @property
    def clip_keys(self) -> List[str]:
        return sorted({r.clip_key for r in self.refs})

    def select(self, clip_keys: Iterable[str], strict: bool = True) -> "SequenceSource":
        """A source over the sequences of `clip_keys` only, sharing this one's cache.

        strict: ValueError (bad input: e.g. a split file of another dataset) if a key has no
            sequence here.
        """
        wanted = set(clip_keys)
        if strict:
            missing = wanted - {r.clip_key for r in self.refs}
            if missing:
                raise ValueError(f"{self.name}: {len(missing)} clip keys not in the data, "
                                 f"e.g. {sorted(missing)[:3]} (a split of another dataset?)")
        return self._subset([r for r in self.refs if r.clip_key in wanted])

    def where(self, predicate: Callable[[SequenceRef], bool]) -> "SequenceSource":
        """A source over the refs for which `predicate(ref)` holds, sharing the cache."""
        return self._subset([r for r in self.refs if predicate(r)])

    def _subset(self, refs: List[SequenceRef]) -> "SequenceSource":
        subset = object.__new__(type(self))
        subset.__dict__.update(self.__dict__)
        subset.refs = refs
        return subset

    @property
    def num_frames(self) -> int:
        return sum(r.num_frames for r in self.refs)

    @property
    def has_3d(self) -> bool:
        return all(r.has_3d for r in self.refs)

    def describe(self) -> str:
        return (f"{self.name}: {len(self.clip_keys)} clips, {len(self.refs)} sequences, "
                f"{self.num_frames} frames")


def make_sequence(codec: PoseCodec, ref: SequenceRef, keypoints_px, image_size,
                  joints_camera=None, intrinsics=None) -> Sequence:
    """Encodes raw arrays with `codec`: keypoints (T, J_in, 2) pixels, joints_camera (T, J, 3)
    metres or None, intrinsics (9,) pixels or None, image_size (width, height)."""
    keypoints_px = np.asarray(keypoints_px)
    if keypoints_px.ndim != 3 or keypoints_px.shape[1:] != (codec.num_joints_in, 2):
        raise ValueError(f"{ref.key}: 2D keypoints must be (T, {codec.num_joints_in}, 2), "
                         f"got {keypoints_px.shape}")
    poses = trajectory = None
    if joints_camera is not None:
        joints_camera = np.asarray(joints_camera)
        if joints_camera.shape != (len(keypoints_px), codec.num_joints, 3):
            raise ValueError(f"{ref.key}: 3D joints {joints_camera.shape} do not match 2D "
                             f"keypoints {keypoints_px.shape}")
        poses, trajectory = codec.encode_3d(joints_camera)
    image_size = np.asarray(image_size, np.float32)
    for name, array in (("2D keypoints", keypoints_px), ("3D joints", joints_camera),
                        ("image size", image_size), ("intrinsics", intrinsics)):
        if array is not None:
            check_finite(ref.key, name, array)
    if np.any(image_size <= 0):
        raise RecordError(f"{ref.key}: image size must be positive, got {image_size.tolist()}")
    return Sequence(ref=ref, keypoints_2d=codec.normalize_2d(keypoints_px, image_size),
                    poses_3d=poses, trajectory=trajectory,
                    intrinsics=None if intrinsics is None else np.asarray(intrinsics, np.float32),
                    image_size=image_size)
