"""Building blocks shared by the models: temporal convolution, batch norm, conv-BN-ReLU blocks.

Everything is channels-last, `keras.ops` only, so it runs on the TensorFlow and JAX backends.
Sequences are `(B, T, C)`; a mask, where accepted, is `(B, T)` with 1 for real frames.
"""
from __future__ import annotations

import keras
from keras import ops

register = keras.saving.register_keras_serializable(package="vp3dkeras")


@register
class TemporalConv1D(keras.layers.Layer):
    """1D convolution over time that runs either dilated or strided with one kernel.

    `(B, T, C_in) -> (B, T_out, filters)`, kernel `(width, C_in, filters)`:
    - dilated (default), padding "valid": `T_out = T - (width - 1) * dilation`;
    - dilated, padding "same" (odd width): `T_out = T`, zero padded;
    - `strided=True` in `call`: stride = width, no dilation, `T_out = T // width` (T must be a
      multiple of width). Same kernel, so a model can switch modes and keep its weights.

    Both modes are matrix multiplications: dilated, a sum over the taps k of
    `x[t + k * dilation] @ kernel[k]`; strided, one `(T_out, width*C_in) @ (width*C_in, F)`
    product after a reshape. On the TensorFlow CPU backend this trains about twice as fast as
    `ops.conv` with dilation (whose gradient is slow there) and infers as fast.
    """

    def __init__(self, filters, width, dilation=1, padding="valid", use_bias=False,
                 kernel_initializer="he_uniform", **kwargs):
        super().__init__(**kwargs)
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        if padding == "same" and (width - 1) * dilation % 2:
            raise ValueError("padding='same' needs an even (width - 1) * dilation")
        self.filters = int(filters)
        self.width = int(width)
        self.dilation = int(dilation)
        self.padding = padding
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        in_channels = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(self.width, in_channels, self.filters),
            initializer=self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def call(self, inputs, strided=False):
        kernel = ops.cast(self.kernel, inputs.dtype)
        if strided:
            if self.padding != "valid":
                raise ValueError("strided mode needs padding='valid'")
            batch, _, channels = ops.shape(inputs)
            windows = ops.reshape(inputs, (batch, -1, self.width * channels))
            outputs = ops.matmul(windows, ops.reshape(kernel, (-1, self.filters)))
        else:
            span = (self.width - 1) * self.dilation
            if self.padding == "same":
                inputs = ops.pad(inputs, ((0, 0), (span // 2, span // 2), (0, 0)))
            length = ops.shape(inputs)[1] - span
            outputs = ops.matmul(inputs if span == 0 else inputs[:, :length], kernel[0])
            for k in range(1, self.width):
                start = k * self.dilation
                outputs = outputs + ops.matmul(inputs[:, start:start + length], kernel[k])
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, outputs.dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        batch, length, _ = input_shape
        if length is not None and self.padding == "valid":
            length = length - (self.width - 1) * self.dilation
        return (batch, length, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "width": self.width,
            "dilation": self.dilation,
            "padding": self.padding,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@register
class BatchNorm(keras.layers.Layer):
    """Batch norm over the last axis with PyTorch semantics and a momentum a callback can change.

    `(..., C) -> (..., C)`. `momentum` is Keras-style (weight of the old running value):
    PyTorch's 0.1 is 0.9 here. It lives in a non-trainable variable, so changing
    `layer.momentum` takes effect inside already-compiled train steps (the paper decays
    PyTorch momentum from 0.1 to 0.001 during training). As in PyTorch, the running variance
    is updated with the unbiased batch variance. An optional mask `(...)` (the input shape
    without C) excludes padded entries from the batch statistics.
    """

    def __init__(self, momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self._initial_momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        channels = (input_shape[-1],)
        self.gamma = self.add_weight(name="gamma", shape=channels, initializer="ones")
        self.beta = self.add_weight(name="beta", shape=channels, initializer="zeros")
        self.moving_mean = self.add_weight(
            name="moving_mean", shape=channels, initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=channels, initializer="ones", trainable=False)
        self._momentum = self.add_weight(
            name="momentum", shape=(),
            initializer=keras.initializers.Constant(self._initial_momentum), trainable=False)

    @property
    def momentum(self) -> float:
        if not self.built:
            return self._initial_momentum
        return float(self._momentum.numpy())

    @momentum.setter
    def momentum(self, value):
        self._initial_momentum = float(value)
        if self.built:
            self._momentum.assign(float(value))

    def call(self, inputs, training=None, mask=None):
        x = ops.cast(inputs, self.variable_dtype)
        if training:
            axes = tuple(range(len(x.shape) - 1))
            if mask is None:
                mean, variance = ops.moments(x, axes=axes)
                count = ops.cast(ops.size(x) // ops.shape(x)[-1], x.dtype)
            else:
                weights = ops.expand_dims(ops.cast(mask, x.dtype), -1)
                count = ops.maximum(ops.sum(weights), 1.0)
                mean = ops.sum(x * weights, axis=axes) / count
                variance = ops.sum(ops.square(x - mean) * weights, axis=axes) / count
            unbiased = variance * count / ops.maximum(count - 1.0, 1.0)
            m = self._momentum
            self.moving_mean.assign(self.moving_mean * m + ops.stop_gradient(mean) * (1.0 - m))
            self.moving_variance.assign(
                self.moving_variance * m + ops.stop_gradient(unbiased) * (1.0 - m))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = self.gamma * ops.rsqrt(variance + self.epsilon)
        outputs = x * scale + (self.beta - mean * scale)
        return ops.cast(outputs, inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


@register
class ConvBlock(keras.layers.Layer):
    """Convolution (no bias) -> batch norm -> ReLU -> dropout: the unit every model stacks.

    `(B, T, C_in) -> (B, T_out, channels)`, `T_out` as for `TemporalConv1D`. With a mask
    `(B, T)` (padding "same" only), masked frames are left out of the batch statistics and
    zeroed on output, so real frames see exactly the zero padding of a shorter sequence.
    """

    def __init__(self, channels, width, dilation=1, padding="valid", dropout=0.25,
                 momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.width = int(width)
        self.dilation = int(dilation)
        self.padding = padding
        self.dropout_rate = float(dropout)
        self.conv = TemporalConv1D(channels, width, dilation, padding, name="conv")
        self.bn = BatchNorm(momentum=momentum, epsilon=epsilon, name="bn")
        self.dropout = keras.layers.Dropout(dropout, name="dropout")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bn.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None, strided=False, mask=None):
        x = self.conv(inputs, strided=strided)
        x = ops.relu(self.bn(x, training=training, mask=mask))
        x = self.dropout(x, training=training)
        if mask is not None:
            x = x * ops.expand_dims(ops.cast(mask, x.dtype), -1)
        return x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "channels": self.channels,
            "width": self.width,
            "dilation": self.dilation,
            "padding": self.padding,
            "dropout": self.dropout_rate,
            "momentum": self.bn.momentum,
            "epsilon": self.bn.epsilon,
        }


def batch_norm_layers(model):
    """All `BatchNorm` layers of a model, e.g. for a callback that decays their momentum."""
    return [layer for layer in model._flatten_layers() if isinstance(layer, BatchNorm)]
