"""Training batches cut on the fly from a `SequenceSource`, in NumPy.

Two samplers, both deterministic functions of (seed, batch number) so that an interrupted
run resumes with exactly the batches it would have seen:

- `WindowSampler`: one window of input frames per output chunk. With `chunk=1` (the default)
  each window is one receptive field around one output frame, the single-frame batching of
  VideoPose3D; a longer chunk trains a model layer by layer on `chunk` output frames.
  Windows come from every frame of every sequence (all clips x cameras); frames before the
  start or after the end repeat the first/last frame (`vp3dkeras.padding.pad_replicate`).
- `SequenceBatcher`: whole sequences (randomly cropped to at most `max_frames`), zero-padded
  to the longest in the batch, with a (B, T) mask, for the sequence-to-sequence refiner.

Horizontal-flip augmentation (each example flipped with probability 1/2) is on by default.
Detector-like 2D noise (`vp3dkeras.data.detector_noise`, `noise=`) is off by default; when on,
every training batch's 2D input gets it (before the flip), seeded by (seed, batch number).
Bone-length jitter (`vp3dkeras.data.bone_jitter`, `bones=`, `WindowSampler` and the labeled
`ReprojectionWindowSampler`) is off by
default; when on, every training example gets its own bone lengths and the 2D re-projected
through its camera, before the noise and the flip.

Memory: only an index (sequence, frame) is kept. Sequences are loaded through the source's
LRU cache; when the data exceed the cache budget, an epoch visits the data in blocks of items
that fit in it (items in random order, examples shuffled within a block), so each item is
read about once per epoch.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from vp3dkeras.data.bone_jitter import BoneJitter
from vp3dkeras.data.detector_noise import DetectorNoise
from vp3dkeras.data.sequences import SequenceSource


def _bytes_per_frame(num_joints: int, num_joints_in: Optional[int] = None) -> int:
    num_joints_in = num_joints if num_joints_in is None else num_joints_in
    return (num_joints_in * 2 + num_joints * 3) * 4 + 3 * 4


def epoch_order(unit_items: np.ndarray, item_bytes: np.ndarray, budget: int,
                rng: np.random.Generator) -> np.ndarray:
    """A random order of units (windows, sequences) that respects a memory budget.

    unit_items: (N,) item index of each unit; item_bytes: (num_items,) loaded size of each
    item. When all items fit in `budget`, a plain permutation; otherwise items are shuffled,
    grouped into consecutive blocks that fit in half the budget, and units are shuffled
    within their block. Returns (N,) unit indices.
    """
    num_units = len(unit_items)
    if item_bytes.sum() <= budget:
        return rng.permutation(num_units)
    item_order = rng.permutation(len(item_bytes))
    block_of_item = np.empty(len(item_bytes), np.int64)
    block, used = 0, 0
    for item in item_order:
        if used and used + item_bytes[item] > budget // 2:
            block, used = block + 1, 0
        block_of_item[item] = block
        used += item_bytes[item]
    # Sort by block, random within a block: a random key, then a stable sort by block.
    shuffled = rng.permutation(num_units)
    return shuffled[np.argsort(block_of_item[unit_items[shuffled]], kind="stable")]


class _Sampler:
    """Shared bookkeeping: the source, items, seeds and per-epoch plans."""

    full_batches = False  # see `batch`
    rows: Optional[slice] = None  # see `batch`

    def __init__(self, source: SequenceSource, batch_size: int, seed: int, augment: bool,
                 noise: Optional[DetectorNoise] = None):
        if len(source) == 0:
            raise ValueError(f"{source.name}: no sequences to sample from")
        self.source = source
        self.codec = source.codec
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.noise = noise
        items: Dict[object, int] = {}
        self._seq_item = np.array([items.setdefault(r.item, len(items)) for r in source.refs])
        self._item_bytes = np.zeros(len(items), np.int64)
        np.add.at(self._item_bytes, self._seq_item,
                  [r.num_frames * _bytes_per_frame(self.codec.num_joints, self.codec.num_joints_in)
                   for r in source.refs])
        self._plan_epoch: Optional[int] = None
        self._plan = None

    def _rng(self, epoch: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, purpose])

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.examples_per_epoch / self.batch_size)

    def plan(self, epoch: int):
        """(order, flips, uniforms) of one epoch: example indices, whether each is flipped,
        and one uniform number per example for any other random choice (e.g. a crop)."""
        if self._plan_epoch != epoch:
            order = self._make_order(epoch)
            flips = (self._rng(epoch, 1).random(len(order)) < 0.5) if self.augment \
                else np.zeros(len(order), bool)
            uniforms = self._rng(epoch, 2).random(len(order))
            self._plan_epoch, self._plan = epoch, (order, flips, uniforms)
        return self._plan

    def batch(self, number: int):
        """Batch `number` of the endless stream: epoch = number // steps_per_epoch, the last
        batch of an epoch short; with `full_batches`, batches run on across epoch ends
        (example k of the stream is example k % examples_per_epoch of epoch k //
        examples_per_epoch), so every batch is full. With `rows` (a slice), only those rows
        of the batch are cut: one worker's part of a global batch (`vp3dkeras.distributed`)."""
        noise_rng = np.random.default_rng([self.seed, 3, int(number)])
        bone_rng = np.random.default_rng([self.seed, 4, int(number)])
        if not self.full_batches:
            epoch, step = divmod(int(number), self.steps_per_epoch)
            chosen = slice(step * self.batch_size, (step + 1) * self.batch_size)
            parts = [part[chosen] for part in self.plan(epoch)]
        else:
            positions = int(number) * self.batch_size + np.arange(self.batch_size)
            epochs, offsets = np.divmod(positions, self.examples_per_epoch)
            # Positions increase, so the epochs come in order: one slice of each epoch's plan.
            slices = [(self.plan(int(e)), offsets[epochs == e]) for e in np.unique(epochs)]
            parts = [np.concatenate([plan[i][rows] for plan, rows in slices])
                     for i in range(3)]
        if self.rows is not None:
            parts = [part[self.rows] for part in parts]
        return self._make_batch(*parts, noise_rng=noise_rng, bone_rng=bone_rng)

    def batches(self, start: int = 0) -> Iterator:
        """Endless stream of batches from batch number `start` (resume: epoch * steps)."""
        number = start
        while True:
            yield self.batch(number)
            number += 1


