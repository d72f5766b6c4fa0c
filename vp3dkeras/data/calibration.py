"""Cameras estimated from 2D-3D correspondences, for VideoPose3D-format sets that have neither a
cameras file nor a shipped calibration (`vp3dkeras.data.published_cameras`) but whose
ground-truth 2D are projections of their 3D.

Per subject and camera, all frames and joints of all actions give one linear system for the
3x4 projection matrix (the normalised direct linear transform, Hartley & Zisserman, "Multiple
View Geometry", 2nd ed., Alg. 4.2 / Sec. 7.1), which is split into intrinsics K and pose
[R | t] by an RQ decomposition (Sec. 6.2.4; `scipy.linalg.rq`). Lens distortion is not
modelled, so the fit leaves the distortion as a residual and absorbs part of it into the
pose: on HumanEva-I (0.4-1.3 px mean reprojection error) the estimated cameras are 1.5-5.1
degrees and 0.14-0.42 m from the published calibration, whose fit is 0.001 px. A published
calibration is therefore always preferred; this is the fallback when there is none.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import scipy.linalg


def _normalizing_transform(points: np.ndarray) -> np.ndarray:
    """Similarity that moves `points` (N, D) to the origin with mean distance sqrt(D)."""
    dims = points.shape[1]
    centre = points.mean(axis=0)
    spread = np.mean(np.linalg.norm(points - centre, axis=1))
    scale = np.sqrt(dims) / max(spread, 1e-12)
    transform = np.eye(dims + 1)
    transform[:dims, :dims] *= scale
    transform[:dims, dims] = -scale * centre
    return transform


def projection_matrix(points_3d, points_2d) -> np.ndarray:
    """(3, 4) projection matrix P with x ~ P [X; 1], from (N, 3) world points and (N, 2)
    pixels (N >= 6, not all coplanar), by the normalised DLT. Raises ValueError on too few
    or non-finite points."""
    points_3d = np.asarray(points_3d, np.float64).reshape(-1, 3)
    points_2d = np.asarray(points_2d, np.float64).reshape(-1, 2)
    good = np.isfinite(points_3d).all(1) & np.isfinite(points_2d).all(1)
    points_3d, points_2d = points_3d[good], points_2d[good]
    if len(points_3d) < 6:
        raise ValueError(f"camera estimation needs at least 6 finite 2D-3D pairs, got "
                         f"{len(points_3d)}")
    t3, t2 = _normalizing_transform(points_3d), _normalizing_transform(points_2d)
    world = np.c_[points_3d, np.ones(len(points_3d))] @ t3.T
    image = np.c_[points_2d, np.ones(len(points_2d))] @ t2.T
    rows = np.zeros((2 * len(world), 12))
    rows[0::2, 0:4] = world
    rows[0::2, 8:12] = -image[:, :1] * world
    rows[1::2, 4:8] = world
    rows[1::2, 8:12] = -image[:, 1:2] * world
    _, _, vt = np.linalg.svd(rows, full_matrices=False)
    normalized = vt[-1].reshape(3, 4)
    return np.linalg.inv(t2) @ normalized @ t3


def decompose_projection(matrix) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K (3, 3) with K[2, 2] = 1 and a positive diagonal, R (3, 3) proper rotation, t (3,))
    with P ~ K [R | t] and the points in front of the camera having positive depth."""
    matrix = np.asarray(matrix, np.float64)
    if np.linalg.det(matrix[:, :3]) < 0:
        matrix = -matrix
    upper, rotation = scipy.linalg.rq(matrix[:, :3])
    signs = np.diag(np.sign(np.diag(upper)))
    upper, rotation = upper @ signs, signs @ rotation
    scale = upper[2, 2]
    intrinsics = upper / scale
    translation = np.linalg.solve(intrinsics, matrix[:, 3] / scale)
    return intrinsics, rotation, translation


def reprojection_errors(points_3d, points_2d, intrinsics, rotation, translation) -> np.ndarray:
    """(N,) pixel distances between `points_2d` and the pinhole projections of `points_3d`."""
    camera = np.asarray(points_3d, np.float64).reshape(-1, 3) @ rotation.T + translation
    projected = camera @ intrinsics.T
    projected = projected[:, :2] / projected[:, 2:]
    return np.linalg.norm(projected - np.asarray(points_2d).reshape(-1, 2), axis=1)


def estimate_cameras(positions_3d: dict, positions_2d: dict, image_size
                     ) -> Tuple[Dict[str, List[dict]], Dict[str, List[dict]]]:
    """Cameras of every subject, in the cameras-file format of `vp3d_format`.

    positions_3d: `[subject][action]` (T, J, 3) world metres.
    positions_2d: `[subject][action][camera]` (T, J, 2+) pixels, exact projections.
    image_size:   (width, height) pixels, written into every entry.
    Returns (cameras `{subject: [entry per camera]}` with intrinsics [fx, fy, cx, cy, 0, 0,
    0, 0, 0] (skew dropped), rotation, translation and image_size; report
    `{subject: [{"mean_px", "max_px", "points"} per camera]}`).
    Subjects without 3D are left out.
    """
    cameras, report = {}, {}
    for subject in sorted(positions_2d):
        actions = [a for a in sorted(positions_2d[subject])
                   if a in positions_3d.get(subject, {})]
        if not actions:
            continue
        num_cameras = len(positions_2d[subject][actions[0]])
        entries, errors = [], []
        for camera in range(num_cameras):
            world, image = [], []
            for action in actions:
                views = positions_2d[subject][action]
                if camera >= len(views) or views[camera] is None:
                    continue
                keypoints = np.asarray(views[camera])[..., :2]
                joints = np.asarray(positions_3d[subject][action])
                frames = min(len(keypoints), len(joints))
                world.append(joints[:frames].reshape(-1, 3))
                image.append(keypoints[:frames].reshape(-1, 2))
            world, image = np.concatenate(world), np.concatenate(image)
            k, r, t = decompose_projection(projection_matrix(world, image))
            residual = reprojection_errors(world, image, k, r, t)
            entries.append({"intrinsics": [k[0, 0], k[1, 1], k[0, 2], k[1, 2], 0, 0, 0, 0, 0],
                            "image_size": [float(v) for v in image_size],
                            "rotation": r.tolist(), "translation": t.tolist()})
            errors.append({"mean_px": float(residual.mean()), "max_px": float(residual.max()),
                           "points": int(len(residual))})
        cameras[subject], report[subject] = entries, errors
    return cameras, report
