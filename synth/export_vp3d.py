"""Export a synth dataset in VideoPose3D's npz layout so existing tools can read it.

    python -m synth.export_vp3d DATASET_DIR --out DIR [--name synth] [--keypoints h36m17]

writes `DIR/data_3d_<name>.npz` with `positions_3d[subject][action]` (T, K, 3) world metres
and `DIR/data_2d_<name>_gt.npz` with `positions_2d[subject][action][camera]` (T, K, 2) pixels plus
`metadata` (layout name, joint count, left/right keypoint symmetry), for one keypoint
convention of the dataset (`--keypoints`; default h36m17 when the dataset has it, else the
canonical joints acclaim17). The layout name is VideoPose3D's "h36m" for h36m17 and the
convention's name otherwise. A subject is one actor
on one avatar (`<dataset>_<actor>_<avatar>`), an action is a clip id. Camera parameters go to
`DIR/data_cameras_<name>.json` (`[subject][action]` -> list of intrinsics/extrinsics per camera).

VideoPose3D stores these nested dicts as 0-d object arrays, which only unpickling can read:
use these files only where that format is required, and read them with a restricted
unpickler. Our own records need no pickle.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Optional, Sequence

import numpy as np

from posecontract.conventions import get_convention
from posecontract.dataset_format import (BASE_CONVENTION, convention_key, manifest_conventions,
                                         require_convention)

from . import dataset as ds


def export_videopose3d(dataset_dir: pathlib.Path, out_dir: pathlib.Path,
                       name: str = "synth", keypoints: Optional[str] = None) -> dict:
    """Writes the three files; `keypoints` is the convention exported (see module doc).
    ValueError (one line) when the dataset does not hold it."""
    dataset_dir = pathlib.Path(dataset_dir)
    manifest = ds.read_manifest(dataset_dir)
    available = manifest_conventions(manifest)
    if keypoints is None:
        keypoints = "h36m17" if "h36m17" in available else BASE_CONVENTION
    layout = get_convention(keypoints).layout
    require_convention(available, keypoints, dataset_dir)
    key_3d = convention_key("joints3d_world", keypoints)
    key_2d = convention_key("keypoints2d", keypoints)
    positions_3d, positions_2d, cameras = {}, {}, {}
    for entry in manifest["records"]:
        record = ds.load_record(dataset_dir / entry["file"])
        subject = f"{entry['dataset']}_{entry['actor']}_{entry['avatar']}"
        action = str(record["clip_id"])
        positions_3d.setdefault(subject, {})[action] = record[key_3d]
        positions_2d.setdefault(subject, {})[action] = list(record[key_2d])
        cameras.setdefault(subject, {})[action] = [
            {"intrinsics": intr.tolist(), "image_size": size.tolist(),
             "rotation": rot.tolist(), "translation": tr.tolist(),
             "lens_model": "opencv"}  # synth renders with OpenCV's distortion formula
            for intr, size, rot, tr in zip(record["camera_intrinsics"],
                                           record["camera_image_size"],
                                           record["camera_rotation"],
                                           record["camera_translation"])]
    metadata = {"layout_name": "h36m" if keypoints == "h36m17" else keypoints,
                "num_joints": layout.num_joints,
                "keypoints_symmetry": [layout.left_joints, layout.right_joints]}
    out_dir = pathlib.Path(out_dir)
    with ds.atomic_path(out_dir / f"data_3d_{name}.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, positions_3d=_object(positions_3d))
    with ds.atomic_path(out_dir / f"data_2d_{name}_gt.npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, positions_2d=_object(positions_2d),
                                metadata=_object(metadata))
    ds.write_json(out_dir / f"data_cameras_{name}.json", cameras)
    return {"keypoints": keypoints, "subjects": len(positions_3d),
            "actions": sum(len(actions) for actions in positions_3d.values())}


def _object(value) -> np.ndarray:
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.export_vp3d", description=__doc__)
    parser.add_argument("dataset_dir", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, required=True, help="output folder")
    parser.add_argument("--name", default="synth", help="dataset name in the file names")
    parser.add_argument("--keypoints", default=None,
                        help="keypoint convention to export (default: h36m17 if present)")
    args = parser.parse_args(argv)
    try:
        summary = export_videopose3d(args.dataset_dir, args.out, args.name, args.keypoints)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported {summary['keypoints']}: {summary['subjects']} subjects, "
          f"{summary['actions']} actions "
          f"to {args.out}/data_3d_{args.name}.npz, data_2d_{args.name}_gt.npz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
