"""Lift 2D keypoint tracks from any detector to 3D poses.

    python -m vp3dkeras.infer MODEL --keypoints FILE [--width W --height H]
        [--layout coco17|h36m17] [--out poses.npz] [--png pose.png [--frame N]]
        [--gif poses.gif [--fps 25]] [--min-score 0.3] [--no-flip-tta]

MODEL: a run directory, a `.keras` model or an exported SavedModel, trained on the 17-joint
Human3.6M layout. FILE: .npz or .json (`vp3dkeras.data.keypoint_formats.load_keypoints`), one
person's track in pixels; COCO-17 tracks (the default `--layout`) are converted to the
Human3.6M layout (see that module for the approximated joints). The image size (of the video
the keypoints come from) is needed to normalise them; the file may carry it.

Writes an npz with `poses_3d` (T, 17, 3) float32, metres, camera space (x right, y down,
z forward) relative to the pelvis; `keypoints_2d` (T, 17, 2) the converted input in pixels;
`joint_names` and `joint_parents`. `--png` draws one frame, `--gif` the whole sequence.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Optional, Sequence

import numpy as np

if __name__ == "__main__":  # TensorFlow without its start-up noise (vp3dkeras.quiet_tf)
    from vp3dkeras import quiet_tf  # noqa: F401

from vp3dkeras.cli_errors import UsageError, run_main
from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.data.keypoint_formats import coco_to_h36m, fill_low_confidence, load_keypoints
from vp3dkeras.data.track_checks import check_track
from vp3dkeras.inference import load_lifter, predict_poses
from posecontract.layouts import H36M_17


def lift_track(lifter, keypoints, scores, width: float, height: float, layout: str = "coco17",
               min_score: Optional[float] = None, flip_tta: bool = True):
    """(poses_3d (T, 17, 3) metres root-relative, keypoints (T, 17, 2) H36M-layout pixels)."""
    if layout == "coco17":
        keypoints, scores = coco_to_h36m(keypoints, scores)
    elif layout != H36M_17.name:
        raise ValueError(f"layout must be coco17 or {H36M_17.name}, got {layout!r}")
    if scores is not None and min_score is not None:
        keypoints = fill_low_confidence(keypoints, scores, min_score)
    codec = PoseCodec(H36M_17)
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
    parser.add_argument("--layout", choices=["coco17", H36M_17.name], default=None,
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
    try:
        keypoints, scores, info = load_keypoints(args.keypoints)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise ValueError(f"{args.keypoints}: not a readable keypoint track "
                         f"({type(error).__name__}: {error})") from None
    width = args.width if args.width is not None else info.get("width")
    height = args.height if args.height is not None else info.get("height")
    if width is None or height is None:
        raise UsageError("the image size is needed: pass --width and --height")
    layout = args.layout or info.get("layout", "coco17")
    keypoints, scores = check_track(args.keypoints, keypoints, scores, width, height,
                                    num_joints=H36M_17.num_joints, min_score=args.min_score)
    poses, keypoints_h36m = lift_track(load_lifter(args.model), keypoints, scores,
                                       float(width), float(height), layout, args.min_score,
                                       args.flip_tta)
    if not np.isfinite(poses).all():  # e.g. a model saved with NaN weights
        raise ValueError(f"{args.model}: the model lifts this track to NaN or infinite poses; "
                         f"its weights may be NaN (a run that diverged)")
    out = args.out or args.keypoints.with_suffix(".poses3d.npz")
    np.savez(out, poses_3d=poses, keypoints_2d=keypoints_h36m.astype(np.float32),
             joint_names=np.array(H36M_17.names), joint_parents=np.array(H36M_17.parents))
    print(f"{len(poses)} frames lifted -> {out}")
    if args.png or args.gif:
        from vp3dkeras.visualize import save_pose_gif, save_pose_png

        if args.png:
            frame = min(max(args.frame, 0), len(poses) - 1)
            save_pose_png(poses[frame], H36M_17, args.png, title=f"frame {frame}")
            print(f"picture -> {args.png}")
        if args.gif:
            save_pose_gif(poses, H36M_17, args.gif, fps=args.fps)
            print(f"animation -> {args.gif}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
