"""Published camera calibrations (Human3.6M, HumanEva-I, ...) -> our cameras format.

A calibration JSON (`calibrations/<name>.json` ships Human3.6M's and HumanEva-I's) holds:

    {"name": "h36m", "source": "<citation>", "lens_model": "h36m" | "opencv",
     "length_unit": "mm" | "m",
     "cameras": [{"id", "image_size": [w, h], "focal_length": [fx, fy], "center": [cx, cy],
                  "radial_distortion": [k1, k2, k3], "tangential_distortion": [p1, p2]}],
     "extrinsics": {subject: [one entry per camera, in "cameras" order]},
     "subject_prefixes": ["Train/", ...]  (optional: the subject names used by the data)}

An extrinsics entry is either ``{"orientation": [w, x, y, z], "translation": [3]}`` (the
camera-to-world rotation as a unit quaternion and the camera centre in world coordinates, as
Human3.6M and VideoPose3D give them: X_cam = R^T (X_world - c)) or ``{"R": 3x3, "T": [3]}``
(world-to-camera rotation and translation, X_cam = R X_world + T, as HumanEva-I's and OpenCV's
calibrations give them). An empty entry ``{}`` marks a camera without calibration.

`cameras_from_calibration` returns the cameras dict `vp3dkeras.data.vp3d_format` reads:
``{subject: [{"id", "intrinsics": [fx, fy, cx, cy, k1, k2, k3, p1, p2], "image_size",
"rotation": world->camera 3x3, "translation": metres, "lens_model"}]}``.
"""
from __future__ import annotations

import json
import os
import pathlib
from typing import Dict, List, Optional

import numpy as np
from scipy.spatial.transform import Rotation

CALIBRATIONS_DIR = pathlib.Path(__file__).with_name("calibrations")
_UNITS = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}
_LENS_MODELS = ("opencv", "h36m")  # vp3dkeras.camera.LENS_MODELS, kept import-free here


def shipped_calibrations() -> List[str]:
    """Names of the calibrations that come with the package."""
    return sorted(p.stem for p in CALIBRATIONS_DIR.glob("*.json"))


def load_calibration(spec) -> dict:
    """A calibration dict from a shipped name (`shipped_calibrations`) or a JSON path.
    Raises ValueError naming the file for anything malformed."""
    path = pathlib.Path(spec)
    if str(spec) in shipped_calibrations():
        path = CALIBRATIONS_DIR / f"{spec}.json"
    if not path.is_file():
        raise ValueError(f"{spec}: no such calibration file, nor a shipped calibration "
                         f"({', '.join(shipped_calibrations())})")
    try:
        calibration = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not JSON ({error})") from None
    for key in ("cameras", "extrinsics", "lens_model", "length_unit"):
        if key not in calibration:
            raise ValueError(f"{path}: calibration has no {key!r}")
    if calibration["lens_model"] not in _LENS_MODELS:
        raise ValueError(f"{path}: lens_model {calibration['lens_model']!r} is not one of "
                         f"{', '.join(_LENS_MODELS)}")
    if calibration["length_unit"] not in _UNITS:
        raise ValueError(f"{path}: length_unit {calibration['length_unit']!r} is not one of "
                         f"{', '.join(_UNITS)}")
    calibration.setdefault("name", path.stem)
    calibration["path"] = str(path)
    return calibration


def _world_to_camera(entry: dict, scale: float, where: str):
    if "orientation" in entry:
        quaternion = np.asarray(entry["orientation"], np.float64)
        if quaternion.shape != (4,) or not np.isclose(np.linalg.norm(quaternion), 1, atol=1e-3):
            raise ValueError(f"{where}: orientation must be a unit quaternion (w, x, y, z)")
        camera_to_world = Rotation.from_quat(quaternion, scalar_first=True).as_matrix()
        centre = np.asarray(entry["translation"], np.float64) * scale
        rotation = camera_to_world.T
        return rotation, -rotation @ centre
    if "R" in entry:
        rotation = np.asarray(entry["R"], np.float64)
        if rotation.shape != (3, 3) or not np.allclose(rotation @ rotation.T, np.eye(3),
                                                       atol=1e-3):
            raise ValueError(f"{where}: R must be a 3x3 rotation matrix")
        return rotation, np.asarray(entry["T"], np.float64).reshape(3) * scale
    raise ValueError(f"{where}: an extrinsics entry needs orientation + translation or R + T")


def cameras_from_calibration(calibration: dict) -> Dict[str, List[Optional[dict]]]:
    """The cameras dict of the module docstring; an uncalibrated camera ({}) becomes None,
    a subject without any calibrated camera is left out."""
    where = calibration.get("path", calibration.get("name", "calibration"))
    scale = _UNITS[calibration["length_unit"]]
    lens_model = calibration["lens_model"]
    intrinsics = []
    for camera in calibration["cameras"]:
        k = list(camera.get("radial_distortion", [0.0, 0.0, 0.0]))
        k += [0.0] * (3 - len(k))
        p = list(camera.get("tangential_distortion", [0.0, 0.0]))
        intrinsics.append([*camera["focal_length"], *camera["center"], *k[:3], *p[:2]])
    prefixes = calibration.get("subject_prefixes") or [""]
    cameras: Dict[str, List[Optional[dict]]] = {}
    for subject, entries in calibration["extrinsics"].items():
        if len(entries) != len(calibration["cameras"]):
            raise ValueError(f"{where}: {subject} has {len(entries)} extrinsics for "
                             f"{len(calibration['cameras'])} cameras")
        views = []
        for index, (camera, entry) in enumerate(zip(calibration["cameras"], entries)):
            if not entry:
                views.append(None)
                continue
            rotation, translation = _world_to_camera(entry, scale, f"{where}: {subject} "
                                                                   f"camera {index}")
            views.append({"id": str(camera.get("id", index)),
                          "intrinsics": [float(v) for v in intrinsics[index]],
                          "image_size": [int(v) for v in camera["image_size"]],
                          "rotation": rotation.tolist(), "translation": translation.tolist(),
                          "lens_model": lens_model})
        if any(view is not None for view in views):
            for prefix in prefixes:
                cameras[prefix + subject] = views
    return cameras


def write_cameras_file(calibration: dict, path) -> pathlib.Path:
    """Writes `cameras_from_calibration(calibration)` as JSON to `path` (a temporary file
    renamed into place). Returns the path."""
    path = pathlib.Path(path)
    data = {"source": calibration.get("source", calibration.get("path", "")),
            **cameras_from_calibration(calibration)}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
