"""Semi-supervised training by back-projection (Pavllo et al., CVPR 2019, section 4).

A pose model lifts 2D keypoints to a root-relative 3D pose; a trajectory model (same
architecture, its own weights) predicts the root's position in camera space. On labeled data
both are supervised in 3D. On unlabeled data, which has only 2D keypoints and the camera's
intrinsics, the pose is placed at the predicted root position, projected back to the image
with the camera's lens model and compared with the input keypoints. A soft constraint keeps
the mean bone lengths predicted on unlabeled data close to those predicted on labeled data,
so the pose model cannot shrink or stretch the skeleton to fit the projection.

`SemiSupervisedModel` wraps the two models and supplies the losses through `compute_loss`,
so Keras' own `train_step` and `test_step` (every backend, `jit_compile` on or off) train it
with `fit`.
"""
from __future__ import annotations

import keras
from keras import ops

from vp3dkeras import losses
from vp3dkeras.camera import check_lens_model, project_to_2d
from posecontract.layouts import get_layout
from vp3dkeras.models.layers import register
from vp3dkeras.models.temporal_model import TemporalModel

LOSS_TERMS = ("pose_loss", "trajectory_loss", "projection_loss", "bone_length_loss")


def _deserialize(model):
    if isinstance(model, dict):  # from_config hands over the serialized model
        return keras.saving.deserialize_keras_object(model)
    return model


