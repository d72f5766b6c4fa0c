"""Export a trained lifting model as a TensorFlow SavedModel that serves sequences of any length.

The exported function takes 2D keypoints ``(batch, T, J, C)`` float32 with any T >= 1, pads
them in time by replicating the first and last frames (as much as the model's receptive field
and causality need, see `vp3dkeras.padding.model_padding`), runs the model in inference mode
and returns one 3D pose per input frame, ``(batch, T, J_out, 3)``. The SavedModel needs only
TensorFlow to load:

    loaded = tf.saved_model.load(path)
    poses = loaded.signatures["serving_default"](keypoints_2d=x)["poses_3d"]
    poses = loaded.predict(x)                      # same, as a plain tensor
    int(loaded.receptive_field), int(loaded.num_joints_in)   # metadata (scalar variables)

Command line (a run directory's model.keras, or any .keras lifting model):

    python -m vp3dkeras.export RUN_DIR_OR_MODEL --out DIR

writes the SavedModel to DIR, reloads it with `tf.saved_model.load` and checks that it gives
the Keras model's poses on a random sequence.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Optional, Sequence

import numpy as np

if __name__ == "__main__":  # TensorFlow without its start-up noise (vp3dkeras.quiet_tf)
    from vp3dkeras import quiet_tf  # noqa: F401
import tensorflow as tf  # noqa: E402

from vp3dkeras.cli_errors import run_main  # noqa: E402
from vp3dkeras.padding import model_padding, pad_replicate

__all__ = ["export_saved_model", "pad_replicate", "SequenceLifter"]

INPUT_NAME = "keypoints_2d"
OUTPUT_NAME = "poses_3d"


def _constant(value, name):
    """A scalar int32 variable: kept in the SavedModel and readable from the loaded object."""
    return tf.Variable(int(value), dtype=tf.int32, trainable=False, name=name)


class SequenceLifter(tf.Module):
    """`tf.Module` wrapping a Keras lifting model with edge padding, ready for SavedModel.

    model: Keras model mapping (B, T + left + right, J, C) -> (B, T, J_out, 3).
    num_joints, in_features: input joint count J and features per joint C (2 for x, y).
    """

    def __init__(self, model, num_joints: int, in_features: int, name=None):
        super().__init__(name=name)
        self.model = model
        self._pad_left, self._pad_right = model_padding(model)
        self._shape_text = f"(batch, T >= 1, {num_joints}, {in_features})"
        self.receptive_field = _constant(self._pad_left + self._pad_right + 1,
                                         "receptive_field")
        self.pad_left = _constant(self._pad_left, "pad_left")
        self.pad_right = _constant(self._pad_right, "pad_right")
        self.num_joints_in = _constant(num_joints, "num_joints_in")
        self.in_features = _constant(in_features, "in_features")
        self.num_joints_out = _constant(model.num_joints_out, "num_joints_out")
        self._num_joints, self._in_features = int(num_joints), int(in_features)
        # Any shape is accepted and checked inside the graph: TF Serving feeds the graph
        # directly, so a (None, None, J, C) spec would never be checked there, and a wrong
        # rank, J or C would surface as an error of some internal op.
        spec = tf.TensorSpec(None, tf.float32, name=INPUT_NAME)
        self.predict = tf.function(self._predict, input_signature=[spec])
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _pad(self, keypoints):
        first = tf.repeat(keypoints[:, :1], self._pad_left, axis=1)
        last = tf.repeat(keypoints[:, -1:], self._pad_right, axis=1)
        return tf.concat([first, keypoints, last], axis=1)

    def _checked(self, keypoints):
        """`keypoints` with its static shape set, after in-graph checks of rank, J, C, T >= 1
        and finiteness; each failing check raises InvalidArgumentError with one message
        ``keypoints_2d must be (batch, T >= 1, J, C) = (None, None, J, C); got shape (...)``
        or ``keypoints_2d holds N NaN or infinite values``."""
        shape = tf.shape(keypoints)
        got = tf.strings.join(["(", tf.strings.reduce_join(tf.strings.as_string(shape),
                                                           separator=", "), ")"])
        expected = (f"keypoints_2d must be {self._shape_text} = (None, None, "
                    f"{self._num_joints}, {self._in_features}); got shape")
        rank_ok = tf.equal(tf.rank(keypoints), 4)
        check_rank = tf.debugging.Assert(rank_ok, [expected, got])
        with tf.control_dependencies([check_rank]):
            padded_shape = tf.concat([shape, tf.ones([4], tf.int32)], 0)[:4]
            dims_ok = tf.reduce_all(tf.equal(
                padded_shape[2:], tf.constant([self._num_joints, self._in_features])))
            check_dims = tf.debugging.Assert(dims_ok, [expected, got])
            check_frames = tf.debugging.Assert(
                padded_shape[1] > 0, [f"keypoints_2d needs at least one frame: expected "
                                      f"{self._shape_text}; got shape", got])
        with tf.control_dependencies([check_dims, check_frames]):
            keypoints = tf.ensure_shape(keypoints, [None, None, self._num_joints,
                                                    self._in_features])
            bad = tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(keypoints)),
                                        tf.int32))
            check_finite = tf.debugging.Assert(tf.equal(bad, 0), [
                "keypoints_2d holds NaN or infinite values:", bad])
        with tf.control_dependencies([check_finite]):
            return tf.identity(keypoints)

    def _predict(self, keypoints):
        """keypoints: (batch, T, J, C) float32 -> (batch, T, J_out, 3) float32."""
        padded = self._pad(self._checked(keypoints))
        return tf.cast(self.model(padded, training=False), tf.float32)

    def _serve(self, keypoints):
        return {OUTPUT_NAME: self._predict(keypoints)}


def _input_size(model, num_joints: Optional[int], in_features: Optional[int]):
    num_joints = num_joints if num_joints is not None else getattr(model, "num_joints_in", None)
    in_features = in_features if in_features is not None else getattr(model, "in_features", 2)
    if num_joints is None:
        raise ValueError("the model has no num_joints_in attribute: pass num_joints")
    return int(num_joints), int(in_features)


def export_saved_model(model, path, num_joints: Optional[int] = None,
                       in_features: Optional[int] = None) -> SequenceLifter:
    """Writes `model` as a SavedModel at `path` serving sequences of any length.

    model: Keras model (B, T_in, J, C) -> (B, T_in - receptive_field() + 1, J_out, 3) with
        `num_joints_out`, and `total_pad()` or `receptive_field()` (see `model_padding`).
    num_joints, in_features: J and C of the input; default to the model's `num_joints_in` and
        `in_features` (C defaults to 2).

    The `serving_default` signature takes `keypoints_2d` (batch, T, J, C) float32 and returns
    {"poses_3d": (batch, T, J_out, 3) float32}. The signature declares any shape and checks
    it inside the graph, so TF Serving too answers a tensor of another rank, J or C, no
    frames, or a NaN/infinite value with one message naming the expected and the given
    shape (InvalidArgumentError), not with an error of some internal op.
    Returns the `SequenceLifter` that was saved.
    """
    num_joints, in_features = _input_size(model, num_joints, in_features)
    if not model.built:
        model.build((None, None, num_joints, in_features))
    lifter = SequenceLifter(model, num_joints, in_features)
    tf.saved_model.save(lifter, str(path),
                        signatures={"serving_default": lifter.serve.get_concrete_function()})
    return lifter


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.export",
                                     description="Export a trained model as a SavedModel.")
    parser.add_argument("model", type=pathlib.Path, help="run directory or .keras file")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="SavedModel folder")
    args = parser.parse_args(argv)
    import keras

    from vp3dkeras import models  # noqa: F401  (registers the classes for loading)

    path = args.model / "model.keras" if args.model.is_dir() else args.model
    model = keras.saving.load_model(path)
    lifter = export_saved_model(model, args.out)
    loaded = tf.saved_model.load(str(args.out))
    frames = 2 * int(lifter.receptive_field) + 5
    x = np.random.default_rng(0).uniform(-1, 1, (1, frames, int(lifter.num_joints_in.numpy()),
                                                 int(lifter.in_features.numpy())))
    x = x.astype(np.float32)
    difference = np.abs(loaded.predict(x).numpy() - lifter.predict(x).numpy()).max()
    print(f"exported {path} to {args.out} (receptive field {int(loaded.receptive_field)}); "
          f"reloaded output differs by {difference:.2e}")
    return 0 if difference < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
