"""VideoPose3D-format data: `data_3d_<name>.npz`, `data_2d_<name>_<keypoints>.npz` and cameras.

- `data_3d_<name>.npz`: `positions_3d[subject][action]` (T, J3, 3) world coordinates, metres.
- `data_2d_<name>_<keypoints>.npz`: `positions_2d[subject][action][camera]` (T, J, 2) pixels
  (a third channel, a detector score, is dropped) and `metadata` (`layout_name`,
  `num_joints`, `keypoints_symmetry` = [left joints, right joints]).
- `data_cameras_<name>.json` (as `synth.export_vp3d` and `python -m vp3dkeras.cameras_file`
  write): `[subject][action]` -> one entry per camera, or `[subject]` -> one entry per camera
  shared by all actions; each entry `{"intrinsics": [fx, fy, cx, cy, k1, k2, k3, p1, p2],
  "image_size": [w, h], "rotation": 3x3 world->camera R, "translation": t,
  "lens_model": "opencv" | "h36m"}` with X_cam = R X_world + t (metres); `lens_model`
  (default "opencv") says which distortion formula the k and p belong to
  (`vp3dkeras.camera.project_to_2d`); null marks a camera without calibration.

VideoPose3D keeps Human3.6M's and HumanEva-I's cameras in its code, so its files come without
a cameras file. When the folder has none, the calibration shipped for the dataset name
(`vp3dkeras.data.published_cameras`: `h36m`, `humaneva15`) is used.

The nested dicts are stored as 0-d object arrays, i.e. pickles. Files from elsewhere are read
with `restricted_load_npz`, whose unpickler only rebuilds dicts, lists, strings, numbers and
NumPy arrays/scalars; anything else (e.g. a pickle that would call `os.system`) is refused.

Camera-space targets need the cameras; without them the sequences are 2D-only (usable as
unlabeled data), and the image size must be given to normalise the keypoints.
"""
from __future__ import annotations

import importlib
import io
import json
import pathlib
import pickle
import warnings
import zipfile
import zlib
from typing import Dict, Optional, Sequence as Seq, Tuple

import numpy as np

from vp3dkeras.camera import check_lens_model
from vp3dkeras.data import calibration
from vp3dkeras.data.published_cameras import (CALIBRATIONS_DIR, cameras_from_calibration,
                                              load_calibration, shipped_calibrations)
from vp3dkeras.data.codec import PoseCodec, load_layout
from vp3dkeras.data.sequences import Sequence, SequenceRef, SequenceSource, make_sequence
from posecontract.layouts import ACCLAIM_17, COCO_17, H36M_17, HUMANEVA_15, JointLayout

#: The 17 of Human3.6M's 32 mocap joints that make up the 17-joint layout (H36M_17 order).
H36M_32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
_METADATA_LAYOUTS = {"h36m": H36M_17, "humaneva15": HUMANEVA_15, "coco17": COCO_17,
                     "acclaim17": ACCLAIM_17}


