"""The causal `TemporalModel` run frame by frame: one 2D frame in, one 3D pose out.

A causal VideoPose3D model (Pavllo et al., CVPR 2019, who offer causal convolutions for
real-time use) sees, for its newest output, only past frames. Run offline it recomputes every
hidden activation of the whole receptive field for each new frame. `StreamingTemporalModel`
keeps, for each dilated convolution of width W and dilation D, exactly the last (W - 1) * D
input frames of that layer (a FIFO buffer, oldest first), so each new frame costs one new
activation per layer and nothing is recomputed.

State. All buffers of one stream are packed in one row of a float32 tensor `(B, state_size)`:
layer by layer (the expand convolution, then the dilated convolution of each residual block),
each a `(frames, channels)` block flattened frame-major. `B` streams are independent rows.

First frames. Offline, a causal model is run on the sequence padded on the left by
`receptive_field() - 1` copies of its first frame (`vp3dkeras.padding.pad_replicate`). Every
hidden activation before the first real frame then equals the activation of a constant
sequence of the first frame, which is what that layer computes for the first frame itself
when its buffer holds copies of its own input. So a stream flagged `fresh` has each layer's
buffer filled with that layer's current input before the layer runs: the outputs equal the
offline model's from the first frame on, with no warm-up. Starting or resetting a stream is
just setting its flag; its old state row is ignored.

Batch norm is folded into the preceding convolution (inference mode: `y = x @ (K * s) + b`
with `s = gamma / sqrt(var + eps)`, `b = beta - mean * s`), so each layer is one matrix
product and the weights read per frame are the convolution kernels only.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import keras
import numpy as np
from keras import ops

from vp3dkeras.models.layers import register
from vp3dkeras.models.temporal_model import TemporalModel, check_filter_widths


def _dilations(filter_widths: Sequence[int], dense: bool) -> List[int]:
    """As `TemporalModel`: the product of the earlier widths, or 1 everywhere when dense."""
    if dense:
        return [1] * len(filter_widths)
    return [math.prod(filter_widths[:i]) for i in range(len(filter_widths))]


@register
class StreamingTemporalModel(keras.Model):
    """Frame-by-frame form of a causal `TemporalModel` for B independent streams.

    Build it from a trained model with `StreamingTemporalModel.from_temporal_model(model)`.

    `step(keypoints_2d, state, fresh)` (also `model([keypoints_2d, state, fresh])`):
        keypoints_2d: (B, J_in, in_features) float32, one new frame per stream, in the
            model's input normalisation (`PoseCodec.normalize_2d`).
        state: (B, state_size) float32, the rows returned by the previous step (any values,
            e.g. zeros, where `fresh`).
        fresh: (B,) bool, True for a stream whose frame is its first (a new or reset stream).
        Returns (poses_3d (B, J_out, 3) float32 in the training targets' unit, root-relative
        as the offline model's; new state (B, state_size) float32).

    Args: as `TemporalModel` (the causal flag is implied; dropout is irrelevant at inference).
    Raises ValueError for non-positive widths.
    """

    def __init__(self, num_joints_in, in_features, num_joints_out, filter_widths,
                 channels=1024, dense=False, **kwargs):
        super().__init__(**kwargs)
        widths = check_filter_widths(filter_widths)
        self.num_joints_in = int(num_joints_in)
        self.in_features = int(in_features)
        self.num_joints_out = int(num_joints_out)
        self.filter_widths = widths
        self.channels = int(channels)
        self.dense = bool(dense)
        self.dilations = _dilations(widths, self.dense)
        in_channels = self.num_joints_in * self.in_features
        # (buffer frames, channels, width, dilation) of each buffered convolution.
        self.buffers: List[Tuple[int, int, int, int]] = [
            ((w - 1) * d, in_channels if i == 0 else self.channels, w, d)
            for i, (w, d) in enumerate(zip(widths, self.dilations))]
        self.state_size = sum(frames * ch for frames, ch, _, _ in self.buffers)
        self._make_weights()

    def _make_weights(self):
        def dense_weights(name, rows, cols):
            kernel = self.add_weight(name=f"{name}_kernel", shape=(rows, cols),
                                     initializer="zeros", trainable=False)
            bias = self.add_weight(name=f"{name}_bias", shape=(cols,), initializer="zeros",
                                   trainable=False)
            return kernel, bias

        c = self.channels
        self.expand_weights = dense_weights(
            "expand", self.filter_widths[0] * self.buffers[0][1], c)
        self.block_weights = [
            (dense_weights(f"block_{i}_dilated", w * c, c),
             dense_weights(f"block_{i}_pointwise", c, c))
            for i, w in enumerate(self.filter_widths[1:])]
        self.shrink_weights = dense_weights("shrink", c, self.num_joints_out * 3)
        self.built = True

    def build(self, input_shape=None):
        self.built = True

    def receptive_field(self) -> int:
        """Input frames one output sees, as `TemporalModel.receptive_field()`."""
        return 1 + sum(frames for frames, _, _, _ in self.buffers)

    def buffer_frames(self) -> List[int]:
        """Past frames held per buffered convolution: (W - 1) * D each."""
        return [frames for frames, _, _, _ in self.buffers]

    def weight_bytes(self) -> int:
        """Bytes of weights read per step (kernels and biases, float32)."""
        return int(sum(np.prod(v.shape) * 4 for v in self.weights))

    @classmethod
    def from_temporal_model(cls, model, name=None) -> "StreamingTemporalModel":
        """The streaming form of a trained causal `TemporalModel`, batch norm folded.

        Raises ValueError if `model` is not a causal `TemporalModel`.
        """
        if not isinstance(model, TemporalModel):
            raise ValueError(f"only a causal TemporalModel can be streamed, got "
                             f"{type(model).__name__}")
        if not model.causal:
            raise ValueError("only a causal TemporalModel can be streamed (its outputs use "
                             "no future frames); this model is symmetric")
        if not model.built:
            model.build((None, None, model.num_joints_in, model.in_features))
        stream = cls(model.num_joints_in, model.in_features, model.num_joints_out,
                     model.filter_widths, model.channels, model.dense,
                     name=name or f"{model.name}_streaming")

        def fold(block, target):
            kernel = ops.convert_to_numpy(block.conv.kernel).astype(np.float64)
            bn = block.bn
            gamma, beta, mean, variance = (ops.convert_to_numpy(v).astype(np.float64) for v in
                                           (bn.gamma, bn.beta, bn.moving_mean,
                                            bn.moving_variance))
            scale = gamma / np.sqrt(variance + bn.epsilon)
            target[0].assign((kernel.reshape(-1, kernel.shape[-1]) * scale).astype("float32"))
            target[1].assign((beta - mean * scale).astype("float32"))

        fold(model.expand, stream.expand_weights)
        for block, (dilated, pointwise) in zip(model.blocks, stream.block_weights):
            fold(block.dilated, dilated)
            fold(block.pointwise, pointwise)
        kernel = ops.convert_to_numpy(model.shrink.kernel)
        stream.shrink_weights[0].assign(kernel.reshape(-1, kernel.shape[-1]))
        stream.shrink_weights[1].assign(ops.convert_to_numpy(model.shrink.bias))
        return stream

    def initial_state(self, batch: int) -> np.ndarray:
        """(batch, state_size) zeros: a valid state for streams flagged fresh."""
        return np.zeros((batch, self.state_size), np.float32)

    def call(self, inputs):
        keypoints_2d, state, fresh = inputs
        return self.step(keypoints_2d, state, fresh)

    def step(self, keypoints_2d, state, fresh):
        """One frame for each of B streams; see the class docstring for shapes."""
        batch = ops.shape(keypoints_2d)[0]
        x = ops.reshape(ops.cast(keypoints_2d, "float32"),
                        (batch, self.num_joints_in * self.in_features))
        fresh = ops.reshape(ops.cast(fresh, "bool"), (-1, 1))
        pieces, offset = [], 0
        layers = [(self.expand_weights, None)] + list(self.block_weights)
        for (frames, channels, width, dilation), (conv, pointwise) in zip(self.buffers, layers):
            if frames:
                flat = state[:, offset:offset + frames * channels]
                offset += frames * channels
                # A fresh stream's history is its current input repeated (replicate padding).
                flat = ops.where(fresh, ops.tile(x, (1, frames)), flat)
                past = ops.reshape(flat, (batch, frames, channels))[:, ::dilation]
                taps = ops.concatenate(
                    [ops.reshape(past, (batch, (width - 1) * channels)), x], axis=1)
                pieces += [flat[:, channels:], x]
            else:
                taps = x
            hidden = ops.relu(ops.matmul(taps, conv[0]) + conv[1])
            if pointwise is None:
                x = hidden
            else:  # causal residual block: the skip connection takes the newest frame
                x = x + ops.relu(ops.matmul(hidden, pointwise[0]) + pointwise[1])
        poses = ops.matmul(x, self.shrink_weights[0]) + self.shrink_weights[1]
        poses = ops.reshape(poses, (batch, self.num_joints_out, 3))
        new_state = ops.concatenate(pieces, axis=1) if pieces else state
        return poses, new_state

    def get_config(self):
        return {
            **super().get_config(),
            "num_joints_in": self.num_joints_in,
            "in_features": self.in_features,
            "num_joints_out": self.num_joints_out,
            "filter_widths": list(self.filter_widths),
            "channels": self.channels,
            "dense": self.dense,
        }
