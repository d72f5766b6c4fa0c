"""Full-sequence inference: one 3D pose per input frame, with test-time flip augmentation.

A "lifter" is any callable mapping normalised 2D `(B, T, J, 2)` float32 to root-relative 3D
`(B, T, J, 3)` for every frame: `keras_lifter` wraps a Keras model (edge padding as its
receptive field needs, inference mode), `saved_model_lifter` an exported SavedModel (which pads
by itself). `predict_poses` adds the flip test-time augmentation of VideoPose3D: the pose is the
average of the prediction on the input and the un-flipped prediction on the flipped input.
"""
from __future__ import annotations

import pathlib
from typing import Callable, Optional

import keras
import numpy as np

from vp3dkeras import losses as _losses  # noqa: F401  (registers classes for loading)
from vp3dkeras import models as _models  # noqa: F401
from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.padding import model_padding, pad_replicate

Lifter = Callable[[np.ndarray], np.ndarray]


def keras_lifter(model) -> Lifter:
    """Wraps a Keras lifting model (temporal: pads by replicating the end frames)."""
    left, right = model_padding(model)

    def lift(keypoints):
        padded = pad_replicate(np.asarray(keypoints, np.float32), left, right)
        return keras.ops.convert_to_numpy(model(padded, training=False))

    return lift


def saved_model_lifter(path) -> Lifter:
    """Wraps a SavedModel written by `vp3dkeras.export` (TensorFlow only)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))

    def lift(keypoints):
        return loaded.predict(tf.constant(keypoints, tf.float32)).numpy()

    lift.loaded = loaded
    return lift


def load_lifter(path) -> Lifter:
    """A lifter from a `.keras` file, a run directory (its model.keras), a SavedModel or a
    VideoPose3D checkpoint (`.bin`/`.pth`/`.pt`, its "model_pos"; `vp3dkeras.convert`)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file or run folder")
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return saved_model_lifter(path)
    if path.suffix in (".bin", ".pth", ".pt"):
        from vp3dkeras.convert import load_videopose3d

        return keras_lifter(load_videopose3d(path))
    if path.is_dir():
        path = path / "model.keras"
    return keras_lifter(keras.saving.load_model(path))


def predict_poses(lifter: Lifter, keypoints_2d, codec: PoseCodec,
                  flip_tta: bool = True, input_codec: Optional[PoseCodec] = None) -> np.ndarray:
    """Root-relative 3D poses of one sequence.

    keypoints_2d: (T, J_in, 2) normalised screen coordinates (`PoseCodec.normalize_2d`).
    codec: the output convention's codec (its flip pairs mirror the predicted 3D); a codec
        with its own `input_layout` mirrors the input with that layout's pairs (`flip_2d`).
    input_codec: the input convention's codec when it differs from the output's (e.g.
        VideoPose3D's in-the-wild model: COCO-17 2D in, Human3.6M-17 3D out); the input is
        mirrored with its own left/right pairs. None: the input uses `codec`'s input layout.
    Returns (T, J_out, 3) float32 in the training targets' unit (metres), root exactly 0.
    With flip_tta the pose is VideoPose3D's test-time augmentation: the mean of the
    prediction on the input and the mirrored prediction on the mirrored input.
    """
    keypoints_2d = np.asarray(keypoints_2d, np.float32)
    if keypoints_2d.ndim != 3:
        raise ValueError(f"keypoints_2d must be (T, J, 2), got {keypoints_2d.shape}")
    flip_input = input_codec.flip if input_codec is not None else codec.flip_2d
    if flip_tta:
        both = lifter(np.stack([keypoints_2d, flip_input(keypoints_2d)]))
        poses = (both[0] + codec.flip(both[1])) / 2
    else:
        poses = lifter(keypoints_2d[None])[0]
    return codec.decode_3d(poses)
