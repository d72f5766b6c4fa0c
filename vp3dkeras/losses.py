"""Training losses in `keras.ops`, the differentiable twins of `vp3dkeras.metrics`.

Argument order follows Keras, ``(y_true, y_pred)``, so the functions can be handed to
`model.compile(loss=...)` through the `Loss` classes below. Poses are ``(..., J, 3)``; a time
axis, when present, is axis -3. Losses come out in the units of the poses.

Masking padded frames: the functions take an optional ``mask`` shaped like the frame axes
``(...,)`` (1 for a real frame, 0 for padding) and average over real frames only. The `Loss`
classes return one value per frame and reduce with ``"mean_with_sample_weight"``, so a
``sample_weight`` of shape (B, T) passed to `fit` masks frames the same way.
"""
from __future__ import annotations

import keras
from keras import ops


def _safe_norm(x, axis=-1):
    """Euclidean norm whose gradient is 0, not NaN, at the origin.

    Non-finite inputs stay non-finite: only an exact zero is special-cased (``NaN > 0`` is
    false, so testing ``squared > 0`` would turn a NaN error into 0 and hide it from
    `keras.callbacks.TerminateOnNaN`).
    """
    squared = ops.sum(ops.square(x), axis=axis)
    zero = ops.equal(squared, 0.0)
    return ops.where(zero, 0.0, ops.sqrt(ops.where(zero, 1.0, squared)))


def _masked_mean(values, mask=None):
    """Mean of `values` (..., ) over entries where `mask` (broadcastable) is non-zero."""
    if mask is None:
        return ops.mean(values)
    mask = ops.broadcast_to(ops.cast(mask, values.dtype), ops.shape(values))
    return ops.divide_no_nan(ops.sum(values * mask), ops.sum(mask))


def joint_errors(y_true, y_pred):
    """(..., J, 3) pair -> (..., J) Euclidean joint errors."""
    return _safe_norm(y_pred - y_true)


def frame_mpjpe(y_true, y_pred):
    """(..., J, 3) pair -> (...,) mean joint error of each pose."""
    return ops.mean(joint_errors(y_true, y_pred), axis=-1)


def scale_to_target(y_true, y_pred):
    """`y_pred` (..., J, 3) times its least-squares optimal scale per pose."""
    num = ops.sum(y_pred * y_true, axis=(-2, -1), keepdims=True)
    den = ops.sum(y_pred * y_pred, axis=(-2, -1), keepdims=True)
    return ops.divide_no_nan(num, den) * y_pred


def frame_velocity_error(y_true, y_pred):
    """(..., T, J, 3) pair -> (..., T - 1) mean joint error of the first differences in time."""
    velocity_true = y_true[..., 1:, :, :] - y_true[..., :-1, :, :]
    velocity_pred = y_pred[..., 1:, :, :] - y_pred[..., :-1, :, :]
    return frame_mpjpe(velocity_true, velocity_pred)


def mpjpe_loss(y_true, y_pred, mask=None):
    """Mean per-joint position error, a scalar.

    y_true, y_pred: (..., J, 3). mask: optional, broadcastable to (...,), 0 for padded frames.
    """
    return _masked_mean(frame_mpjpe(y_true, y_pred), mask)


def weighted_mpjpe_loss(y_true, y_pred, weights, mask=None):
    """mean(weights * joint error), a scalar; weights are not renormalised.

    y_true, y_pred: (..., J, 3). weights: broadcastable to (..., J), e.g. 1 / z of the target
    for the paper's trajectory loss. mask: optional, broadcastable to (...,).
    """
    errors = joint_errors(y_true, y_pred)
    weights = ops.cast(weights, errors.dtype)
    return _masked_mean(ops.mean(weights * errors, axis=-1), mask)


def n_mpjpe_loss(y_true, y_pred, mask=None):
    """MPJPE after rescaling each predicted pose by its least-squares optimal scale.

    y_true, y_pred: (..., J, 3). mask: optional, broadcastable to (...,).
    """
    return _masked_mean(frame_mpjpe(y_true, scale_to_target(y_true, y_pred)), mask)


