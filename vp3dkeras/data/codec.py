"""The codec between raw keypoints / joints and what the networks read and predict.

One object owns every conversion, so the input pipeline, the training loop, the metrics and
the inference CLI never reimplement them:

- 2D input: pixels -> [-1, 1] along x keeping the aspect ratio
  (`vp3dkeras.camera.normalize_screen_coordinates`); y then spans [-h/w, h/w].
- 3D target: camera-space joints (metres) minus the root joint, so the root is exactly 0; the
  root's own camera-space path (the trajectory) is kept beside it.
- Horizontal flip: negate x (of normalised 2D, of camera-space 3D and of the trajectory) and
  swap every left joint with its right partner (`JointLayout.flip_permutation`).
- Input and output layouts may differ (keypoint conventions, `posecontract.conventions`:
  COCO-17 2D in, Human3.6M-17 3D out is the in-the-wild case): 2D uses the input layout and
  its flip permutation (`flip_2d`), 3D the output layout and its own (`flip`).
- Intrinsics for reprojection: pixel intrinsics rewritten so that projecting a camera-space
  point gives normalised screen coordinates directly, and their mirror image under the flip.

NumPy only; works on any leading axes.
"""
from __future__ import annotations

import json
import pathlib
from typing import Tuple, Union

import numpy as np

from vp3dkeras.camera import check_lens_model, image_coordinates, normalize_screen_coordinates
from posecontract.layouts import LAYOUTS, JointLayout


def load_layout(spec: Union[str, JointLayout, pathlib.Path]) -> JointLayout:
    """A joint layout from its name (`posecontract.layouts.LAYOUTS`) or a JSON file.

    The JSON holds {"name", "names": [J], "parents": [J], "groups": {group: [joint index]}};
    left/right partners follow from the "l_"/"r_" name prefixes.
    """
    if isinstance(spec, JointLayout):
        return spec
    if str(spec) in LAYOUTS:
        return LAYOUTS[str(spec)]
    path = pathlib.Path(spec)
    if not path.is_file():
        raise ValueError(f"unknown joint layout {spec!r}: neither a name in {sorted(LAYOUTS)} "
                         f"nor a JSON file")
    data = json.loads(path.read_text(encoding="utf-8"))
    layout = JointLayout(name=str(data.get("name", path.stem)), names=tuple(data["names"]),
                         parents=tuple(int(p) for p in data["parents"]),
                         groups={k: tuple(int(i) for i in v)
                                 for k, v in data.get("groups", {}).items()})
    if len(layout.parents) != layout.num_joints:
        raise ValueError(f"{path}: {layout.num_joints} names but {len(layout.parents)} parents")
    return layout


