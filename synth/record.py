"""A clip record: one clip on one avatar, filmed by several cameras, as plain arrays.

Every key, dtype, shape and unit is listed in README.md ("What a clip record holds").
C cameras, T frames, J joints of the full source skeleton, 17 joints of the H36M layout.
The bare `keypoints2d` / `joints3d_*` / `joint_names` keys hold the canonical joint centres
(`acclaim17`); each further keypoint convention (`posecontract.conventions`, evaluated by
`synth.keypoints`) has the same keys with a `__<convention>` suffix
(`posecontract.dataset_format.convention_key`), and `keypoint_conventions` lists them all.
Records rendered with `--images` also hold the renders' frame indices, sizes and per-joint
visibility (`synth.rendering.record_arrays`).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from posecontract.conventions import get_convention
from posecontract.dataset_format import BASE_CONVENTION, convention_key, record_conventions
from posecontract.layouts import H36M_17

from .cameras import Camera
from .keypoints import ConventionEvaluator
from .kinematics import quat_canonical, quat_from_matrix, quat_multiply
from .motion import Motion
from .retarget import RetargetedClip

EULER_ORDER = "XYZ"  # intrinsic rotations about the joint's x, then y, then z axes, radians

METADATA_KEYS = ("dataset", "actor", "motion_class", "clip_id", "description")


def local_rotation_arrays(motion: Motion) -> Dict[str, np.ndarray]:
    """The clip's local rotations as float32 quaternions (T, J, 4) (w >= 0) and intrinsic
    X-Y-Z Euler angles (T, J, 3), radians. The same on every avatar: compute once per clip."""
    local = quat_canonical(motion.local_rotations)
    flat = local.reshape(-1, 4)
    euler = Rotation.from_quat(flat[:, [1, 2, 3, 0]]).as_euler(EULER_ORDER).reshape(
        local.shape[:2] + (3,))
    return {"rotations_local_quat": local.astype(np.float32),
            "rotations_local_euler": euler.astype(np.float32)}


def build_record(motion: Motion, clip: RetargetedClip, cameras: Sequence[Camera],
                 clip_key: str, local_rotations: Optional[Dict[str, np.ndarray]] = None,
                 conventions: Sequence[str] = ()) -> Dict[str, np.ndarray]:
    """Arrays for one clip x avatar (see README for the layout). `local_rotations` is
    `local_rotation_arrays(motion)`, computed here when not given. `conventions`: keypoint
    convention names written besides the canonical joints (`acclaim17`); ValueError when the
    avatar lacks a landmark one of them needs."""
    layout17 = clip.canonical_indices[:H36M_17.num_joints]
    world_full = clip.positions
    camera_full = np.stack([cam.world_to_camera(world_full) for cam in cameras])
    keypoints_full = np.stack([cam.project(points) for cam, points in zip(cameras, camera_full)])

    camera_quats = quat_from_matrix(np.stack([cam.rotation for cam in cameras]))  # world -> cam
    root_in_camera = quat_canonical(quat_multiply(camera_quats[:, None, :],
                                                  clip.global_rotations[None, :, 0]))

    f32 = np.float32
    record = {
        "joints3d_world": world_full[:, layout17].astype(f32),
        "joints3d_camera": camera_full[:, :, layout17].astype(f32),
        "keypoints2d": keypoints_full[:, :, layout17].astype(f32),
        "joints3d_world_full": world_full.astype(f32),
        "joints3d_camera_full": camera_full.astype(f32),
        "keypoints2d_full": keypoints_full.astype(f32),
        **(local_rotations or local_rotation_arrays(motion)),
        "root_orientation_camera": root_in_camera.astype(f32),
        "camera_intrinsics": np.stack([cam.intrinsics_vector() for cam in cameras]).astype(f32),
        "camera_image_size": np.array([[cam.width, cam.height] for cam in cameras], np.int32),
        "camera_rotation": np.stack([cam.rotation for cam in cameras]).astype(f32),
        "camera_translation": np.stack([cam.translation for cam in cameras]).astype(f32),
        "joint_names": np.array(H36M_17.names),
        "joint_names_full": np.array(clip.skeleton.names),
        "joint_parents_full": clip.skeleton.parents.astype(np.int32),
        "bone_offsets_full": clip.skeleton.offsets.astype(f32),
        "layout_indices": layout17.astype(np.int32),
        "fps": np.float32(motion.fps),
        "num_frames": np.int32(motion.num_frames),
        "clip_key": np.array(clip_key),
        "avatar": np.array(clip.avatar.name),
        "source_path": np.array(motion.source.get("path", "")),
    }
    for key in METADATA_KEYS:
        record[key] = np.array(motion.source.get(key, ""))
    names = [n for n in dict.fromkeys(conventions) if n != BASE_CONVENTION]
    if names:
        evaluator = ConventionEvaluator(clip)
        for name in names:
            convention = get_convention(name)
            world = evaluator.positions(convention)
            camera = np.stack([cam.world_to_camera(world) for cam in cameras])
            keypoints = np.stack([cam.project(points) for cam, points in zip(cameras, camera)])
            record[convention_key("joints3d_world", name)] = world.astype(f32)
            record[convention_key("joints3d_camera", name)] = camera.astype(f32)
            record[convention_key("keypoints2d", name)] = keypoints.astype(f32)
            record[convention_key("joint_names", name)] = np.array(convention.names)
    record["keypoint_conventions"] = np.array(names + [BASE_CONVENTION])
    return record


def record_metadata(record: Dict[str, np.ndarray]) -> Dict[str, object]:
    """The JSON-able metadata of a record (for the manifest)."""
    meta = {key: str(record[key]) for key in METADATA_KEYS + ("clip_key", "avatar")}
    meta["fps"] = float(record["fps"])
    meta["num_frames"] = int(record["num_frames"])
    meta["num_cameras"] = int(record["camera_intrinsics"].shape[0])
    meta["keypoint_conventions"] = record_conventions(record)
    return meta


def validate_record(record: Dict[str, np.ndarray]) -> List[str]:
    """Problems with a record's shapes and values; empty when it is sound."""
    problems = []
    c, t = record["keypoints2d"].shape[:2]
    expected = {"joints3d_world": (t, 17, 3), "joints3d_camera": (c, t, 17, 3),
                "keypoints2d": (c, t, 17, 2), "camera_intrinsics": (c, 9)}
    if "visibility" in record:  # rendered with --images (`synth.rendering.record_arrays`)
        n = record["image_frames"].shape[0]
        j = record["joints3d_world_full"].shape[1]
        expected.update({"image_size": (c, 2), "visibility": (c, n, 17),
                         "visibility_full": (c, n, j)})
        if n and not (0 <= record["image_frames"].min() and record["image_frames"].max() < t):
            problems.append("image_frames index frames outside the clip")
    for name in record_conventions(record):
        if name == BASE_CONVENTION:
            continue
        k = get_convention(name).num_keypoints
        expected.update({convention_key("joints3d_world", name): (t, k, 3),
                         convention_key("joints3d_camera", name): (c, t, k, 3),
                         convention_key("keypoints2d", name): (c, t, k, 2),
                         convention_key("joint_names", name): (k,)})
    for key, shape in expected.items():
        if key not in record:
            problems.append(f"{key} is missing")
        elif record[key].shape != shape:
            problems.append(f"{key} has shape {record[key].shape}, expected {shape}")
    for key, value in record.items():
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            problems.append(f"{key} has non-finite values")
    return problems