class WindowSampler(_Sampler):
    """Windows of 2D input with their 3D targets, cut on the fly.

    source:     sequences with 3D targets.
    pad:        (left, right) context frames of the model (`vp3dkeras.padding.model_padding`).
    chunk:      output frames per example (1: single-frame batching). Sequences shorter than
                a chunk are left out; the last chunk of a sequence is shifted to end with it.
    max_windows_per_epoch: an epoch uses this many examples of the (shuffled) full set.
    noise:      a `DetectorNoise` applied to the 2D of training batches (`batch`), or None;
                `windows` / `fixed_subset` (validation) stay clean.
    bones:      a `BoneJitter` for training batches (`batch`), or None: each example's 3D
                re-proportioned over its whole window and its 2D input re-projected through
                the sequence's camera (needs intrinsics and trajectories; samplers whose
                other fields stay valid for the new body, `_jitterable`).

    A batch is (inputs (B, left + chunk + right, J, 2), targets (B, chunk, J, 3)), float32.

    Subclasses cut other per-window arrays next to the inputs by overriding `_fields` (what
    to cut and how to mirror it) and `_pack` (how the batch is laid out); `needs_3d = False`
    lets them sample sources without 3D.
    """

    needs_3d = True

    def __init__(self, source: SequenceSource, pad: Tuple[int, int], batch_size: int = 1024,
                 chunk: int = 1, seed: int = 0, augment: bool = True,
                 max_windows_per_epoch: Optional[int] = None,
                 noise: Optional[DetectorNoise] = None, bones: Optional[BoneJitter] = None):
        super().__init__(source, batch_size, seed, augment, noise)
        if self.needs_3d and not source.has_3d:
            raise ValueError(f"{source.name}: windows for training need 3D targets")
        self.pad_left, self.pad_right = (int(p) for p in pad)
        self.chunk = int(chunk)
        seqs, starts = [], []
        for i, ref in enumerate(source.refs):
            if ref.num_frames < self.chunk:
                continue
            first = np.arange(0, ref.num_frames, self.chunk)
            first[-1] = min(first[-1], ref.num_frames - self.chunk)
            seqs.append(np.full(len(first), i))
            starts.append(first)
        if not seqs:
            raise ValueError(f"{source.name}: every sequence is shorter than chunk {chunk}")
        self.window_sequence = np.concatenate(seqs)
        self.window_start = np.concatenate(starts)
        self.max_windows_per_epoch = max_windows_per_epoch
        if bones is not None and not self._jitterable():
            raise ValueError(f"{type(self).__name__} cannot jitter bone lengths")
        if bones is not None:
            self._window_3d(source.load(int(self.window_sequence[0])), np.zeros((1, 1), int))
        self.bones = bones

    @property
    def window_length(self) -> int:
        return self.pad_left + self.chunk + self.pad_right

    @property
    def num_windows(self) -> int:
        return len(self.window_start)

    @property
    def examples_per_epoch(self) -> int:
        if self.max_windows_per_epoch:
            return min(self.num_windows, int(self.max_windows_per_epoch))
        return self.num_windows

    def _make_order(self, epoch):
        order = epoch_order(self._seq_item[self.window_sequence], self._item_bytes,
                            self.source.cache_bytes, self._rng(epoch, 0))
        return order[: self.examples_per_epoch]

    def windows(self, indices, flips=None):
        """The batch of windows `indices` (into the full window index), in that order."""
        indices = np.asarray(indices, np.int64)
        flips = np.zeros(len(indices), bool) if flips is None else np.asarray(flips, bool)
        return self._make_batch(indices, flips)

    def _fields(self) -> Dict[str, Tuple[Tuple[int, ...], Optional[Callable], Callable]]:
        """Per-window arrays cut next to the inputs: name -> (shape of one window's array,
        cut(seq, starts) -> (n, *shape) for the windows starting at `starts` of `seq`, or
        None to leave zeros, mirror(array) for flipped windows)."""
        shape = (self.chunk, self.codec.num_joints, 3)
        return {"targets": (shape, self._cut_poses, self.codec.flip)}

    #: The per-window field that holds the root-relative 3D target, which bone-length jitter
    #: rewrites (the 2D input is re-projected with it; every other field must stay valid for
    #: the re-proportioned body: `_jitterable`).
    pose_field = "targets"

    def _jitterable(self) -> bool:
        """Whether bone-length jitter may rewrite this sampler's batches: only the pose field
        is cut from 3D (the base class)."""
        return set(self._fields()) == {self.pose_field}

    def _cut_poses(self, seq, starts):
        return seq.poses_3d[starts[:, None] + np.arange(self.chunk)]

    def _pack(self, inputs, fields):
        return inputs, fields["targets"]

    def _make_batch(self, indices, flips, uniforms=None, noise_rng=None, bone_rng=None):
        fields = self._fields()
        jitter = self.bones if bone_rng is not None else None
        inputs = np.empty((len(indices), self.window_length, self.codec.num_joints_in, 2),
                          np.float32)
        out = {name: np.zeros((len(indices),) + shape, np.float32)
               for name, (shape, _, _) in fields.items()}
        sequences = self.window_sequence[indices]
        bodies = []  # bone-length jitter: (rows, 3D, trajectory, intrinsics) per sequence
        for seq_index in np.unique(sequences):
            rows = np.flatnonzero(sequences == seq_index)
            seq = self.source.load(int(seq_index))
            starts = self.window_start[indices[rows]]
            frames = starts[:, None] - self.pad_left + np.arange(self.window_length)
            # Clipping the frame index is slicing the edge-replicated sequence.
            inputs[rows] = seq.keypoints_2d[np.clip(frames, 0, len(seq.keypoints_2d) - 1)]
            for name, (_, cut, _) in fields.items():
                if cut is not None:
                    out[name][rows] = cut(seq, starts)
            if jitter is not None:
                bodies.append((rows, *self._window_3d(seq, frames)))
        if bodies:
            rows, poses, trajectory, intrinsics = (np.concatenate(a) for a in zip(*bodies))
            poses, inputs[rows] = jitter.apply(poses, trajectory, intrinsics, bone_rng)
            out[self.pose_field][rows] = poses[:, self.pad_left:self.pad_left + self.chunk]
        if self.noise is not None and noise_rng is not None:
            inputs = self.noise.apply(inputs, noise_rng)
        if flips.any():
            inputs[flips] = self.codec.flip_2d(inputs[flips])
            for name, (_, cut, mirror) in fields.items():
                if cut is not None:
                    out[name][flips] = mirror(out[name][flips])
        return self._pack(inputs, out)

    def _window_3d(self, seq, frames):
        """(poses (n, W, J, 3), trajectory (n, W, 3), normalised intrinsics (n, 9)) of windows
        `frames` (n, W) of `seq`, edges replicated: what `BoneJitter.apply` needs."""
        if seq.intrinsics is None or seq.trajectory is None:
            raise ValueError(f"{seq.ref.key}: bone-length jitter needs the sequence's camera "
                             f"intrinsics and root trajectory")
        clipped = np.clip(frames, 0, len(seq.poses_3d) - 1)
        return (seq.poses_3d[clipped], seq.trajectory[clipped],
                np.broadcast_to(seq.normalized_intrinsics(), (len(frames), 9)))

    def fixed_subset(self, max_windows: Optional[int]):
        """Unflipped (inputs, targets) of evenly spread windows, e.g. for validation."""
        count = self.num_windows if not max_windows else min(self.num_windows, max_windows)
        indices = np.linspace(0, self.num_windows - 1, count).round().astype(np.int64)
        return self.windows(indices)


