"""The strided single-frame twin of a `TemporalModel`, for fast training (paper, section 3).

Training on windows of exactly `receptive_field()` frames needs one output frame, but the
dilated model computes every intermediate frame of every layer. Replacing each dilation `d`
by a stride equal to the filter width computes only the frames that output needs. The twin
calls the very same layers (same weight variables, same batch-norm statistics), so training
the twin trains the `TemporalModel`, which is then used for inference on whole sequences.
"""
from __future__ import annotations

import keras

from vp3dkeras.models.layers import register
from vp3dkeras.models.temporal_model import TemporalModel


@register
class SingleFrameModel(keras.Model):
    """Strided view of a `TemporalModel`.

    inputs:  (B, n * receptive_field(), J_in, in_features), normally n = 1.
    outputs: (B, n, J_out, 3): the prediction for each consecutive window of
             `receptive_field()` frames, equal to the temporal model's at that window.
    """

    def __init__(self, temporal_model, **kwargs):
        if isinstance(temporal_model, dict):  # from_config hands over the serialized model
            temporal_model = keras.saving.deserialize_keras_object(temporal_model)
        if not isinstance(temporal_model, TemporalModel):
            raise TypeError(f"expected a TemporalModel, got {type(temporal_model).__name__}")
        if temporal_model.dense:
            raise NotImplementedError(
                "dense (non-dilated) models have no strided single-frame equivalent")
        super().__init__(**kwargs)
        self.temporal_model = temporal_model

    def receptive_field(self) -> int:
        return self.temporal_model.receptive_field()

    def build(self, input_shape):
        if not self.temporal_model.built:
            self.temporal_model.build(input_shape)

    def call(self, inputs, training=None):
        length = inputs.shape[1]
        if length is not None and length % self.receptive_field():
            raise ValueError(f"input length {length} is not a multiple of the receptive "
                             f"field {self.receptive_field()}")
        return self.temporal_model.forward(inputs, training=training, strided=True)

    def compute_output_shape(self, input_shape):
        batch, length = input_shape[:2]
        if length is not None:
            length = length // self.receptive_field()
        return (batch, length, self.temporal_model.num_joints_out, 3)

    def get_config(self):
        return {
            **super().get_config(),
            "temporal_model": keras.saving.serialize_keras_object(self.temporal_model),
        }