class PoseCodec:
    """Conversions between raw data and network inputs/targets.

    layout:       the joints of the 3D output (and of the 2D input unless `input_layout`).
    root:         index of the output's root joint (0, the pelvis, in the built-in 3D
                  layouts).
    input_layout: the keypoints of the 2D input when they differ from the output's.
    """

    def __init__(self, layout: Union[str, JointLayout], root: int = 0,
                 input_layout: Union[str, JointLayout, None] = None):
        self.layout = load_layout(layout)
        self.input_layout = self.layout if input_layout is None else load_layout(input_layout)
        self.root = int(root)
        self.flip_permutation = self.layout.flip_permutation()
        self.flip_permutation_2d = self.input_layout.flip_permutation()

    @property
    def num_joints(self) -> int:
        """Output (3D) joints."""
        return self.layout.num_joints

    @property
    def num_joints_in(self) -> int:
        """Input (2D) keypoints."""
        return self.input_layout.num_joints

    # -- 2D -------------------------------------------------------------------------------
    def normalize_2d(self, keypoints, image_size) -> np.ndarray:
        """keypoints: (..., J, 2) pixels; image_size: (width, height).
        Returns (..., J, 2) float32, x in [-1, 1], y in [-h/w, h/w]."""
        width, height = (float(v) for v in image_size)
        return normalize_screen_coordinates(np.asarray(keypoints, np.float32), width, height)

    def denormalize_2d(self, keypoints, image_size) -> np.ndarray:
        """Inverse of `normalize_2d`: (..., J, 2) normalised -> pixels."""
        width, height = (float(v) for v in image_size)
        return image_coordinates(np.asarray(keypoints, np.float32), width, height)

    # -- 3D -------------------------------------------------------------------------------
    def encode_3d(self, joints_camera) -> Tuple[np.ndarray, np.ndarray]:
        """joints_camera: (..., J, 3) camera space, metres.

        Returns (poses, trajectory): poses (..., J, 3) float32 relative to the root (root = 0),
        trajectory (..., 3) float32, the root's camera-space position.
        """
        joints_camera = np.asarray(joints_camera, np.float32)
        trajectory = joints_camera[..., self.root, :]
        poses = joints_camera - trajectory[..., None, :]
        poses[..., self.root, :] = 0.0
        return poses, trajectory.copy()

    def decode_3d(self, poses, trajectory=None) -> np.ndarray:
        """Network output (..., J, 3) -> root-relative poses with the root at exactly 0, or
        absolute camera-space poses when a trajectory (..., 3) is given."""
        poses = np.array(poses, np.float32)
        poses[..., self.root, :] = 0.0
        if trajectory is not None:
            poses = poses + np.asarray(trajectory, np.float32)[..., None, :]
        return poses

    # -- flip -----------------------------------------------------------------------------
    def flip(self, points) -> np.ndarray:
        """Mirror (..., J, C) output-layout points left-right: negate x, swap left/right
        joints. Works for camera-space 3D (and for normalised 2D in the output layout);
        applying it twice gives back the input."""
        return _mirror(points, self.flip_permutation)

    def flip_2d(self, keypoints) -> np.ndarray:
        """`flip` for (..., J_in, 2) normalised 2D input keypoints (centred on x = 0), with
        the input layout's left/right pairs."""
        return _mirror(keypoints, self.flip_permutation_2d)

    @staticmethod
    def flip_trajectory(trajectory) -> np.ndarray:
        """(..., 3) root positions mirrored like `flip` (x negated)."""
        flipped = np.array(trajectory)
        flipped[..., 0] *= -1
        return flipped

    # -- intrinsics -----------------------------------------------------------------------
    @staticmethod
    def normalize_intrinsics(intrinsics, image_size) -> np.ndarray:
        """(..., 9) pixel intrinsics [fx, fy, cx, cy, k1, k2, k3, p1, p2] -> the same camera
        with focal lengths and principal point rescaled so that `camera.project_to_2d`
        returns the normalised coordinates of `normalize_2d` (distortion unchanged).

        image_size: (2,) or (..., 2) (width, height). Returns float32.
        """
        intrinsics = np.array(intrinsics, np.float32)
        size = np.asarray(image_size, np.float32)
        width, height = size[..., 0], size[..., 1]
        intrinsics[..., 0] *= 2 / width
        intrinsics[..., 1] *= 2 / width
        intrinsics[..., 2] = intrinsics[..., 2] * 2 / width - 1
        intrinsics[..., 3] = intrinsics[..., 3] * 2 / width - height / width
        return intrinsics

    @staticmethod
    def flip_intrinsics(normalized_intrinsics, lens_model: str = "opencv") -> np.ndarray:
        """The normalised camera seen in the mirror: projecting flipped 3D with it gives the
        flipped normalised 2D. x-centre and one tangential coefficient change sign: p2 under
        the "opencv" lens model (it multiplies the only x-odd term of the distortion that does
        not flip with x), p1 under "h36m" (where p1 multiplies the x-even terms x^2 and r^2
        of x'' and x in y''); see `vp3dkeras.camera.project_to_2d`."""
        flipped = np.array(normalized_intrinsics, np.float32)
        flipped[..., 2] *= -1
        flipped[..., 7 if check_lens_model(lens_model) == "h36m" else 8] *= -1
        return flipped


def _mirror(points, permutation: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.shape[-2] != len(permutation):
        raise ValueError(f"expected (..., {len(permutation)}, C), got {points.shape}")
    flipped = points[..., permutation, :].copy()
    flipped[..., 0] *= -1
    return flipped
