"""Lift 2D keypoint tracks from any detector to 3D poses.

    python -m vp3dkeras.infer MODEL --keypoints FILE [--width W --height H]
        [--layout coco17|h36m17] [--out poses.npz] [--png pose.png [--frame N]]
        [--gif poses.gif [--fps 25]] [--min-score 0.3] [--no-flip-tta]

MODEL: a run directory, a `.keras` model or an exported SavedModel, trained on the 17-joint
Human3.6M layout. FILE: .npz or .json (`vp3dkeras.data.keypoint_formats.load_keypoints`), one
person's track in pixels; COCO-17 tracks (the default `--layout`) are converted to the
Human3.6M layout (see that module for the approximated joints). The image size (of the video
the keypoints come from) is needed to normalise them; the file may carry it.

A run directory's config.json names the keypoint conventions the model was trained with
(`keypoints_in`, `keypoints_out`, see `vp3dkeras.train`); other models are taken as Human3.6M
17 in and out. A track already in the model's input convention (e.g. COCO-17 for a model
trained with `--keypoints-in coco17`) is fed as it is; a COCO-17 track for a Human3.6M-input
model is converted as above.

Writes an npz with `poses_3d` (T, J, 3) float32, metres, camera space (x right, y down,
z forward) relative to the root, in the model's output convention; `keypoints_2d` (T, K, 2)
the model's input in pixels; `joint_names` and `joint_parents` of the output.
`--png` draws one frame, `--gif` the whole sequence.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Optional, Sequence, Tuple

import numpy as np

from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.data.keypoint_formats import coco_to_h36m, fill_low_confidence, load_keypoints
from vp3dkeras.inference import load_lifter, predict_poses
from posecontract.conventions import get_convention
from posecontract.layouts import H36M_17


def model_conventions(model_path) -> Tuple[str, str]:
    """(input, output) keypoint conventions of a model: from its run directory's config.json
    (the directory itself, or the folder of a `.keras` file; `keypoints_in`,
    `keypoints_out`), else Human3.6M-17 for both."""
    model_path = pathlib.Path(model_path)
    run_dir = model_path if model_path.is_dir() else model_path.parent
    config_path = run_dir / "config.json"
    config = {}
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
    out = config.get("keypoints_out") or H36M_17.name
    return config.get("keypoints_in") or out, out


def lift_track(lifter, keypoints, scores, width: float, height: float, layout: str = "coco17",
               min_score: Optional[float] = None, flip_tta: bool = True,
               keypoints_in: str = H36M_17.name, keypoints_out: str = H36M_17.name):
    """(poses_3d (T, J, 3) metres root-relative in `keypoints_out`, keypoints (T, K, 2)
    pixels in `keypoints_in`, the model's input). `layout`: the track's keypoints."""
    if layout != keypoints_in:
        if layout == "coco17" and keypoints_in == H36M_17.name:
            keypoints, scores = coco_to_h36m(keypoints, scores)
        else:
            raise ValueError(f"the track is {layout}, the model takes {keypoints_in}: give a "
                             f"{keypoints_in} track (or coco17 for an h36m17 model)")
    if scores is not None and min_score is not None:
        keypoints = fill_low_confidence(keypoints, scores, min_score)
    codec = PoseCodec(get_convention(keypoints_out).layout,
                      input_layout=get_convention(keypoints_in).layout)
    poses = predict_poses(lifter, codec.normalize_2d(keypoints, (width, height)), codec,
                          flip_tta)
    return poses, keypoints


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.infer",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=pathlib.Path,
                        help="run directory, .keras file or SavedModel folder")
    parser.add_argument("--keypoints", type=pathlib.Path, required=True,
                        help="2D track (.npz or .json), pixels")
    parser.add_argument("--layout", choices=["coco17", H36M_17.name, "humaneva15", "acclaim17"],
                        default=None,
                        help="keypoint layout of the file (default: the file's, else coco17)")
    parser.add_argument("--width", type=float, help="image width in pixels")
    parser.add_argument("--height", type=float, help="image height in pixels")
    parser.add_argument("--out", type=pathlib.Path, help="output npz (default FILE.poses3d.npz)")
    parser.add_argument("--png", type=pathlib.Path, help="draw one frame as PNG")
    parser.add_argument("--frame", type=int, default=0, help="frame for --png")
    parser.add_argument("--gif", type=pathlib.Path, help="animate the sequence as GIF")
    parser.add_argument("--fps", type=float, default=25.0, help="GIF frame rate")
    parser.add_argument("--min-score", type=float, default=None,
                        help="interpolate keypoints whose detector score is below this")
    parser.add_argument("--no-flip-tta", dest="flip_tta", action="store_false")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    keypoints, scores, info = load_keypoints(args.keypoints)
    width, height = args.width or info.get("width"), args.height or info.get("height")
    if not width or not height:
        raise SystemExit("the image size is needed: pass --width and --height")
    layout = args.layout or info.get("layout", "coco17")
    keypoints_in, keypoints_out = model_conventions(args.model)
    output_layout = get_convention(keypoints_out).layout
    try:
        poses, keypoints_in_px = lift_track(load_lifter(args.model), keypoints, scores,
                                            float(width), float(height), layout,
                                            args.min_score, args.flip_tta, keypoints_in,
                                            keypoints_out)
    except ValueError as error:
        raise SystemExit(f"error: {args.keypoints}: {error}") from None
    out = args.out or args.keypoints.with_suffix(".poses3d.npz")
    np.savez(out, poses_3d=poses, keypoints_2d=keypoints_in_px.astype(np.float32),
             joint_names=np.array(output_layout.names),
             joint_parents=np.array(output_layout.parents))
    print(f"{len(poses)} frames lifted -> {out}")
    if args.png or args.gif:
        from vp3dkeras.visualize import save_pose_gif, save_pose_png

        if args.png:
            frame = min(max(args.frame, 0), len(poses) - 1)
            save_pose_png(poses[frame], output_layout, args.png, title=f"frame {frame}")
            print(f"picture -> {args.png}")
        if args.gif:
            save_pose_gif(poses, output_layout, args.gif, fps=args.fps)
            print(f"animation -> {args.gif}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