def _allowed_globals() -> Dict[Tuple[str, str], object]:
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy._core", "numpy.core"):
        try:
            multiarray = importlib.import_module(f"{package}.multiarray")
            numeric = importlib.import_module(f"{package}.numeric")
        except ImportError:
            continue
        for module in ("numpy._core", "numpy.core"):  # files written by either NumPy major
            allowed[(f"{module}.multiarray", "_reconstruct")] = multiarray._reconstruct
            allowed[(f"{module}.multiarray", "scalar")] = multiarray.scalar
            if hasattr(numeric, "_frombuffer"):
                allowed[(f"{module}.numeric", "_frombuffer")] = numeric._frombuffer
        break
    allowed[("_codecs", "encode")] = importlib.import_module("_codecs").encode  # protocol 2
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only plain containers, numbers, strings and NumPy arrays/dtypes/scalars.

    Dicts, lists, tuples, str, int, float and bytes need no class lookup in a pickle; the only
    globals allowed are the NumPy array and scalar reconstructors (and `_codecs.encode`, used
    by protocol-2 pickles for byte strings). Everything else raises `pickle.UnpicklingError`.
    """

    _ALLOWED = None

    def find_class(self, module, name):
        if RestrictedUnpickler._ALLOWED is None:
            RestrictedUnpickler._ALLOWED = _allowed_globals()
        try:
            return RestrictedUnpickler._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: only dicts, lists, strings, numbers "
                f"and NumPy arrays are allowed in data files") from None


def restricted_load_npz(path) -> Dict[str, object]:
    """Every array of an .npz file; 0-d object arrays come back as the object they hold.

    Object arrays are unpickled with `RestrictedUnpickler`; other arrays are read with
    `allow_pickle=False`. A file that is not a readable npz (truncated, empty, another format)
    raises a one-line ValueError naming it.
    """
    path = pathlib.Path(path)
    try:
        return _restricted_load_npz(path)
    except (zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: not a readable .npz file (truncated or another format: "
                         f"{error})") from None


def _restricted_load_npz(path: pathlib.Path) -> Dict[str, object]:
    out: Dict[str, object] = {}
    with zipfile.ZipFile(path) as archive, np.load(path, allow_pickle=False) as plain:
        for member in archive.namelist():
            key = member[:-4] if member.endswith(".npy") else member
            with archive.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    _, _, dtype = np.lib.format.read_array_header_1_0(handle)
                elif version == (2, 0):
                    _, _, dtype = np.lib.format.read_array_header_2_0(handle)
                else:
                    raise ValueError(f"{path}:{member}: unsupported .npy version {version}")
                if not dtype.hasobject:
                    out[key] = plain[key]
                    continue
                array = RestrictedUnpickler(io.BytesIO(handle.read())).load()
            if not isinstance(array, np.ndarray):
                raise pickle.UnpicklingError(f"{path}:{member}: not an array")
            out[key] = array.item() if array.shape == () else array
    return out


def _layout_from_metadata(metadata: dict, layout) -> JointLayout:
    if layout is not None:
        chosen = load_layout(layout)
    else:
        name = str(metadata.get("layout_name", ""))
        if name not in _METADATA_LAYOUTS:
            raise ValueError(f"2D metadata names layout {name!r}; pass one of "
                             f"{sorted(_METADATA_LAYOUTS)} or a layout JSON")
        chosen = _METADATA_LAYOUTS[name]
    symmetry = metadata.get("keypoints_symmetry")
    if symmetry is not None:
        left, right = (sorted(int(i) for i in side) for side in symmetry)
        if (left, right) != (sorted(chosen.left_joints), sorted(chosen.right_joints)):
            raise ValueError(f"the file's left/right joints {left}/{right} disagree with "
                             f"layout {chosen.name}")
    return chosen


def _camera_list(cameras: Optional[dict], subject: str, action: str):
    if cameras is None or subject not in cameras:
        return None
    entry = cameras[subject]
    return entry if isinstance(entry, list) else entry.get(action)


def _lens_model(cameras: Optional[dict], where: str) -> str:
    """The one lens model of every camera entry (default "opencv"); mixed models refused."""
    found = set()

    def visit(node):
        if isinstance(node, list):
            for entry in node:
                if isinstance(entry, dict):
                    found.add(str(entry.get("lens_model", "opencv")))
        elif isinstance(node, dict):
            for value in node.values():
                visit(value)

    for subject, entry in (cameras or {}).items():
        if subject != "source":
            visit(entry)
    if len(found) > 1:
        raise ValueError(f"{where}: cameras mix lens models {sorted(found)}")
    return check_lens_model(found.pop() if found else "opencv")


def action_class(action: str) -> str:
    """Class of a VideoPose3D action name: the text before its first space ("Walking 1")."""
    return action.split(" ")[0]


class VP3DSource(SequenceSource):
    """Sequences of VideoPose3D-format data: one per subject, action and camera.

    positions_2d: `[subject][action][camera]` (T, J, 2 or 3) pixels.
    positions_3d: `[subject][action]` (T, J3, 3) world metres, or None (2D-only).
    cameras:      the cameras dict described in the module docstring, or None (2D-only).
    layout:       joint layout (name, JointLayout or JSON path); None reads it from metadata.
    image_size:   (width, height) for every camera, needed when `cameras` is None.
    Clip keys are "<subject>/<action>"; a 3D array of 32 joints under a 17-joint layout is
    reduced with `H36M_32_TO_17`. When 2D and 3D lengths differ both are cut to the shorter.
    """

    def __init__(self, positions_2d: dict, metadata: Optional[dict] = None,
                 positions_3d: Optional[dict] = None, cameras: Optional[dict] = None,
                 layout=None, image_size: Optional[Seq[float]] = None, name: str = "vp3d",
                 cache_bytes: int = SequenceSource.DEFAULT_CACHE_BYTES, fps: float = 0.0):
        codec = PoseCodec(_layout_from_metadata(metadata or {}, layout))
        self.lens_model = _lens_model(cameras, name)
        self._positions_2d, self._positions_3d = positions_2d, positions_3d
        self._cameras, self._image_size = cameras, image_size
        refs = []
        for subject in sorted(positions_2d):
            for action in sorted(positions_2d[subject]):
                has_3d = self._has_3d(subject, action)
                for camera, keypoints in enumerate(positions_2d[subject][action]):
                    frames = len(keypoints)
                    if has_3d:
                        frames = min(frames, len(positions_3d[subject][action]))
                    refs.append(SequenceRef(
                        key=f"{subject}/{action}/cam{camera}", clip_key=f"{subject}/{action}",
                        subject=subject, action=action, motion_class=action_class(action),
                        camera=camera, item=(subject, action), num_frames=frames, fps=fps,
                        has_3d=has_3d))
        self._refs_by_item: Dict[tuple, Dict[int, SequenceRef]] = {}
        for ref in refs:
            self._refs_by_item.setdefault(ref.item, {})[ref.camera] = ref
        if cameras is None and image_size is None:
            raise ValueError("without cameras the image size is needed to normalise 2D")
        super().__init__(codec, refs, name=name, cache_bytes=cache_bytes)

    def _joints_3d(self, subject, action):
        joints = np.asarray(self._positions_3d[subject][action], np.float32)
        if joints.shape[1] != self.codec.num_joints:
            if joints.shape[1] == 32 and self.codec.layout.name == H36M_17.name:
                joints = joints[:, list(H36M_32_TO_17)]
            else:
                raise ValueError(f"{subject}/{action}: 3D has {joints.shape[1]} joints, "
                                 f"layout {self.codec.layout.name} {self.codec.num_joints}")
        return joints

    def _load_item(self, item) -> Dict[int, Sequence]:
        subject, action = item
        views = self._positions_2d[subject][action]
        cameras = _camera_list(self._cameras, subject, action)
        joints_world = self._joints_3d(subject, action) if self._has_3d(subject, action) \
            else None
        sequences = {}
        for camera, keypoints in enumerate(views):
            ref = self._refs_by_item[item][camera]
            keypoints = np.asarray(keypoints, np.float32)[: ref.num_frames, :, :2]
            params = cameras[camera] if cameras is not None and camera < len(cameras) else None
            image_size = params["image_size"] if params is not None else self._image_size
            if image_size is None:
                raise ValueError(f"{self.name}: {ref.key}: the cameras have no entry for this "
                                 f"sequence and no image size was given")
            joints_camera = None
            if joints_world is not None:
                rotation = np.asarray(params["rotation"], np.float32)
                translation = np.asarray(params["translation"], np.float32)
                joints_camera = (joints_world[: ref.num_frames] @ rotation.T) + translation
            sequences[camera] = make_sequence(
                self.codec, ref, keypoints, image_size, joints_camera,
                None if params is None else params.get("intrinsics"))
        return sequences

    def _has_3d(self, subject, action) -> bool:
        cameras = _camera_list(self._cameras, subject, action)
        return (self._positions_3d is not None
                and action in self._positions_3d.get(subject, {})
                and cameras is not None
                and len(cameras) >= len(self._positions_2d[subject][action])
                and all(entry is not None for entry in cameras))


def find_vp3d_files(directory, name: Optional[str] = None, keypoints: str = "gt"):
    """(data_3d path or None, data_2d path, cameras path or None) of a folder.

    name: the dataset name in the file names; found automatically when the folder holds one
    `data_2d_<name>_<keypoints>.npz`.
    """
    directory = pathlib.Path(directory)
    if name is None:
        names = sorted(p.name[len("data_2d_"):-len(f"_{keypoints}.npz")]
                       for p in directory.glob(f"data_2d_*_{keypoints}.npz"))
        if len(names) != 1:
            raise ValueError(f"{directory}: expected one data_2d_<name>_{keypoints}.npz, found "
                             f"{names or 'none'}; pass the name")
        name = names[0]
    data_2d = directory / f"data_2d_{name}_{keypoints}.npz"
    if not data_2d.is_file():
        present = sorted(p.name for p in directory.glob("data_2d_*.npz"))
        raise FileNotFoundError(f"{data_2d}: not found; the folder has "
                                f"{', '.join(present) or 'no data_2d_*.npz'}")
    data_3d = directory / f"data_3d_{name}.npz"
    cameras = directory / f"data_cameras_{name}.json"
    return (data_3d if data_3d.is_file() else None, data_2d,
            cameras if cameras.is_file() else None)


def is_vp3d_folder(path) -> bool:
    return pathlib.Path(path).is_dir() and any(pathlib.Path(path).glob("data_2d_*.npz"))


def open_vp3d(directory, name: Optional[str] = None, keypoints: str = "gt", layout=None,
              image_size=None, cache_bytes: int = SequenceSource.DEFAULT_CACHE_BYTES,
              fps: float = 0.0, estimate_cameras: bool = False,
              require_cameras: bool = False) -> VP3DSource:
    """A `VP3DSource` over the VideoPose3D-format files of `directory` (see module doc).

    estimate_cameras: when the folder has neither a cameras file nor a shipped calibration
    for its name, estimate each subject's cameras from its 3D and its ground-truth 2D
    (`data_2d_<name>_gt.npz`) with `vp3dkeras.data.calibration.estimate_cameras` (needs
    `image_size`). A cameras file, then a shipped calibration, are always preferred.
    require_cameras: the use needs each sequence's measured camera (back-projection): without a
    cameras file or a shipped calibration, ValueError saying so (no estimate, no 2D-only).
    """
    path_3d, path_2d, path_cameras = find_vp3d_files(directory, name, keypoints)
    data_2d = restricted_load_npz(path_2d)
    positions_3d = restricted_load_npz(path_3d)["positions_3d"] if path_3d else None
    cameras = None
    dataset = path_2d.name[len("data_2d_"):-len(f"_{keypoints}.npz")]
    if path_cameras is not None:
        try:
            cameras = json.loads(path_cameras.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path_cameras}: not valid JSON ({error})") from None
    elif dataset in shipped_calibrations():
        cameras = cameras_from_calibration(load_calibration(dataset))
        print(f"{directory}: no data_cameras_{dataset}.json; using the shipped {dataset} "
              f"calibration ({CALIBRATIONS_DIR / (dataset + '.json')})")
    elif require_cameras:
        raise ValueError(f"{directory}: no data_cameras_{dataset}.json and no shipped "
                         f"calibration for {dataset!r}: each sequence's camera is needed "
                         f"(write the file with python -m vp3dkeras.cameras_file)")
    elif estimate_cameras and positions_3d is not None:
        if image_size is None:
            raise ValueError(f"{directory}: estimating cameras needs the image size "
                             f"(--image-size WxH)")
        path_gt = path_2d.with_name(path_2d.name[: -len(f"_{keypoints}.npz")] + "_gt.npz")
        if not path_gt.is_file():
            raise ValueError(f"{directory}: estimating cameras needs ground-truth 2D "
                             f"({path_gt.name})")
        gt_2d = data_2d if path_gt == path_2d else restricted_load_npz(path_gt)
        cameras, report = calibration.estimate_cameras(positions_3d, gt_2d["positions_2d"],
                                                       image_size)
        worst = max(e["mean_px"] for entries in report.values() for e in entries)
        warnings.warn(f"{directory}: no data_cameras_*.json; cameras estimated from "
                      f"{path_gt.name} (DLT, no distortion; mean reprojection error up to "
                      f"{worst:.2f} px per camera)")
    elif image_size is None:
        raise ValueError(
            f"{directory}: no data_cameras_{dataset}.json: write one from the published "
            f"calibration with `python -m vp3dkeras.cameras_file CALIBRATION.json {directory} "
            f"--name {dataset}` (see README, \"Cameras files\"), pass --estimate-cameras (and "
            f"the image size) to fit them to the ground-truth 2D, or pass the image size to "
            f"train on 2D only")
    elif positions_3d is not None:
        warnings.warn(f"{directory}: no data_cameras_*.json, so no camera-space 3D targets; "
                      "the sequences are 2D-only")
    return VP3DSource(data_2d["positions_2d"], data_2d.get("metadata"), positions_3d, cameras,
                      layout=layout, image_size=image_size, name=str(path_2d),
                      cache_bytes=cache_bytes, fps=fps)
