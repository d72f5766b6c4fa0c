"""The VideoPose3D temporal convolutional model (Pavllo et al., CVPR 2019), written from the paper.

An expand convolution of width `W0` over the `J_in * in_features` input channels, then one
residual block per further filter width (a dilated convolution of width `W_i` whose dilation is
the product of the earlier widths, then a width-1 convolution), then a width-1 convolution to
`3 * J_out` channels. All convolutions are unpadded, so an input of `T` frames gives
`T - receptive_field() + 1` output frames.
"""
from __future__ import annotations

import math

import keras
from keras import ops

from vp3dkeras.models.layers import ConvBlock, TemporalConv1D, register


def check_filter_widths(filter_widths) -> tuple:
    """`filter_widths` as a tuple of ints; ValueError unless every width is a positive int."""
    widths = tuple(int(w) for w in filter_widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"filter_widths must be positive integers, got {filter_widths!r}")
    return widths


@register
class ResidualBlock(keras.layers.Layer):
    """Dilated `ConvBlock` (width W, dilation d) -> width-1 `ConvBlock`, plus a skip connection.

    `(B, T, C) -> (B, T - (W - 1) * d, C)`. Each output frame is aligned with one frame of its
    input window, its `anchor` (index within the W taps): the centre tap `(W - 1) // 2` when
    symmetric, the last tap `W - 1` when causal (the output frame is the newest input frame).
    The skip connection takes the input at that frame. In strided mode (the single-frame twin:
    stride W, no dilation) that is every W-th frame starting at the anchor.
    """

    def __init__(self, channels, width, dilation, causal=False, dropout=0.25, momentum=0.9,
                 epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.width = int(width)
        self.dilation = int(dilation)
        self.causal = bool(causal)
        self.dropout_rate = float(dropout)
        self.anchor = self.width - 1 if causal else (self.width - 1) // 2
        block_args = dict(dropout=dropout, momentum=momentum, epsilon=epsilon)
        self.dilated = ConvBlock(channels, width, dilation, name="dilated", **block_args)
        self.pointwise = ConvBlock(channels, 1, name="pointwise", **block_args)

    def build(self, input_shape):
        self.dilated.build(input_shape)
        self.pointwise.build(self.dilated.compute_output_shape(input_shape))

    def call(self, inputs, training=None, strided=False):
        x = self.dilated(inputs, training=training, strided=strided)
        x = self.pointwise(x, training=training)
        if strided:
            residual = inputs[:, self.anchor::self.width]
        else:
            start = self.anchor * self.dilation
            residual = inputs[:, start:start + ops.shape(x)[1]]
        return residual + x

    def compute_output_shape(self, input_shape):
        return self.dilated.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "width": self.width,
            "dilation": self.dilation,
            "causal": self.causal,
            "dropout": self.dropout_rate,
            "momentum": self.dilated.bn.momentum,
            "epsilon": self.dilated.bn.epsilon,
        }


