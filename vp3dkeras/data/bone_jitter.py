"""Bone-length jitter: each training example re-proportioned and filmed again, in NumPy.

A lifter trained on a handful of bodies learns their proportions and predicts them for
everyone: on real people it then errs by the difference (`experiments/sim_to_real_bodies.py`:
on HumanEva-I's own motion, our bodies' proportions cost 18-31 mm of P1). Bone-length jitter gives
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

Target skeletons (`skeletons=`, `--skeletons FILE`, `vp3dkeras.data.skeletons`): when the
people the lifter will see are known, every window is instead set, frame by frame, to the
bone lengths of one of them (picked at random per window), optionally jittered around them
by `sd`: synthetic motion on the real people's bodies, with nothing but their lengths taken
from them.

Only for data whose 2D input is the projection of its 3D target in the same layout: the
sampler refuses a codec whose input keypoints differ from its output joints and a sequence
without intrinsics, each with a one-line error.
"""
from __future__ import annotations

from typing import Optional, Tuple

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
    of the log factor (0.06: about 6 %; 0 only with `skeletons`); lens_model: the sequences'
    lens model; skeletons: (S, J) bone lengths in metres (`vp3dkeras.data.skeletons`, root
    column unused) or None. With skeletons, every window takes one of them, uniformly at
    random, rigidly: each frame's bones are set to its lengths (then times the jitter
    factors when sd > 0), so the window's own body no longer matters.
    """

    def __init__(self, layout: JointLayout, sd: float, lens_model: str = "opencv",
                 skeletons: Optional[np.ndarray] = None):
        sd = float(sd)
        if skeletons is not None:
            skeletons = np.asarray(skeletons, np.float64)
            if skeletons.ndim != 2 or skeletons.shape[1] != layout.num_joints:
                raise ValueError(f"skeletons must be (S, {layout.num_joints}) for "
                                 f"{layout.name}, got {skeletons.shape}")
        if not np.isfinite(sd) or sd < 0 or (sd == 0 and skeletons is None):
            raise ValueError(f"bone jitter sd must be a positive number, got {sd}")
        self.layout, self.sd, self.lens_model = layout, sd, lens_model
        self.skeletons = skeletons
        self.parents = np.asarray(layout.parents)
        # Each joint's bone shares the factor of its mirror image's bone.
        self.partner = np.minimum(np.arange(layout.num_joints), layout.flip_permutation())

    def factors(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """(count, J) bone factors, left and right alike, within exp(+-3 sd)."""
        logs = np.clip(rng.normal(0.0, self.sd, (count, self.layout.num_joints)),
                       -3 * self.sd, 3 * self.sd)
        return np.exp(logs[:, self.partner])

    def _window_factors(self, poses: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(N, T, J) factors for (N, T, J, 3) poses: jitter, towards a skeleton if given."""
        n, t, j = poses.shape[:3]
        # The skeletons are drawn first: a window's skeleton does not depend on sd.
        chosen = (None if self.skeletons is None
                  else self.skeletons[rng.integers(len(self.skeletons), size=n)])  # (N, J)
        jitter = self.factors(n, rng) if self.sd > 0 else np.ones((n, j))
        factors = np.broadcast_to(jitter[:, None, :], (n, t, j))
        if chosen is None:
            return factors
        child = np.flatnonzero(self.parents >= 0)
        lengths = np.linalg.norm(poses[:, :, child] - poses[:, :, self.parents[child]],
                                 axis=-1)
        towards = np.ones((n, t, j))
        # A vanishing bone keeps its (zero) length: it has no direction to scale along.
        towards[:, :, child] = np.where(lengths > 1e-6, chosen[:, None, child]
                                        / np.maximum(lengths, 1e-6), 1.0)
        return factors * towards

    def apply(self, poses: np.ndarray, trajectory: np.ndarray, intrinsics: np.ndarray,
              rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """Re-proportioned poses and their 2D.

        poses: (N, T, J, 3) root-relative camera-space metres; trajectory: (N, T, 3) the
        root's camera-space position, metres; intrinsics: (N, 9) normalised intrinsics
        (`PoseCodec.normalize_intrinsics`). Returns (poses (N, T, J, 3), keypoints (N, T, J,
        2) normalised screen coordinates), float32.
        """
        from vp3dkeras.camera import project_to_2d_np
        poses = np.asarray(poses, np.float64)
        n, t, j = poses.shape[:3]
        factors = self._window_factors(poses, rng)
        new = rescale_bones(poses.reshape(n * t, j, 3), self.parents,
                            factors.reshape(n * t, j)).reshape(poses.shape)
        camera_space = new + np.asarray(trajectory, np.float64)[:, :, None, :]
        keypoints = project_to_2d_np(camera_space, np.asarray(intrinsics, np.float64),
                                     self.lens_model)
        return new.astype(np.float32), keypoints.astype(np.float32)


def bone_jitter_from_config(layout: JointLayout, input_layout: JointLayout, sd: float,
                            lens_model: str, skeletons=None):
    """The `--bone-jitter SD` and `--skeletons FILE` options as a `BoneJitter` (None when
    both are off); ValueError when the 2D input's keypoints are not the 3D output's joints,
    or (one line naming the file) when the skeletons file cannot be used."""
    if not sd and not skeletons:
        return None
    option = "--bone-jitter" if sd else "--skeletons"
    if tuple(input_layout.names) != tuple(layout.names):
        raise ValueError(f"{option} needs the 2D input in the 3D output's layout, got "
                         f"{input_layout.name} in and {layout.name} out")
    table = None
    if skeletons:
        from vp3dkeras.data.skeletons import load_skeletons
        table = load_skeletons(skeletons, layout)[1]
    return BoneJitter(layout, sd, lens_model, skeletons=table)
