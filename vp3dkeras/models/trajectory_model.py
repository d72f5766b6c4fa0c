"""The trajectory model of the paper's semi-supervised setup: the root's camera-space position."""
from __future__ import annotations

from vp3dkeras.models.layers import register
from vp3dkeras.models.temporal_model import TemporalModel


@register
class TrajectoryModel(TemporalModel):
    """The temporal architecture with one output joint: the root position in camera space.

    inputs:  (B, T, J_in, in_features) 2D keypoints.
    outputs: (B, T - receptive_field() + 1, 1, 3) root position, camera space (the unit of the
             training targets, e.g. metres).
    """

    def __init__(self, num_joints_in, in_features, filter_widths, causal=False, dropout=0.25,
                 channels=1024, dense=False, **kwargs):
        kwargs.pop("num_joints_out", None)
        super().__init__(num_joints_in, in_features, 1, filter_widths, causal=causal,
                         dropout=dropout, channels=channels, dense=dense, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["num_joints_out"]
        return config
