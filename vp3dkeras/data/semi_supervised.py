"""Input side of semi-supervised training: the labeled/unlabeled choice and the mixed batches.

- `split_labeled_unlabeled` picks the labeled clips of a split's training side by actor and by
  a seeded fraction of each labeled actor's clips (the paper's setting: part of one subject
  labeled, the other subjects unlabeled).
- `ReprojectionWindowSampler` cuts single-frame windows (one receptive field around one output
  frame) with the camera's intrinsics, normalised so that `vp3dkeras.camera.project_to_2d`
  returns normalised screen coordinates. Labeled windows carry the root-relative pose and the
  root trajectory; unlabeled ones never read any 3D (their targets are zeros).
- `semi_supervised_batches` joins a labeled and an unlabeled batch into one, labeled rows
  first, the layout `vp3dkeras.models.semi_supervised_model.SemiSupervisedModel` expects.

NumPy only, like the rest of the input pipeline.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.data.sequences import SequenceSource
from vp3dkeras.data.windows import epoch_order

Batch = Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]


def _qualified_actor(record: Mapping) -> str:
    return f"{record['dataset']}_{record['actor']}"


def split_labeled_unlabeled(records: Iterable[Mapping], train_keys: Iterable[str],
                            labeled_actors: Sequence[str], labeled_fraction: float = 1.0,
                            seed: int = 0,
                            unlabeled_actors: Optional[Sequence[str]] = None
                            ) -> Tuple[List[str], List[str]]:
    """Labeled and unlabeled clip keys of a split's training side.

    records: manifest entries with `clip_key`, `dataset`, `actor` (several per clip allowed).
    train_keys: the split's training clip keys; nothing outside them is returned.
    labeled_actors: actors whose clips may be labeled, bare (`"bd"`) or qualified by dataset
        (`"hdm05_bd"`).
    labeled_fraction: in (0, 1]; of each labeled actor's training clips, round(fraction * n)
        (at least one) are labeled, chosen by a permutation seeded with `seed`.
    unlabeled_actors: restrict the unlabeled side to these actors; None: every training clip
        that is not labeled (the labeled actors' other clips included).

    Returns (labeled, unlabeled): sorted, disjoint lists of clip keys.
    """
    if not 0.0 < labeled_fraction <= 1.0:
        raise ValueError(f"labeled_fraction must lie in (0, 1], got {labeled_fraction}")
    train = set(train_keys)
    actor_of: Dict[str, Tuple[str, str]] = {}
    for record in records:
        if record["clip_key"] in train:
            actor_of[record["clip_key"]] = (str(record["actor"]), _qualified_actor(record))
    missing = train - set(actor_of)
    if missing:
        raise KeyError(f"{len(missing)} training clip keys are not in the manifest, e.g. "
                       f"{sorted(missing)[:3]}")

    def keys_of(actor: str) -> List[str]:
        keys = sorted(k for k, names in actor_of.items() if actor in names)
        if not keys:
            known = sorted({q for _, q in actor_of.values()})
            raise ValueError(f"actor {actor!r} has no training clips; actors: {known}")
        return keys

    labeled = set()
    for i, actor in enumerate(labeled_actors):
        keys = keys_of(actor)
        count = max(1, int(round(labeled_fraction * len(keys))))
        order = np.random.default_rng([seed, i]).permutation(len(keys))
        labeled.update(keys[j] for j in order[:count])
    if unlabeled_actors is None:
        pool = train
    else:
        pool = {k for actor in unlabeled_actors for k in keys_of(actor)}
    return sorted(labeled), sorted(pool - labeled)


class ReprojectionWindowSampler:
    """Single-frame windows with intrinsics (and, when labeled, 3D targets), cut on the fly.

    source: sequences with intrinsics; with_3d=True also needs their 3D.
    pad: (left, right) context frames of the model (`vp3dkeras.padding.model_padding`).
    augment: flip each window horizontally with probability 1/2 (keypoints, pose, trajectory
        and the camera, `PoseCodec.flip_intrinsics`, all mirrored together).
    max_windows_per_epoch: an epoch is this many windows of the shuffled full set.

    `batch(number)` of the endless stream (batches run on across epoch ends, so every batch is
    full) is a deterministic function of (seed, number):
      x = {"keypoints": (B, left + 1 + right, J, 2), "intrinsics": (B, 9)}, normalised;
      y = {"pose": (B, 1, J, 3) root-relative metres, "trajectory": (B, 1, 1, 3) metres},
          zeros when with_3d is False.
    """

    def __init__(self, source: SequenceSource, pad: Tuple[int, int], batch_size: int,
                 with_3d: bool = True, seed: int = 0, augment: bool = True,
                 max_windows_per_epoch: Optional[int] = None):
        if len(source) == 0:
            raise ValueError(f"{source.name}: no sequences to sample from")
        if with_3d and not source.has_3d:
            raise ValueError(f"{source.name}: labeled windows need 3D targets")
        self.source = source
        self.codec: PoseCodec = source.codec
        self.pad_left, self.pad_right = (int(p) for p in pad)
        self.batch_size = int(batch_size)
        self.with_3d = bool(with_3d)
        self.seed = int(seed)
        self.augment = bool(augment)
        lengths = np.array([r.num_frames for r in source.refs])
        self.window_sequence = np.repeat(np.arange(len(lengths)), lengths)
        self.window_frame = np.concatenate([np.arange(n) for n in lengths])
        items: Dict[object, int] = {}
        self._sequence_item = np.array([items.setdefault(r.item, len(items))
                                        for r in source.refs])
        frame_bytes = self.codec.num_joints * (2 + 3) * 4 + 3 * 4
        self._item_bytes = np.zeros(len(items), np.int64)
        np.add.at(self._item_bytes, self._sequence_item, lengths * frame_bytes)
        self.max_windows_per_epoch = max_windows_per_epoch
        self._plans: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}

    @property
    def window_length(self) -> int:
        return self.pad_left + 1 + self.pad_right

    @property
    def num_windows(self) -> int:
        return len(self.window_frame)

    @property
    def examples_per_epoch(self) -> int:
        if self.max_windows_per_epoch:
            return min(self.num_windows, int(self.max_windows_per_epoch))
        return self.num_windows

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.examples_per_epoch / self.batch_size)

    def plan(self, epoch: int) -> Tuple[np.ndarray, np.ndarray]:
        """(window indices, flips) of one epoch, `examples_per_epoch` long."""
        if epoch not in self._plans:
            rng = np.random.default_rng([self.seed, epoch])
            order = epoch_order(self._sequence_item[self.window_sequence], self._item_bytes,
                                self.source.cache_bytes, rng)[: self.examples_per_epoch]
            flips = (rng.random(len(order)) < 0.5) if self.augment \
                else np.zeros(len(order), bool)
            self._plans = {e: p for e, p in self._plans.items() if e >= epoch - 1}
            self._plans[epoch] = (order, flips)
        return self._plans[epoch]

    def batch(self, number: int) -> Batch:
        positions = int(number) * self.batch_size + np.arange(self.batch_size)
        epochs, offsets = np.divmod(positions, self.examples_per_epoch)
        indices = np.empty(self.batch_size, np.int64)
        flips = np.empty(self.batch_size, bool)
        for epoch in np.unique(epochs):
            rows = epochs == epoch
            order, epoch_flips = self.plan(int(epoch))
            indices[rows] = order[offsets[rows]]
            flips[rows] = epoch_flips[offsets[rows]]
        return self.windows(indices, flips)

    def windows(self, indices, flips=None) -> Batch:
        """The (x, y) of windows `indices` (into the full window index), in that order."""
        indices = np.asarray(indices, np.int64)
        flips = np.zeros(len(indices), bool) if flips is None else np.asarray(flips, bool)
        count, joints = len(indices), self.codec.num_joints
        keypoints = np.empty((count, self.window_length, joints, 2), np.float32)
        intrinsics = np.empty((count, 9), np.float32)
        poses = np.zeros((count, 1, joints, 3), np.float32)
        trajectory = np.zeros((count, 1, 1, 3), np.float32)
        sequences = self.window_sequence[indices]
        for seq_index in np.unique(sequences):
            rows = np.flatnonzero(sequences == seq_index)
            seq = self.source.load(int(seq_index))
            if seq.intrinsics is None:
                raise ValueError(f"{seq.ref.key}: back-projection needs camera intrinsics")
            frame = self.window_frame[indices[rows]]
            span = frame[:, None] - self.pad_left + np.arange(self.window_length)
            # Clipping the frame index is slicing the edge-replicated sequence.
            keypoints[rows] = seq.keypoints_2d[np.clip(span, 0, len(seq.keypoints_2d) - 1)]
            intrinsics[rows] = seq.normalized_intrinsics()
            if self.with_3d:
                poses[rows, 0] = seq.poses_3d[frame]
                trajectory[rows, 0, 0] = seq.trajectory[frame]
        if flips.any():
            keypoints[flips] = self.codec.flip(keypoints[flips])
            intrinsics[flips] = self.codec.flip_intrinsics(intrinsics[flips])
            if self.with_3d:
                poses[flips] = self.codec.flip(poses[flips])
                trajectory[flips] = self.codec.flip_trajectory(trajectory[flips])
        return ({"keypoints": keypoints, "intrinsics": intrinsics},
                {"pose": poses, "trajectory": trajectory})


def semi_supervised_batches(labeled: ReprojectionWindowSampler,
                            unlabeled: Optional[ReprojectionWindowSampler] = None,
                            start: int = 0) -> Iterator[Batch]:
    """Endless (x, y) batches: a labeled batch, then (if given) an unlabeled one, stacked.

    The two samplers run through their own epochs; batch k takes batch k of each, so the
    stream is reproducible and resumes from batch number `start`.
    """
    if unlabeled is not None and unlabeled.batch_size != labeled.batch_size:
        raise ValueError("the labeled and unlabeled halves must have the same batch size")
    number = int(start)
    while True:
        x, y = labeled.batch(number)
        if unlabeled is not None:
            x_u, y_u = unlabeled.batch(number)
            x = {k: np.concatenate([x[k], x_u[k]]) for k in x}
            y = {k: np.concatenate([y[k], y_u[k]]) for k in y}
        yield x, y
        number += 1
