"""Sequence-to-sequence baseline: lift a whole 2D pose sequence to 3D, then refine the 3D.

Two blocks of the same form, each a stack of same-length 1D convolutions over time:
the lifting block maps `(B, T, J_in, in_features)` to a first 3D sequence `(B, T, J_out, 3)`,
the refining block reads that 3D sequence and adds a correction to it. Convolutions use zero
("same") padding, so any T works (clips of 40-300 frames) and output frame t is input frame t.
Trained with the mean over frames of MPJPE.

Initialisation: both output layers start at zero, so the untrained lifter predicts the zero
(root-relative) pose, about 0.4 m from real poses, instead of Glorot noise of about 2 m per
coordinate, and the untrained refiner is the identity: training starts from a sensible pose
and the refiner learns a correction, not the whole pose again.
"""
from __future__ import annotations

import keras
from keras import ops

from vp3dkeras.models.layers import ConvBlock, TemporalConv1D, register


@register
class SequenceConvStack(keras.layers.Layer):
    """`(B, T, C_in) -> (B, T, out_channels)`: a `ConvBlock`, `num_layers - 1` residual
    `ConvBlock`s, then a width-1 convolution with bias. All same-length, mask-aware.

    dilated: layer i has dilation `kernel_size ** i` (as in VideoPose3D), so the stack sees
        `kernel_size ** num_layers` frames instead of `1 + num_layers * (kernel_size - 1)`.
    head_initializer: of the output convolution's kernel.
    """

    def __init__(self, out_channels, channels=256, kernel_size=3, num_layers=3, dropout=0.25,
                 dilated=False, head_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.out_channels = int(out_channels)
        self.channels = int(channels)
        self.kernel_size = int(kernel_size)
        self.num_layers = int(num_layers)
        self.dropout_rate = float(dropout)
        self.dilated = bool(dilated)
        self.head_initializer = keras.initializers.get(head_initializer)
        self.conv_blocks = [
            ConvBlock(channels, kernel_size, self.dilation(i), padding="same", dropout=dropout,
                      name=f"conv_{i}")
            for i in range(num_layers)
        ]
        self.head = TemporalConv1D(out_channels, 1, use_bias=True,
                                   kernel_initializer=self.head_initializer, name="head")

    def dilation(self, layer: int) -> int:
        return self.kernel_size ** layer if self.dilated else 1

    def receptive_field(self) -> int:
        """Input frames that reach one output frame (away from the sequence ends)."""
        return 1 + sum((self.kernel_size - 1) * self.dilation(i)
                       for i in range(self.num_layers))

    def build(self, input_shape):
        shape = input_shape
        for block in self.conv_blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.head.build(shape)

    def call(self, inputs, training=None, mask=None):
        x = self.conv_blocks[0](inputs, training=training, mask=mask)
        for block in self.conv_blocks[1:]:
            x = x + block(x, training=training, mask=mask)
        return self.head(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:2], self.out_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "out_channels": self.out_channels,
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "num_layers": self.num_layers,
            "dropout": self.dropout_rate,
            "dilated": self.dilated,
            "head_initializer": keras.initializers.serialize(self.head_initializer),
        }


@register
class RefinerBaseline(keras.Model):
    """2D pose sequence -> 3D pose sequence of the same length, lifted then refined.

    inputs:  (B, T, J_in, in_features) keypoints, or a dict {"keypoints": that,
             "mask": (B, T)} so a mask can travel through `fit`.
    mask:    optional (B, T), 1 for real frames, 0 for padding at the end of shorter clips.
             Padded frames are left out of the batch-norm statistics and zeroed between
             layers, so real frames get the same output as the unpadded clip would (inference
             mode). The loss must still exclude padded frames (e.g. per-frame sample weights).
    outputs: (B, T, J_out, 3), zero on padded frames.
    dilated: dilations `kernel_size ** i` in both blocks (see `SequenceConvStack`).
    `context_frames()` is the receptive field of the two blocks together; it is not called
    `receptive_field` because the model keeps the length and needs no edge padding.
    """

    def __init__(self, num_joints_in, num_joints_out, in_features=2, channels=256,
                 kernel_size=3, num_layers=3, dropout=0.25, dilated=False, **kwargs):
        super().__init__(**kwargs)
        self.num_joints_in = int(num_joints_in)
        self.num_joints_out = int(num_joints_out)
        self.in_features = int(in_features)
        self.channels = int(channels)
        self.kernel_size = int(kernel_size)
        self.num_layers = int(num_layers)
        self.dropout_rate = float(dropout)
        self.dilated = bool(dilated)
        stack_args = dict(channels=channels, kernel_size=kernel_size, num_layers=num_layers,
                          dropout=dropout, dilated=dilated, head_initializer="zeros")
        self.lifter = SequenceConvStack(num_joints_out * 3, name="lifter", **stack_args)
        self.refiner = SequenceConvStack(num_joints_out * 3, name="refiner", **stack_args)

    def context_frames(self) -> int:
        """Input frames that reach one output frame through both blocks."""
        return self.lifter.receptive_field() + self.refiner.receptive_field() - 1

    def build(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["keypoints"]
        self.lifter.build((None, None, self.num_joints_in * self.in_features))
        self.refiner.build((None, None, self.num_joints_out * 3))

    def call(self, inputs, training=None, mask=None):
        if isinstance(inputs, dict):
            inputs, mask = inputs["keypoints"], inputs.get("mask", mask)
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        x = ops.reshape(inputs, (batch, length, self.num_joints_in * self.in_features))
        if mask is not None:
            frame_weights = ops.expand_dims(ops.cast(mask, x.dtype), -1)
            x = x * frame_weights
        lifted = self.lifter(x, training=training, mask=mask)
        if mask is not None:
            lifted = lifted * frame_weights
        refined = lifted + self.refiner(lifted, training=training, mask=mask)
        if mask is not None:
            refined = refined * frame_weights
        return ops.reshape(refined, (batch, length, self.num_joints_out, 3))

    def compute_output_shape(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["keypoints"]
        return (*input_shape[:2], self.num_joints_out, 3)

    def get_config(self):
        return {
            **super().get_config(),
            "num_joints_in": self.num_joints_in,
            "num_joints_out": self.num_joints_out,
            "in_features": self.in_features,
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            "num_layers": self.num_layers,
            "dropout": self.dropout_rate,
            "dilated": self.dilated,
        }