def mean_velocity_loss(y_true, y_pred, mask=None):
    """Mean per-joint velocity error along the time axis -3, a scalar.

    y_true, y_pred: (..., T, J, 3) with T >= 2. mask: optional, broadcastable to (..., T);
    a velocity counts only when both of its frames are real.
    """
    errors = frame_velocity_error(y_true, y_pred)
    if mask is not None:
        mask = ops.cast(mask, errors.dtype)
        mask = mask[..., 1:] * mask[..., :-1]
    return _masked_mean(errors, mask)


def bone_lengths(poses, bones):
    """(..., J, 3) poses -> (..., len(bones)) bone lengths.

    bones: (parent, child) joint index pairs, e.g. `JointLayout.bones()`.
    """
    parents = [p for p, _ in bones]
    children = [c for _, c in bones]
    return _safe_norm(ops.take(poses, children, axis=-2) - ops.take(poses, parents, axis=-2))


def bone_length_loss(poses_a, poses_b, bones):
    """Squared difference of the mean bone lengths of two batches of poses, averaged over bones.

    The semi-supervised soft constraint of the paper: the mean bone lengths predicted for the
    unlabeled batch are pulled towards those predicted for the labeled batch.
    poses_a, poses_b: (..., J, 3), any leading shapes (each is averaged over all its poses).
    Returns a scalar in squared pose units.
    """
    mean_a = ops.mean(ops.reshape(bone_lengths(poses_a, bones), (-1, len(bones))), axis=0)
    mean_b = ops.mean(ops.reshape(bone_lengths(poses_b, bones), (-1, len(bones))), axis=0)
    return ops.mean(ops.square(mean_a - mean_b))


class _PerFrameLoss(keras.losses.Loss):
    """Base for losses that return one value per frame and average them with sample weights."""

    def __init__(self, name=None, reduction="mean_with_sample_weight", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)


@keras.saving.register_keras_serializable(package="vp3dkeras")
class MPJPELoss(_PerFrameLoss):
    """MPJPE; `call` returns (...,) per-frame errors for poses (..., J, 3).

    Pass a (B, T) `sample_weight` of 0/1 to leave padded frames out of the mean.
    """

    def call(self, y_true, y_pred):
        return frame_mpjpe(y_true, y_pred)


@keras.saving.register_keras_serializable(package="vp3dkeras")
class NMPJPELoss(_PerFrameLoss):
    """N-MPJPE (scale-normalised); `call` returns (...,) per-frame errors."""

    def call(self, y_true, y_pred):
        return frame_mpjpe(y_true, scale_to_target(y_true, y_pred))


@keras.saving.register_keras_serializable(package="vp3dkeras")
class InverseDepthMPJPELoss(_PerFrameLoss):
    """Trajectory loss of the paper: joint error weighted by 1 / z of the ground truth.

    y_true, y_pred: (..., J, 3) camera-space positions (z forward, > 0), usually the root
    trajectory with J = 1. `call` returns (...,) per-frame weighted errors (unitless).
    """

    def call(self, y_true, y_pred):
        return ops.mean(joint_errors(y_true, y_pred) / y_true[..., 2], axis=-1)


@keras.saving.register_keras_serializable(package="vp3dkeras")
class MeanVelocityLoss(_PerFrameLoss):
    """Velocity error; `call` returns (..., T - 1) values, so sample weights are (B, T - 1)."""

    def call(self, y_true, y_pred):
        return frame_velocity_error(y_true, y_pred)


@keras.saving.register_keras_serializable(package="vp3dkeras")
class PoseAndVelocityLoss(_PerFrameLoss):
    """MPJPE plus `velocity_weight` times the velocity error, both averaged over the batch.

    For (B, T, J, 3) targets with T >= 2; `call` returns (B,) per-sequence values.
    """

    def __init__(self, velocity_weight=1.0, name=None, reduction="mean_with_sample_weight",
                 dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.velocity_weight = float(velocity_weight)

    def call(self, y_true, y_pred):
        position = ops.mean(frame_mpjpe(y_true, y_pred), axis=-1)
        velocity = ops.mean(frame_velocity_error(y_true, y_pred), axis=-1)
        return position + self.velocity_weight * velocity

    def get_config(self):
        return {**super().get_config(), "velocity_weight": self.velocity_weight}