@register
class TemporalModel(keras.Model):
    """2D keypoint sequence -> 3D pose sequence with dilated temporal convolutions.

    inputs:  (B, T, J_in, in_features), T >= receptive_field().
    outputs: (B, T - receptive_field() + 1, J_out, 3); output frame t belongs to input frame
             t + total_pad()[0].

    Args:
        filter_widths: e.g. (3, 3, 3, 3, 3) for the 243-frame model.
        causal: output frames look only at the past (real-time use).
        dropout: rate after every ReLU.
        channels: width of every hidden layer.
        dense: the paper's ablation with non-dilated convolutions (dilation 1 everywhere);
            its receptive field is `1 + sum(W_i - 1)` and it has no strided single-frame twin.
        momentum, epsilon: batch norm, Keras convention (PyTorch momentum 0.1 == 0.9 here).
            Change momentum during training through `vp3dkeras.models.batch_norm_layers`.
    """

    def __init__(self, num_joints_in, in_features, num_joints_out, filter_widths, causal=False,
                 dropout=0.25, channels=1024, dense=False, momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        widths = check_filter_widths(filter_widths)
        self.num_joints_in = int(num_joints_in)
        self.in_features = int(in_features)
        self.num_joints_out = int(num_joints_out)
        self.filter_widths = widths
        self.causal = bool(causal)
        self.dropout_rate = float(dropout)
        self.channels = int(channels)
        self.dense = bool(dense)
        block_args = dict(dropout=dropout, momentum=momentum, epsilon=epsilon)
        self.expand = ConvBlock(channels, widths[0], name="expand", **block_args)
        self.blocks = [
            ResidualBlock(channels, width, dilation, causal, name=f"block_{i}", **block_args)
            for i, (width, dilation) in enumerate(zip(widths[1:], self._dilations()[1:]))
        ]
        self.shrink = TemporalConv1D(num_joints_out * 3, 1, use_bias=True,
                                     kernel_initializer="glorot_uniform", name="shrink")

    def _dilations(self):
        if self.dense:
            return [1] * len(self.filter_widths)
        return [math.prod(self.filter_widths[:i]) for i in range(len(self.filter_widths))]

    def receptive_field(self) -> int:
        """Input frames that one output frame sees, e.g. 243 for widths (3, 3, 3, 3, 3)."""
        return 1 + sum((w - 1) * d for w, d in zip(self.filter_widths, self._dilations()))

    def total_pad(self):
        """(left, right): frames of context before and after each output frame.

        Pad a sequence by this much (e.g. edge padding) to get one output per input frame.
        Symmetric: ((rf - 1) // 2, (rf - 1) // 2) for odd widths; causal: (rf - 1, 0).
        """
        anchors = [w - 1 if self.causal else (w - 1) // 2 for w in self.filter_widths]
        left = sum(a * d for a, d in zip(anchors, self._dilations()))
        return left, self.receptive_field() - 1 - left

    @property
    def causal_shift(self) -> int:
        """VideoPose3D's convention: pad `pad + causal_shift` on the left, `pad - causal_shift`
        on the right, with `pad = (rf - 1) // 2`; 0 when symmetric, `pad` when causal."""
        left, right = self.total_pad()
        return (left - right) // 2

    def build(self, input_shape):
        joints, features = input_shape[-2:]
        if (joints, features) != (self.num_joints_in, self.in_features):
            raise ValueError(f"expected inputs (B, T, {self.num_joints_in}, "
                             f"{self.in_features}), got {tuple(input_shape)}")
        hidden = (None, None, self.channels)
        self.expand.build((None, None, joints * features))
        for block in self.blocks:
            block.build(hidden)
        self.shrink.build(hidden)

    def call(self, inputs, training=None):
        return self.forward(inputs, training=training, strided=False)

    def forward(self, inputs, training=None, strided=False):
        """Run the layers dilated (`strided=False`) or as the strided single-frame twin."""
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        x = ops.reshape(inputs, (batch, length, self.num_joints_in * self.in_features))
        x = self.expand(x, training=training, strided=strided)
        for block in self.blocks:
            x = block(x, training=training, strided=strided)
        x = self.shrink(x)
        return ops.reshape(x, (batch, ops.shape(x)[1], self.num_joints_out, 3))

    def compute_output_shape(self, input_shape):
        batch, length = input_shape[:2]
        if length is not None:
            length = length - self.receptive_field() + 1
        return (batch, length, self.num_joints_out, 3)

    def single_frame_twin(self):
        """A `SingleFrameModel` sharing this model's weight variables (see there)."""
        from vp3dkeras.models.single_frame_model import SingleFrameModel

        return SingleFrameModel(self)

    def get_config(self):
        return {
            **super().get_config(),
            "num_joints_in": self.num_joints_in,
            "in_features": self.in_features,
            "num_joints_out": self.num_joints_out,
            "filter_widths": list(self.filter_widths),
            "causal": self.causal,
            "dropout": self.dropout_rate,
            "channels": self.channels,
            "dense": self.dense,
            "momentum": self.expand.bn.momentum,
            "epsilon": self.expand.bn.epsilon,
        }