@register
class SemiSupervisedModel(keras.Model):
    """Joint training of a pose model and a trajectory model on labeled and unlabeled windows.

    inputs, a dict:
      "keypoints":  (B, T, J, in_features) 2D keypoints in normalised screen coordinates
                    (`vp3dkeras.camera.normalize_screen_coordinates`). With `strided=True`
                    (training on windows of one receptive field through the single-frame twins)
                    T = n * receptive_field(); otherwise T >= receptive_field().
      "intrinsics": (B, 9) intrinsics in the same normalised units
                    (`vp3dkeras.camera.normalize_intrinsics`); read only for unlabeled rows.
    targets, a dict (read only for labeled rows; give zeros for unlabeled ones):
      "pose":       (B, n, J, 3) root-relative 3D pose, metres (camera axes).
      "trajectory": (B, n, 1, 3) root position in camera space, metres (z > 0).
    outputs, a dict: "pose" (B, n, J, 3) and "trajectory" (B, n, 1, 3).

    Batch layout: rows [0, B/2) are labeled and rows [B/2, B) unlabeled (B even). With
    `labeled_only=True` every row is labeled (the supervised baseline with the same code).

    Loss = pose_weight * MPJPE(pose) + trajectory_weight * WMPJPE(trajectory, weight 1/z)
           + unlabeled_weight * (projection_weight * 2D MPJPE of the projection
                                 + bone_length_weight * bone-length term).
    The 2D error is in normalised screen units; the bone-length term is the squared difference
    of the batch-mean bone lengths (metres^2). `unlabeled_weight` lives in a variable so
    `SemiSupervisedWarmup` can hold it at 0 for the first epochs. Each term is logged
    unweighted under the names in `LOSS_TERMS`.

    Args:
        pose_model: a `TemporalModel` with J inputs and J outputs (the layout's joints).
        trajectory_model: a `TemporalModel` with one output joint (a `TrajectoryModel`) and the
            same receptive field and padding as the pose model.
        layout: joint layout name, for the bones and the root joint (its joint 0).
        min_depth, max_slope: before the projection, depths are clamped to at least
            `min_depth` metres and X/Z, Y/Z to [-max_slope, max_slope] (1: a 90 degree field
            of view), so an untrained trajectory model cannot blow the lens model up.
        bone_target_gradient: whether the bone-length term also moves the labeled half's
            predictions (True) or treats their mean bone lengths as a fixed target (False).
        lens_model: the lens model the data's intrinsics follow (`vp3dkeras.camera.
            LENS_MODELS`; a source's `lens_model`), used by the back-projection.
    """

    def __init__(self, pose_model, trajectory_model, layout="h36m17", pose_weight=1.0,
                 trajectory_weight=1.0, projection_weight=1.0, bone_length_weight=1.0,
                 unlabeled_weight=1.0, labeled_only=False, strided=True, min_depth=0.1,
                 max_slope=1.0, bone_target_gradient=True, lens_model="opencv", **kwargs):
        pose_model = _deserialize(pose_model)
        trajectory_model = _deserialize(trajectory_model)
        for name, model in (("pose_model", pose_model), ("trajectory_model", trajectory_model)):
            if not isinstance(model, TemporalModel):
                raise TypeError(f"{name} must be a TemporalModel, got {type(model).__name__}")
            if strided and model.dense:
                raise ValueError(f"{name} is dense: it has no strided single-frame twin")
        joint_layout = get_layout(layout)
        if not (pose_model.num_joints_in == pose_model.num_joints_out
                == joint_layout.num_joints):
            raise ValueError(f"the pose model must map the {joint_layout.num_joints} joints of "
                             f"{layout!r} to themselves, got {pose_model.num_joints_in} -> "
                             f"{pose_model.num_joints_out}")
        if trajectory_model.num_joints_out != 1:
            raise ValueError("the trajectory model must predict one joint (the root)")
        if trajectory_model.total_pad() != pose_model.total_pad():
            raise ValueError(f"the models see different windows: pose {pose_model.total_pad()}, "
                             f"trajectory {trajectory_model.total_pad()}")
        super().__init__(**kwargs)
        self.pose_model = pose_model
        self.trajectory_model = trajectory_model
        self.layout = joint_layout.name
        self.bones = joint_layout.bones()
        self.pose_weight = float(pose_weight)
        self.trajectory_weight = float(trajectory_weight)
        self.projection_weight = float(projection_weight)
        self.bone_length_weight = float(bone_length_weight)
        self.labeled_only = bool(labeled_only)
        self.strided = bool(strided)
        self.min_depth = float(min_depth)
        self.max_slope = float(max_slope)
        self.bone_target_gradient = bool(bone_target_gradient)
        self.lens_model = check_lens_model(lens_model)
        self._unlabeled_weight = self.add_weight(
            name="unlabeled_weight", shape=(), trainable=False,
            initializer=keras.initializers.Constant(float(unlabeled_weight)))
        terms = LOSS_TERMS[:2] if self.labeled_only else LOSS_TERMS
        self.loss_trackers = [keras.metrics.Mean(name=term) for term in terms]

    @property
    def unlabeled_weight(self) -> float:
        return float(ops.convert_to_numpy(self._unlabeled_weight))

    @unlabeled_weight.setter
    def unlabeled_weight(self, value):
        self._unlabeled_weight.assign(float(value))

    def receptive_field(self) -> int:
        return self.pose_model.receptive_field()

    def build(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["keypoints"]
        for model in (self.pose_model, self.trajectory_model):
            if not model.built:
                model.build(input_shape)

    def call(self, inputs, training=None):
        keypoints = inputs["keypoints"] if isinstance(inputs, dict) else inputs
        length = keypoints.shape[1]
        if self.strided and length is not None and length % self.receptive_field():
            raise ValueError(f"strided mode needs windows of a multiple of the receptive field "
                             f"{self.receptive_field()}, got {length} frames")
        return {
            "pose": self.pose_model.forward(keypoints, training=training,
                                            strided=self.strided),
            "trajectory": self.trajectory_model.forward(keypoints, training=training,
                                                        strided=self.strided),
        }

    def output_frame_keypoints(self, keypoints, num_outputs):
        """The input keypoints (B, n, J, C) at the frames the n outputs belong to."""
        left = self.pose_model.total_pad()[0]
        if self.strided:
            return keypoints[:, left::self.receptive_field()]
        return keypoints[:, left:left + num_outputs]

    def project(self, pose, trajectory, intrinsics):
        """Root-relative pose (..., J, 3) placed at the root position (..., 1, 3) and projected
        with `intrinsics` (..., 9) to (..., J, 2) normalised screen coordinates.

        The pose's own root prediction is discarded (its target is 0). Depths are clamped to
        `min_depth` and the image-plane coordinates X/Z, Y/Z to [-max_slope, max_slope]: the
        lens polynomial explodes far outside the image, where an untrained trajectory model's
        guesses land.
        """
        absolute = pose - pose[..., :1, :] + trajectory
        depth = ops.maximum(absolute[..., 2:], self.min_depth)
        plane = ops.clip(absolute[..., :2] / depth, -self.max_slope, self.max_slope)
        return project_to_2d(ops.concatenate([plane, ops.ones_like(depth)], axis=-1),
                             intrinsics, self.lens_model)

    def loss_terms(self, x, y, y_pred):
        """Unweighted loss terms, a dict keyed by the names in `LOSS_TERMS` (scalars)."""
        pose, trajectory = y_pred["pose"], y_pred["trajectory"]
        pose_target = ops.cast(y["pose"], pose.dtype)
        trajectory_target = ops.cast(y["trajectory"], trajectory.dtype)
        if self.labeled_only:
            labeled = slice(None)
        else:
            half = ops.shape(pose)[0] // 2
            labeled, unlabeled = slice(None, half), slice(half, None)
        terms = {
            "pose_loss": losses.mpjpe_loss(pose_target[labeled], pose[labeled]),
            "trajectory_loss": losses.weighted_mpjpe_loss(
                trajectory_target[labeled], trajectory[labeled],
                1.0 / trajectory_target[labeled][..., 2]),
        }
        if self.labeled_only:
            return terms
        keypoints = ops.cast(x["keypoints"][unlabeled], pose.dtype)
        target_2d = self.output_frame_keypoints(keypoints, ops.shape(pose)[1])
        projected = self.project(pose[unlabeled], trajectory[unlabeled],
                                 x["intrinsics"][unlabeled])
        terms["projection_loss"] = losses.mpjpe_loss(target_2d[..., :2], projected)
        labeled_pose = pose[labeled]
        if not self.bone_target_gradient:
            labeled_pose = ops.stop_gradient(labeled_pose)
        terms["bone_length_loss"] = losses.bone_length_loss(
            labeled_pose, pose[unlabeled], self.bones)
        return terms

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        del sample_weight  # every window of a batch counts the same
        terms = self.loss_terms(x, y, y_pred)
        total = (self.pose_weight * terms["pose_loss"]
                 + self.trajectory_weight * terms["trajectory_loss"])
        if not self.labeled_only:
            unlabeled = (self.projection_weight * terms["projection_loss"]
                         + self.bone_length_weight * terms["bone_length_loss"])
            total = total + ops.cast(self._unlabeled_weight, total.dtype) * unlabeled
        for tracker in self.loss_trackers:
            tracker.update_state(terms[tracker.name])
        return total

    def get_config(self):
        return {
            **super().get_config(),
            "pose_model": keras.saving.serialize_keras_object(self.pose_model),
            "trajectory_model": keras.saving.serialize_keras_object(self.trajectory_model),
            "layout": self.layout,
            "pose_weight": self.pose_weight,
            "trajectory_weight": self.trajectory_weight,
            "projection_weight": self.projection_weight,
            "bone_length_weight": self.bone_length_weight,
            "unlabeled_weight": self.unlabeled_weight,
            "labeled_only": self.labeled_only,
            "strided": self.strided,
            "min_depth": self.min_depth,
            "lens_model": self.lens_model,
            "max_slope": self.max_slope,
            "bone_target_gradient": self.bone_target_gradient,
        }


class SemiSupervisedWarmup(keras.callbacks.Callback):
    """Holds a `SemiSupervisedModel`'s unlabeled loss weight at 0 for the first epochs.

    The paper trains on labeled data alone until the trajectory model predicts sensible
    depths; after `warmup_epochs` epochs the unlabeled terms enter with `weight`.
    """

    def __init__(self, warmup_epochs, weight=1.0):
        super().__init__()
        self.warmup_epochs = int(warmup_epochs)
        self.weight = float(weight)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.unlabeled_weight = 0.0 if epoch < self.warmup_epochs else self.weight

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["unlabeled_weight"] = self.model.unlabeled_weight
