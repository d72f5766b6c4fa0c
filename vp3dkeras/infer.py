"""Lift 2D keypoint tracks from any detector to 3D poses.

    python -m vp3dkeras.infer MODEL --keypoints TRACK [--width W --height H]
        [--keypoints-in h36m17|coco17] [--keypoints-out h36m17] [--max-gap N] [--video NAME]
        [--out poses.npz] [--png pose.png [--frame N]] [--gif poses.gif [--fps 25]]
        [--min-score 0.3] [--no-flip-tta]

MODEL: a run directory, a `.keras` model, an exported SavedModel or a VideoPose3D checkpoint
(`.bin`, e.g. its in-the-wild `pretrained_h36m_detectron_coco.bin` with `--keypoints-in
coco17`). TRACK: one person's 2D
track in pixels, in any format `vp3dkeras.data.keypoint_formats.read_track` reads (COCO or
AlphaPose results, an OpenPose JSON folder, MMPose predictions, VideoPose3D's
`data_2d_custom_*.npz`, our npz/json); the format and the track's keypoint convention are
detected. Frames without a detection and NaN keypoints are interpolated and reported (or
refused, naming the frames, beyond `--max-gap`). The model's input and output conventions
(`--keypoints-in`, `--keypoints-out`; default: the run's config.json, else h36m17) may differ,
as in VideoPose3D's in-the-wild model (COCO-17 in, Human3.6M-17 out); a COCO-17 track fed to
a Human3.6M-input model is converted (`coco_to_h36m`, approximated joints). The image size
(of the video the keypoints come from) normalises the keypoints; the file may carry it.

Writes an npz with `poses_3d` (T, J_out, 3) float32, metres, camera space (x right, y down,
z forward) relative to the pelvis; `keypoints_2d` (T, J_in, 2) the model's input in pixels;
`frames` (T,) frame numbers; `interpolated_frames`; `joint_names` and `joint_parents` of the
output convention. `--png` draws one frame, `--gif` the whole sequence. Unreadable input is
one line naming the file (exit 2), never NaN poses.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from typing import Optional, Sequence, Tuple

import numpy as np

if __name__ == "__main__":  # TensorFlow without its start-up noise (vp3dkeras.quiet_tf)
    from vp3dkeras import quiet_tf  # noqa: F401

from vp3dkeras.cli_errors import run_main
from vp3dkeras.data.codec import PoseCodec, load_layout
from vp3dkeras.data.keypoint_formats import (TrackError, coco_to_h36m, fill_low_confidence,
                                             read_track)
from vp3dkeras.data.track_checks import check_track
from vp3dkeras.inference import load_lifter, predict_poses
from posecontract.layouts import COCO_17, H36M_17, LAYOUTS


def to_model_input(keypoints, scores, track_layout: str, model_layout: str):
    """A track in `track_layout` as the model's input convention `model_layout`.

    keypoints (T, J, 2) pixels, scores (T, J) or None. The same convention passes through;
    COCO-17 becomes Human3.6M-17 by `coco_to_h36m`; anything else is a ValueError.
    """
    if track_layout == model_layout:
        return np.asarray(keypoints, np.float32), scores
    if (track_layout, model_layout) == (COCO_17.name, H36M_17.name):
        return coco_to_h36m(keypoints, scores)
    raise ValueError(f"a {track_layout} track cannot feed a model that reads {model_layout}")


def model_conventions(model_path) -> Tuple[str, str]:
    """(input, output) keypoint conventions of a model: from its run directory's config.json
    (the directory itself, or the folder of a model file; `keypoints_in`, `keypoints_out`),
    else Human3.6M-17 for both. `--keypoints-in/--keypoints-out` override them."""
    model_path = pathlib.Path(model_path)
    run_dir = model_path if model_path.is_dir() else model_path.parent
    config = {}
    if (run_dir / "config.json").is_file():
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    out = config.get("keypoints_out") or H36M_17.name
    return config.get("keypoints_in") or out, out


def lift_track(lifter, keypoints, scores, width: float, height: float,
               layout: str = COCO_17.name, min_score: Optional[float] = None,
               flip_tta: bool = True, keypoints_in: str = H36M_17.name,
               keypoints_out: str = H36M_17.name):
    """Lifts one track.

    keypoints (T, J, 2) pixels in the convention `layout`; scores (T, J) or None; width,
    height: the image size in pixels. keypoints_in / keypoints_out: the model's input and
    output conventions; flip test-time augmentation mirrors each side with its own left/right
    pairs. Returns (poses_3d (T, J_out, 3) metres root-relative, the model's input
    (T, J_in, 2) pixels).
    """
    keypoints, scores = to_model_input(keypoints, scores, layout, keypoints_in)
    if scores is not None and min_score is not None:
        keypoints = fill_low_confidence(keypoints, scores, min_score)
    input_codec, output_codec = PoseCodec(keypoints_in), PoseCodec(keypoints_out)
    poses = predict_poses(lifter, input_codec.normalize_2d(keypoints, (width, height)),
                          output_codec, flip_tta, input_codec=input_codec)
    return poses, keypoints


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.infer",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=pathlib.Path,
                        help="run directory, .keras file, SavedModel folder or VideoPose3D "
                             ".bin checkpoint")
    parser.add_argument("--keypoints", type=pathlib.Path, required=True,
                        help="2D track, pixels: .json, .npz or an OpenPose JSON folder")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default=None,
                        help="keypoint convention of the track (default: detected)")
    parser.add_argument("--keypoints-in", choices=sorted(LAYOUTS), default=None,
                        help="the model's input convention (default: run config, h36m17)")
    parser.add_argument("--keypoints-out", choices=sorted(LAYOUTS), default=None,
                        help="the model's output convention (default: run config, h36m17)")
    parser.add_argument("--max-gap", type=int, default=None,
                        help="refuse more than this many missing frames in a row "
                             "(default: interpolate any gap)")
    parser.add_argument("--video", help="video name in a multi-video data_2d_custom_*.npz")
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
        track = read_track(args.keypoints, max_gap=args.max_gap, video=args.video)
    except TrackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    width = args.width or (track.image_size[0] if track.image_size else None)
    height = args.height or (track.image_size[1] if track.image_size else None)
    if width and height and (args.width or args.height):
        track = dataclasses.replace(track, image_size=(float(width), float(height)))
    print(track.report())
    if not width or not height:
        print(f"error: {args.keypoints}: the image size is needed: pass --width and --height",
              file=sys.stderr)
        return 2
    try:
        check_track(args.keypoints, track.keypoints, track.scores, width, height)
    except TrackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config_in, config_out = model_conventions(args.model)
    keypoints_in = args.keypoints_in or config_in
    keypoints_out = args.keypoints_out or config_out
    layout = args.layout or track.layout
    try:
        to_model_input(track.keypoints[:1], None, layout, keypoints_in)
    except ValueError as error:
        print(f"error: {args.keypoints}: {error}", file=sys.stderr)
        return 2
    poses, model_input = lift_track(load_lifter(args.model), track.keypoints, track.scores,
                                    float(width), float(height), layout, args.min_score,
                                    args.flip_tta, keypoints_in, keypoints_out)
    if not np.isfinite(poses).all():
        print(f"error: {args.model}: the model gave non-finite poses", file=sys.stderr)
        return 1
    out_layout = load_layout(keypoints_out)
    if poses.shape[1] != out_layout.num_joints:
        print(f"error: {args.model}: predicts {poses.shape[1]} joints, {keypoints_out} has "
              f"{out_layout.num_joints}; pass --keypoints-out", file=sys.stderr)
        return 2
    out = args.out or args.keypoints.with_suffix(".poses3d.npz")
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, poses_3d=poses, keypoints_2d=model_input.astype(np.float32),
             frames=track.frames, interpolated_frames=np.array(track.filled_frames, np.int64),
             joint_names=np.array(out_layout.names), joint_parents=np.array(out_layout.parents))
    tmp.replace(out)
    print(f"{len(poses)} frames lifted -> {out}")
    if args.png or args.gif:
        from vp3dkeras.visualize import save_pose_gif, save_pose_png

        if args.png:
            frame = min(max(args.frame, 0), len(poses) - 1)
            save_pose_png(poses[frame], out_layout, args.png, title=f"frame {frame}")
            print(f"picture -> {args.png}")
        if args.gif:
            save_pose_gif(poses, out_layout, args.gif, fps=args.fps)
            print(f"animation -> {args.gif}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
