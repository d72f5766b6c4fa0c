"""Export a causal lifting model as a SavedModel that serves streams frame by frame.

The SavedModel holds the streaming form of the model (`StreamingTemporalModel`, batch norm
folded) behind one signature with an explicit state tensor in and out, so a server keeps one
state row per camera and any number of streams share one call. It needs only TensorFlow:

    loaded = tf.saved_model.load(path)
    step = loaded.signatures["serving_default"]
    state = tf.zeros([B, int(loaded.state_size)])            # any values where fresh
    fresh = tf.ones([B], tf.bool)                            # first frame of every stream
    out = step(keypoints_2d=frame, state=state, fresh=fresh)  # frame: (B, J, C) float32
    poses, state = out["poses_3d"], out["state"]             # (B, J_out, 3), (B, state_size)
    # next frame: same call with fresh=False, except for streams started or reset now

Signature `serving_default` (also `loaded.step(keypoints_2d, state, fresh)`):
    keypoints_2d: (B, J_in, in_features) float32, normalised (`PoseCodec.normalize_2d`);
    state: (B, state_size) float32; fresh: (B,) bool.
    Returns {"poses_3d": (B, J_out, 3) float32, "state": (B, state_size) float32}.
Wrong inputs are refused, never crash the server: arrays whose shape does not fit the specs
are refused when bound to the signature ("Can not cast TensorSpec(shape=...) to
TensorSpec(...)"); TensorFlow tensors of a wrong dtype are refused by name; a wrong rank, J,
C, state size or unequal B across the three inputs reaching the function raises
InvalidArgumentError "wrong input shapes: expected ...; got [shapes]".
Metadata: `receptive_field`, `state_size`, `num_joints_in`, `in_features`, `num_joints_out`
(scalar int32 variables).

Command line (a run directory's model.keras, or any causal .keras `TemporalModel`):

    python -m vp3dkeras.export_stream RUN_DIR_OR_MODEL --out DIR

writes the SavedModel, reloads it and checks it against the offline model on a random track.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from vp3dkeras.models.streaming_model import StreamingTemporalModel

INPUT_NAME = "keypoints_2d"
STATE_NAME = "state"
FRESH_NAME = "fresh"
OUTPUT_NAME = "poses_3d"


def _constant(value, name):
    return tf.Variable(int(value), dtype=tf.int32, trainable=False, name=name)


class StreamLifter(tf.Module):
    """`tf.Module` around a `StreamingTemporalModel` with a validated streaming signature."""

    def __init__(self, stream_model: StreamingTemporalModel, jit_compile: bool = True,
                 name=None):
        super().__init__(name=name)
        self.model = stream_model
        j, c, s = stream_model.num_joints_in, stream_model.in_features, stream_model.state_size
        self.receptive_field = _constant(stream_model.receptive_field(), "receptive_field")
        self.state_size = _constant(s, "state_size")
        self.num_joints_in = _constant(j, "num_joints_in")
        self.in_features = _constant(c, "in_features")
        self.num_joints_out = _constant(stream_model.num_joints_out, "num_joints_out")
        self._expected = f"keypoints_2d (B, {j}, {c}), state (B, {s}), fresh (B,)"
        self._dims = [(None, j, c), (None, s), (None,)]
        specs = [tf.TensorSpec([None, j, c], tf.float32, name=INPUT_NAME),
                 tf.TensorSpec([None, s], tf.float32, name=STATE_NAME),
                 tf.TensorSpec([None], tf.bool, name=FRESH_NAME)]
        # XLA fuses the state bookkeeping around the matrix products (see `stream_pool`); the
        # shape check stays outside it (XLA drops Assert).
        self._compute = tf.function(stream_model.step, jit_compile=jit_compile)
        self.step = tf.function(self._step, input_signature=specs)
        self.serve = tf.function(self._serve, input_signature=specs)

    def _step(self, keypoints_2d, state, fresh):
        """(poses_3d (B, J_out, 3), new state (B, state_size)); see the module docstring."""
        # A loaded signature does not check shapes against its specs: check them here, before
        # any op that would fail with a less telling message.
        shapes = [tf.shape(keypoints_2d), tf.shape(state), tf.shape(fresh)]
        batch = shapes[0][0]
        ok = tf.constant(True)
        for shape, dims in zip(shapes, self._dims):
            padded = tf.concat([shape, tf.zeros([len(dims)], tf.int32)], 0)[:len(dims)]
            expected = tf.stack([batch] + [tf.constant(d) for d in dims[1:]])
            ok = tf.logical_and(ok, tf.logical_and(tf.equal(tf.size(shape), len(dims)),
                                                   tf.reduce_all(tf.equal(padded, expected))))
        check = tf.debugging.Assert(
            ok, [f"wrong input shapes: expected {self._expected}; got", *shapes], summarize=8)
        with tf.control_dependencies([check]):
            keypoints_2d, state, fresh = (tf.identity(t) for t in (keypoints_2d, state, fresh))
        return self._compute(keypoints_2d, state, fresh)

    def _serve(self, keypoints_2d, state, fresh):
        poses, new_state = self._step(keypoints_2d, state, fresh)
        return {OUTPUT_NAME: poses, STATE_NAME: new_state}


def export_stream_model(model, path, jit_compile: bool = True) -> StreamLifter:
    """Writes the streaming SavedModel of `model` at `path` (written to a temporary folder
    beside it, then renamed).

    model: a causal `TemporalModel` (or an already built `StreamingTemporalModel`).
    jit_compile: serve through XLA (compiled on first use for each batch size).
    Returns the `StreamLifter` that was saved. Raises ValueError for a symmetric model.
    """
    if not isinstance(model, StreamingTemporalModel):
        model = StreamingTemporalModel.from_temporal_model(model)
    lifter = StreamLifter(model, jit_compile)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tf.saved_model.save(lifter, str(staging),
                            signatures={"serving_default": lifter.serve.get_concrete_function()})
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lifter


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.export_stream",
                                     description="Export a causal model as a streaming "
                                                 "SavedModel.")
    parser.add_argument("model", type=pathlib.Path, help="run directory or .keras file")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="SavedModel folder")
    args = parser.parse_args(argv)
    import keras

    from vp3dkeras import models  # noqa: F401  (registers the classes for loading)
    from vp3dkeras.padding import pad_replicate

    path = args.model / "model.keras" if args.model.is_dir() else args.model
    try:
        model = keras.saving.load_model(path, safe_mode=True)
        export_stream_model(model, args.out)
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path}: {error}")
    loaded = tf.saved_model.load(str(args.out))
    frames = int(loaded.receptive_field) + 5
    x = np.random.default_rng(0).uniform(
        -1, 1, (1, frames, model.num_joints_in, model.in_features)).astype(np.float32)
    offline = keras.ops.convert_to_numpy(
        model(pad_replicate(x, frames - 6, 0), training=False))[0]
    state = tf.zeros([1, int(loaded.state_size)])
    streamed = []
    for t in range(frames):
        poses, state = loaded.step(x[:, t], state, tf.constant([t == 0]))
        streamed.append(poses.numpy()[0])
    difference = float(np.abs(np.stack(streamed) - offline).max())
    print(f"exported {path} to {args.out} (receptive field {int(loaded.receptive_field)}, "
          f"state {int(loaded.state_size)} floats per stream); streamed output differs from "
          f"the offline model by {difference:.2e}")
    return 0 if difference < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
