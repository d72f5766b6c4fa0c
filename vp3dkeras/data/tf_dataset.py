"""The `tf.data` edge of the input pipeline: NumPy batch streams wrapped as datasets.

Everything before this point is NumPy; a sampler's `batches(start)` generator feeds
`tf.data.Dataset.from_generator`, so a `tf.distribute` strategy can split the batches and the
stream can resume at any batch number.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from vp3dkeras.data.windows import SequenceBatcher, WindowSampler


def window_dataset(sampler: WindowSampler, start_batch: int = 0,
                   prefetch: int = 2) -> tf.data.Dataset:
    """Endless (inputs (B, W, J, 2), targets (B, chunk, J, 3)) float32 batches, from batch
    number `start_batch` on (pass `epoch * sampler.steps_per_epoch` to resume)."""
    joints_in, joints = sampler.codec.num_joints_in, sampler.codec.num_joints
    signature = (tf.TensorSpec((None, sampler.window_length, joints_in, 2), tf.float32),
                 tf.TensorSpec((None, sampler.chunk, joints, 3), tf.float32))
    dataset = tf.data.Dataset.from_generator(lambda: sampler.batches(start_batch),
                                             output_signature=signature)
    return dataset.prefetch(prefetch)


def sequence_signature(num_joints: int, num_joints_in: Optional[int] = None):
    """Element spec of `SequenceBatcher` batches (J_out 3D joints, J_in 2D keypoints)."""
    num_joints_in = num_joints if num_joints_in is None else num_joints_in
    return ({"keypoints": tf.TensorSpec((None, None, num_joints_in, 2), tf.float32),
             "mask": tf.TensorSpec((None, None), tf.float32)},
            tf.TensorSpec((None, None, num_joints, 3), tf.float32),
            tf.TensorSpec((None, None), tf.float32))


def sequence_dataset(batcher: SequenceBatcher, start_batch: int = 0,
                     prefetch: int = 2) -> tf.data.Dataset:
    """Endless ({"keypoints": (B, T, J, 2), "mask": (B, T)}, targets (B, T, J, 3),
    sample_weight (B, T)) batches; T varies from batch to batch."""
    dataset = tf.data.Dataset.from_generator(
        lambda: batcher.batches(start_batch),
        output_signature=sequence_signature(batcher.codec.num_joints,
                                            batcher.codec.num_joints_in))
    return dataset.prefetch(prefetch)


def sequence_eval_dataset(batcher: SequenceBatcher) -> tf.data.Dataset:
    """One pass over every sequence of the batcher's source, whole and unflipped."""
    size, count = batcher.batch_size, len(batcher.source)
    batches = [batcher.sequences(np.arange(start, min(start + size, count)))
               for start in range(0, count, size)]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(batches), output_signature=sequence_signature(
            batcher.codec.num_joints, batcher.codec.num_joints_in))
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))


def array_dataset(inputs, targets, batch_size: int, sample_weight=None) -> tf.data.Dataset:
    """A finite dataset over in-memory arrays (validation windows), in order."""
    parts = (inputs, targets) if sample_weight is None else (inputs, targets, sample_weight)
    return tf.data.Dataset.from_tensor_slices(parts).batch(batch_size)