class SequenceBatcher(_Sampler):
    """Batches of whole sequences for sequence-to-sequence models.

    max_frames: longer sequences are cropped to a random `max_frames` span (training), or
        None to keep them whole. length_multiple: the padded length is rounded up to it,
        which bounds how many shapes a compiled step sees.
    A batch is ({"keypoints": (B, T, J, 2), "mask": (B, T)}, targets (B, T, J, 3),
    sample_weight (B, T)), T the longest (cropped) sequence of the batch, padding zero with
    mask and weight 0. noise: a `DetectorNoise` for the 2D of training batches, or None.
    """

    def __init__(self, source: SequenceSource, batch_size: int = 32, seed: int = 0,
                 augment: bool = True, max_frames: Optional[int] = 256,
                 length_multiple: int = 8, shuffle: bool = True,
                 noise: Optional[DetectorNoise] = None):
        super().__init__(source, batch_size, seed, augment, noise)
        if not source.has_3d:
            raise ValueError(f"{source.name}: sequence batches for training need 3D targets")
        self.max_frames = max_frames
        self.length_multiple = int(length_multiple)
        self.shuffle = bool(shuffle)

    @property
    def examples_per_epoch(self) -> int:
        return len(self.source)

    def _make_order(self, epoch):
        if not self.shuffle:
            return np.arange(len(self.source))
        return epoch_order(self._seq_item, self._item_bytes, self.source.cache_bytes,
                           self._rng(epoch, 0))

    def sequences(self, indices):
        """Unflipped, uncropped batch of sequences `indices` (into `source.refs`)."""
        indices = np.asarray(indices)
        return self._make_batch(indices, np.zeros(len(indices), bool), np.zeros(len(indices)),
                                max_frames=None)

    def _make_batch(self, indices, flips, uniforms, max_frames=-1, noise_rng=None,
                    bone_rng=None):
        max_frames = self.max_frames if max_frames == -1 else max_frames
        crops: List[Tuple[int, int]] = []
        for index, u in zip(indices, uniforms):
            frames = self.source.refs[int(index)].num_frames
            length = frames if not max_frames else min(frames, int(max_frames))
            crops.append((int(u * (frames - length + 1)), length))
        longest = max(length for _, length in crops)
        padded = -(-longest // self.length_multiple) * self.length_multiple
        keypoints = np.zeros((len(indices), padded, self.codec.num_joints_in, 2), np.float32)
        targets = np.zeros((len(indices), padded, self.codec.num_joints, 3), np.float32)
        mask = np.zeros((len(indices), padded), np.float32)
        for row, (index, (start, length)) in enumerate(zip(indices, crops)):
            seq = self.source.load(int(index))
            span = slice(start, start + length)
            keypoints[row, :length] = seq.keypoints_2d[span]
            if self.noise is not None and noise_rng is not None:
                keypoints[row, :length] = self.noise.apply(keypoints[row, :length], noise_rng)
            targets[row, :length] = seq.poses_3d[span]
            mask[row, :length] = 1.0
            if flips[row]:
                keypoints[row, :length] = self.codec.flip_2d(keypoints[row, :length])
                targets[row, :length] = self.codec.flip(targets[row, :length])
        return {"keypoints": keypoints, "mask": mask}, targets, mask
