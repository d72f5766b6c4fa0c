"""Camera maths: screen-coordinate normalisation and pinhole projection with lens distortion.

Camera space follows OpenCV: x right, y down, z forward, in any length unit; pixels have their
origin at the top-left corner. Intrinsics are packed as 9 numbers,
``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` (focal lengths and principal point in pixels, radial
coefficients k1..k3, tangential coefficients p1, p2), the layout the synth package writes.

Two lens models give the meaning of k1..k3, p1, p2 (`LENS_MODELS`); a cameras file says
which one its numbers belong to (``"lens_model"``, default ``"opencv"``):

- ``"opencv"``: OpenCV's Brown-Conrady model (`cv2.projectPoints`), what `synth` renders with.
- ``"h36m"``: the model of Human3.6M's published calibration (Ionescu et al., TPAMI 2014,
  its metadata and Matlab code) that VideoPose3D's projection follows: the normalised
  coordinates are clamped to [-1, 1] and the tangential term is p.(x, y) scaling the point
  plus (p1, p2) r^2 (see `project_to_2d`). On Human3.6M's cameras it differs from OpenCV's
  formula by up to a few pixels.

The projections use `keras.ops`, so they are differentiable inside a model or a
`tf.GradientTape` and also accept NumPy arrays; the ``*_np`` variants return NumPy.
"""
from __future__ import annotations

import numpy as np
from keras import backend, ops

INTRINSICS_SIZE = 9
LENS_MODELS = ("opencv", "h36m")


def check_lens_model(lens_model: str) -> str:
    """The name if it is one of `LENS_MODELS`, else ValueError."""
    if lens_model not in LENS_MODELS:
        raise ValueError(f"unknown lens model {lens_model!r}; known: {', '.join(LENS_MODELS)}")
    return lens_model


def _float_array(x) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def normalize_screen_coordinates(xy, w: float, h: float) -> np.ndarray:
    """Pixels to the network's input range, keeping the aspect ratio.

    x maps [0, w] to [-1, 1]; y maps [0, h] to [-h/w, h/w] (same scale as x).
    xy: (..., 2) pixels. Returns (..., 2), unitless, same float dtype.
    """
    xy = _float_array(xy)
    return xy / w * 2 - np.array([1.0, h / w], dtype=xy.dtype)


def image_coordinates(normalised, w: float, h: float) -> np.ndarray:
    """Inverse of `normalize_screen_coordinates`: (..., 2) unitless -> (..., 2) pixels."""
    normalised = _float_array(normalised)
    return (normalised + np.array([1.0, h / w], dtype=normalised.dtype)) * w / 2


def _split_intrinsics(intrinsics, points):
    """Casts the (..., 9) intrinsics to the points' dtype and aligns them for broadcasting.

    The intrinsics' leading axes match the points' leading axes; axes they lack (the joint
    axis and any after their own) are inserted so each camera applies to all its points.
    """
    intrinsics = ops.cast(intrinsics, points.dtype)
    if intrinsics.shape[-1] != INTRINSICS_SIZE:
        raise ValueError(f"intrinsics must be shaped (..., {INTRINSICS_SIZE}) as "
                         f"[fx, fy, cx, cy, k1, k2, k3, p1, p2], got {intrinsics.shape}")
    missing = len(points.shape) - len(intrinsics.shape)
    if missing < 0:
        raise ValueError(f"intrinsics {intrinsics.shape} have more axes than points "
                         f"{points.shape} allow")
    for _ in range(missing):
        intrinsics = ops.expand_dims(intrinsics, axis=-2)
    return [intrinsics[..., i] for i in range(INTRINSICS_SIZE)]


def _perspective_divide(points):
    points = ops.convert_to_tensor(points)
    if not backend.standardize_dtype(points.dtype).startswith("float"):
        points = ops.cast(points, "float32")
    if points.shape[-1] != 3:
        raise ValueError(f"points must be shaped (..., J, 3), got {points.shape}")
    return points, points[..., 0] / points[..., 2], points[..., 1] / points[..., 2]


def project_to_2d(points, intrinsics, lens_model: str = "opencv"):
    """Projects camera-space points to pixels with a lens model (`LENS_MODELS`).

    With x' = X/Z, y' = Y/Z, r^2 = x'^2 + y'^2 and radial = 1 + k1 r^2 + k2 r^4 + k3 r^6:

    "opencv" (what `cv2.projectPoints` computes with zero rvec/tvec and distortion
    (k1, k2, p1, p2, k3)):
      x'' = x' radial + 2 p1 x'y' + p2 (r^2 + 2 x'^2)
      y'' = y' radial + p1 (r^2 + 2 y'^2) + 2 p2 x'y'
    "h36m" (Human3.6M's calibration, VideoPose3D's projection): x', y' first clamped to
    [-1, 1], then with t = p1 x' + p2 y'
      x'' = x' (radial + t) + p1 r^2
      y'' = y' (radial + t) + p2 r^2
    and in both u = fx x'' + cx, v = fy y'' + cy. Points must lie in front of the camera
    (Z > 0).

    points: (..., J, 3) camera space, any length unit.
    intrinsics: (9,) or (..., 9), leading axes matching the points' leading axes
      (e.g. (B, 9) for points (B, T, J, 3)).
    Returns (..., J, 2) pixels, a backend tensor.
    """
    check_lens_model(lens_model)
    points, x, y = _perspective_divide(points)
    fx, fy, cx, cy, k1, k2, k3, p1, p2 = _split_intrinsics(intrinsics, points)
    if lens_model == "h36m":
        x, y = ops.clip(x, -1.0, 1.0), ops.clip(y, -1.0, 1.0)
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    if lens_model == "h36m":
        tangential = p1 * x + p2 * y
        x_distorted = x * (radial + tangential) + p1 * r2
        y_distorted = y * (radial + tangential) + p2 * r2
    else:
        xy = x * y
        x_distorted = x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x)
        y_distorted = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy
    return ops.stack([fx * x_distorted + cx, fy * y_distorted + cy], axis=-1)


def project_to_2d_linear(points, intrinsics):
    """Pinhole projection without distortion; the k and p entries of `intrinsics` are ignored.

    points: (..., J, 3) camera space. intrinsics: (9,) or (..., 9) as in `project_to_2d`.
    Returns (..., J, 2) pixels, a backend tensor.
    """
    points, x, y = _perspective_divide(points)
    fx, fy, cx, cy = _split_intrinsics(intrinsics, points)[:4]
    return ops.stack([fx * x + cx, fy * y + cy], axis=-1)


def project_to_2d_np(points, intrinsics, lens_model: str = "opencv") -> np.ndarray:
    """`project_to_2d` on NumPy input, returning NumPy in the points' float dtype."""
    return ops.convert_to_numpy(project_to_2d(_float_array(points), intrinsics, lens_model))


def project_to_2d_linear_np(points, intrinsics) -> np.ndarray:
    """`project_to_2d_linear` on NumPy input, returning NumPy in the points' float dtype."""
    return ops.convert_to_numpy(project_to_2d_linear(_float_array(points), intrinsics))
