"""Many live 2D tracks lifted frame by frame through one streaming step, each with its state.

A `StreamPool` holds one state row per open stream (e.g. one per camera of a server) and runs
the frames that arrived in one batched call of a streaming step: that of a
`StreamingTemporalModel` (`keras_stream_step`) or of a SavedModel written by
`vp3dkeras.export_stream` (`saved_model_stream_step`). Streams not in a call keep their
state untouched; opening or resetting a stream flags it fresh, so its next frame starts it
exactly as offline inference starts a sequence (replicate padding of its first frame).
"""
from __future__ import annotations

import pathlib
from typing import Callable, Dict, Hashable, Sequence, Tuple

import numpy as np

# (keypoints_2d (B, J, C), state (B, S), fresh (B,)) -> (poses (B, J_out, 3), state (B, S))
StreamStep = Callable[[np.ndarray, np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


class StreamPool:
    """Open streams by id, feed any subset of them one frame each per call.

    step: a `StreamStep`; state_size: floats of state per stream (the model's `state_size`).
    """

    def __init__(self, step: StreamStep, state_size: int):
        self._step = step
        self.state_size = int(state_size)
        self._rows: Dict[Hashable, int] = {}
        self._state = np.zeros((0, self.state_size), np.float32)
        self._fresh = np.zeros((0,), bool)

    @property
    def streams(self):
        return list(self._rows)

    def open(self, stream_id: Hashable) -> None:
        """Adds a stream; its first frame starts it. Raises ValueError if it is open."""
        if stream_id in self._rows:
            raise ValueError(f"stream {stream_id!r} is already open")
        self._rows[stream_id] = len(self._state)
        self._state = np.concatenate([self._state, np.zeros((1, self.state_size), np.float32)])
        self._fresh = np.append(self._fresh, True)

    def reset(self, stream_id: Hashable) -> None:
        """Forgets a stream's past: its next frame starts it again (e.g. a new person)."""
        self._fresh[self._row(stream_id)] = True

    def close(self, stream_id: Hashable) -> None:
        row = self._row(stream_id)
        self._state = np.delete(self._state, row, axis=0)
        self._fresh = np.delete(self._fresh, row)
        del self._rows[stream_id]
        self._rows = {key: r - (r > row) for key, r in self._rows.items()}

    def _row(self, stream_id) -> int:
        if stream_id not in self._rows:
            raise KeyError(f"stream {stream_id!r} is not open")
        return self._rows[stream_id]

    def push(self, stream_ids: Sequence[Hashable], frames) -> np.ndarray:
        """One new frame for each listed stream, in one call of the step.

        frames: (len(stream_ids), J, C) float32 normalised keypoints.
        Returns (len(stream_ids), J_out, 3) poses. Raises KeyError for an unknown id,
        ValueError for an id listed twice or a frame count that does not match.
        """
        rows = np.array([self._row(s) for s in stream_ids], np.int64)
        if len(set(rows.tolist())) != len(rows):
            raise ValueError("a stream can take one frame per call")
        frames = np.asarray(frames, np.float32)
        if len(frames) != len(rows):
            raise ValueError(f"{len(rows)} streams but {len(frames)} frames")
        if np.array_equal(rows, np.arange(len(self._state))):  # every stream, in order
            poses, state = self._step(frames, self._state, self._fresh)
            state = np.asarray(state, np.float32)
            self._state = state if state.flags.writeable else state.copy()
        else:
            poses, state = self._step(frames, self._state[rows], self._fresh[rows])
            self._state[rows] = state
        self._fresh[rows] = False
        return poses


def keras_stream_step(stream_model, jit_compile: bool = True) -> StreamStep:
    """The step of a `StreamingTemporalModel`, compiled once for the Keras backend (eager
    op-by-op calls cost more than the arithmetic at batch 1).

    TensorFlow: a `tf.function`, with XLA when `jit_compile` (it fuses the state bookkeeping
    around the matrix products: at 243 frames and 1024 channels, batch 1, about 2.2 ms a frame
    here against 3-4 ms without, `experiments/benchmark_streaming.py`). JAX: `jax.jit` (the
    weights are read as constants at the first call: rebuild the step after changing them).
    Both compile once per batch size.
    """
    import keras

    step = stream_model.step
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        step = tf.function(step, jit_compile=jit_compile, reduce_retracing=True)
    elif backend == "jax" and jit_compile:
        import jax

        step = jax.jit(step)

    def numpy(tensor):
        return tensor.numpy() if hasattr(tensor, "numpy") else keras.ops.convert_to_numpy(tensor)

    def run(frames, state, fresh):
        poses, state = step(frames, state, fresh)
        return numpy(poses), numpy(state)

    return run


def saved_model_stream_step(loaded) -> StreamStep:
    """The step of a SavedModel from `vp3dkeras.export_stream` (loaded with TensorFlow)."""
    import tensorflow as tf

    def run(frames, state, fresh):
        poses, state = loaded.step(tf.constant(frames), tf.constant(state),
                                   tf.constant(fresh))
        return poses.numpy(), state.numpy()

    return run


def load_stream_pool(path) -> Tuple[StreamPool, dict]:
    """A pool from a streaming SavedModel, a run directory or a causal `.keras` model.

    Returns (pool, info) with "receptive_field", "num_joints_in", "in_features",
    "num_joints_out". Raises ValueError (naming the file) for a model that cannot stream.
    """
    path = pathlib.Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        if not hasattr(loaded, "state_size"):
            raise ValueError(f"{path}: not a streaming SavedModel (export it with "
                             f"python -m vp3dkeras.export_stream)")
        info = {key: int(getattr(loaded, key)) for key in
                ("receptive_field", "num_joints_in", "in_features", "num_joints_out")}
        return StreamPool(saved_model_stream_step(loaded), int(loaded.state_size)), info
    import keras

    from vp3dkeras import models

    if path.is_dir():
        path = path / "model.keras"
    model = keras.saving.load_model(path, safe_mode=True)
    try:
        stream = (model if isinstance(model, models.StreamingTemporalModel)
                  else models.StreamingTemporalModel.from_temporal_model(model))
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{path}: {error}") from None
    info = {"receptive_field": stream.receptive_field(), "num_joints_in": stream.num_joints_in,
            "in_features": stream.in_features, "num_joints_out": stream.num_joints_out}
    return StreamPool(keras_stream_step(stream), stream.state_size), info
