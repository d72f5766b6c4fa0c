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

from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from vp3dkeras.data.sequences import SequenceSource
from vp3dkeras.data.windows import WindowSampler

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
        raise ValueError(f"{len(missing)} training clip keys are not in the manifest, e.g. "
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


class ReprojectionWindowSampler(WindowSampler):
    """Single-frame windows with intrinsics (and, when labeled, 3D targets), cut on the fly.

    A `WindowSampler` (chunk 1) whose batches also carry the camera and the root trajectory.
    source: sequences with intrinsics; with_3d=True also needs their 3D.
    pad: (left, right) context frames of the model (`vp3dkeras.padding.model_padding`).
    augment: flip each window horizontally with probability 1/2 (keypoints, pose, trajectory
        and the camera, `PoseCodec.flip_intrinsics`, all mirrored together).
    max_windows_per_epoch: an epoch is this many windows of the shuffled full set.
    bones: a `BoneJitter` (labeled windows only): each window's pose re-proportioned and its
        2D re-projected through its camera; the root trajectory and the intrinsics stay.

    `batch(number)` of the endless stream (batches run on across epoch ends, so every batch is
    full) is a deterministic function of (seed, number):
      x = {"keypoints": (B, left + 1 + right, J, 2), "intrinsics": (B, 9)}, normalised;
      y = {"pose": (B, 1, J, 3) root-relative metres, "trajectory": (B, 1, 1, 3) metres},
          zeros when with_3d is False.
    """

    full_batches = True

    def __init__(self, source: SequenceSource, pad: Tuple[int, int], batch_size: int,
                 with_3d: bool = True, seed: int = 0, augment: bool = True,
                 max_windows_per_epoch: Optional[int] = None, bones=None):
        self.with_3d = self.needs_3d = bool(with_3d)
        super().__init__(source, pad, batch_size, chunk=1, seed=seed, augment=augment,
                         max_windows_per_epoch=max_windows_per_epoch, bones=bones)

    pose_field = "pose"

    def _jitterable(self) -> bool:
        # Bone-length jitter keeps the root where it was and the camera as it was: the
        # trajectory and the intrinsics stay true for the re-proportioned body.
        return self.with_3d

    def _fields(self):
        joints, with_3d = self.codec.num_joints, self.with_3d
        return {
            "intrinsics": ((9,), self._cut_intrinsics, self._flip_intrinsics),
            "pose": ((1, joints, 3), self._cut_poses if with_3d else None, self.codec.flip),
            "trajectory": ((1, 1, 3), self._cut_trajectory if with_3d else None,
                           self.codec.flip_trajectory),
        }

    def _flip_intrinsics(self, intrinsics):
        return self.codec.flip_intrinsics(intrinsics, self.source.lens_model)

    @staticmethod
    def _cut_intrinsics(seq, starts):
        if seq.intrinsics is None:
            raise ValueError(f"{seq.ref.key}: back-projection needs camera intrinsics")
        return seq.normalized_intrinsics()

    @staticmethod
    def _cut_trajectory(seq, starts):
        return seq.trajectory[starts][:, None, None]

    def _pack(self, inputs, fields) -> Batch:
        return ({"keypoints": inputs, "intrinsics": fields["intrinsics"]},
                {"pose": fields["pose"], "trajectory": fields["trajectory"]})


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
