"""Bone-length jitter: each training example re-proportioned and filmed again, in NumPy.

A lifter trained on a handful of bodies learns their proportions and predicts them for
everyone: on real people it then errs by the difference (`experiments/sim_to_real_bodies.py`
measured this as the largest part of the synthetic-to-real gap). Bone-length jitter gives
every training example a body of its own, so that the network has to read proportions from
the 2D instead of remembering them:

1. every bone of the output layout (joint k -> its parent) is scaled by a factor
   `exp(N(0, sd))`, clipped to `exp(+-3 sd)`; a left bone and its right partner share their
   factor (bodies are nearly symmetric), and the factors hold over the whole window;
2. the root-relative 3D pose is rebuilt from the root outwards with every bone's direction
   kept (`rescale_bones`);
3. the new pose is placed at the example's own root trajectory and projected through the
   sequence's camera (intrinsics and lens distortion, `vp3dkeras.camera.project_to_2d`): the
   2D input is the new body's projection, as the ground-truth 2D of the records is the
   projection of their 3D.

The root stays where it was, so the camera still sees the person from the same place; the
stature changes with the leg and trunk factors, as it does between people. This is the
bone-length part of PoseAug's augmentation (Gong et al., CVPR 2021, "PoseAug: A
Differentiable Pose Augmentation Framework for 3D Human Pose Estimation"), with random
factors instead of learned ones. Adult segment lengths spread by about 4-6 % of their mean
once stature is accounted for, and HumanEva-I's three subjects' upper arms alone span
260-320 mm. Of the levels tried on HumanEva-I (0.06, 0.10, 0.15; README, "Sim-to-real
study"), 0.10 did best.

Only for data whose 2D input is the projection of its 3D target in the same layout: the
sampler refuses a codec whose input keypoints differ from its output joints and a sequence
without intrinsics, each with a one-line error.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from posecontract.layouts import JointLayout


def _depth_order(parents) -> np.ndarray:
    """Joint indices ordered so that every joint comes after its parent."""
    parents = np.asarray(parents)
    depth = np.zeros(len(parents), np.int64)
    for k in range(len(parents)):
        j = k
        while parents[j] >= 0:
            depth[k] += 1
            j = parents[j]
            if depth[k] > len(parents):
                raise ValueError(f"parents {tuple(parents)} contain a cycle")
    return np.argsort(depth, kind="stable")


def rescale_bones(poses: np.ndarray, parents, factors: np.ndarray) -> np.ndarray:
    """Poses with every bone (parent -> joint k) scaled by `factors[..., k]`.

    poses: (N, ..., J, 3) root-relative (any unit); factors: (N, J), unitless, the root's
    entry ignored; parents: (J,) with -1 for the root. Directions of all bones and the root's
    position are kept. Returns (N, ..., J, 3) in the poses' dtype.
    """
    poses = np.asarray(poses)
    factors = np.asarray(factors, poses.dtype)
    shape = (len(poses),) + (1,) * (poses.ndim - 3)
    out = poses.copy()
    for k in _depth_order(parents):
        p = parents[k]
        if p < 0:
            continue
        scale = factors[:, k].reshape(shape + (1,))
        out[..., k, :] = out[..., p, :] + scale * (poses[..., k, :] - poses[..., p, :])
    return out


class BoneJitter:
    """Random per-example bone lengths for one output layout (see the module docstring).

    layout: the 3D output layout (its parents and left/right pairs); sd: standard deviation
    of the log factor (0.06: about 6 %); lens_model: the sequences' lens model.
    """

    def __init__(self, layout: JointLayout, sd: float, lens_model: str = "opencv"):
        sd = float(sd)
        if not np.isfinite(sd) or sd <= 0:
            raise ValueError(f"bone jitter sd must be a positive number, got {sd}")
        self.layout, self.sd, self.lens_model = layout, sd, lens_model
        self.parents = np.asarray(layout.parents)
        # Each joint's bone shares the factor of its mirror image's bone.
        self.partner = np.minimum(np.arange(layout.num_joints), layout.flip_permutation())

    def factors(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, J) bone factors, left and right alike, within exp(+-3 sd)."""
        logs = np.clip(rng.normal(0.0, self.sd, (count, self.layout.num_joints)),
                       -3 * self.sd, 3 * self.sd)
        return np.exp(logs[:, self.partner])

    def apply(self, poses: np.ndarray, trajectory: np.ndarray, intrinsics: np.ndarray,
              rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """Re-proportioned poses and their 2D.

        poses: (N, T, J, 3) root-relative camera-space metres; trajectory: (N, T, 3) the
        root's camera-space position, metres; intrinsics: (N, 9) normalised intrinsics
        (`PoseCodec.normalize_intrinsics`). Returns (poses (N, T, J, 3), keypoints (N, T, J,
        2) normalised screen coordinates), float32.
        """
        from vp3dkeras.camera import project_to_2d_np
        new = rescale_bones(np.asarray(poses, np.float64), self.parents,
                            self.factors(len(poses), rng))
        camera_space = new + np.asarray(trajectory, np.float64)[:, :, None, :]
        keypoints = project_to_2d_np(camera_space, np.asarray(intrinsics, np.float64),
                                     self.lens_model)
        return new.astype(np.float32), keypoints.astype(np.float32)


def bone_jitter_from_config(layout: JointLayout, input_layout: JointLayout, sd: float,
                            lens_model: str):
    """The `--bone-jitter SD` option as a `BoneJitter` (None when SD is 0); ValueError when
    the 2D input's keypoints are not the 3D output's joints."""
    if not sd:
        return None
    if tuple(input_layout.names) != tuple(layout.names):
        raise ValueError(f"--bone-jitter needs the 2D input in the 3D output's layout, got "
                         f"{input_layout.name} in and {layout.name} out")
    return BoneJitter(layout, sd, lens_model)
