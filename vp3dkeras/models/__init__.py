"""Keras models: the VideoPose3D temporal model, its single-frame twin, the trajectory model,
the semi-supervised back-projection wrapper and the sequence-to-sequence refiner baseline.
Importing this package imports Keras."""
from vp3dkeras.models.layers import (BatchNorm, ConvBlock, TemporalConv1D,
                                     batch_norm_layers)
from vp3dkeras.models.refiner_baseline import RefinerBaseline, SequenceConvStack
from vp3dkeras.models.semi_supervised_model import SemiSupervisedModel, SemiSupervisedWarmup
from vp3dkeras.models.single_frame_model import SingleFrameModel
from vp3dkeras.models.streaming_model import StreamingTemporalModel
from vp3dkeras.models.temporal_model import ResidualBlock, TemporalModel
from vp3dkeras.models.trajectory_model import TrajectoryModel

__all__ = [
    "BatchNorm", "ConvBlock", "RefinerBaseline", "ResidualBlock", "SemiSupervisedModel",
    "SemiSupervisedWarmup", "SequenceConvStack", "SingleFrameModel", "StreamingTemporalModel", "TemporalConv1D", "TemporalModel", "TrajectoryModel",
    "batch_norm_layers",
]
