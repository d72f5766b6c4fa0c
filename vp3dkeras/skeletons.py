"""Measure the skeletons (each subject's mean bone lengths) of a dataset's 3D into a JSON file
for `python -m vp3dkeras.train --skeletons FILE` (`vp3dkeras.data.skeletons`).

    python -m vp3dkeras.skeletons DATASET --out FILE [--split SPLIT --side train|test]
        [--vp3d-name NAME] [--keypoints-out CONVENTION] [--layout L] [--image-size WxH]

DATASET is a synth dataset or a folder of VideoPose3D-format files (e.g. ../shared/real/
humaneva with `--vp3d-name humaneva15 --split subjects:train=Train/S1,Train/S2,Train/S3;
test=Validate/S1,Validate/S2,Validate/S3`: the benchmark's training subjects only). Without
--split every subject is measured. Prints one line per subject (millimetres) and exits 2 with
one line for bad input.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Optional, Sequence

from vp3dkeras.cli_errors import UsageError, run_main
from vp3dkeras.data.skeletons import bone_names, measure_skeletons, save_skeletons
from vp3dkeras.data.sources import open_source, split_source
from vp3dkeras.train_config import parse_image_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.skeletons",
                                     description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("dataset", help="synth dataset or folder of VideoPose3D-format files")
    add("--out", type=pathlib.Path, required=True, help="skeletons JSON file to write")
    add("--split", help="split name or subjects:train=..;test=.. (default: every subject)")
    add("--side", choices=["train", "test"], default="train",
        help="which side of --split to measure (default train)")
    add("--vp3d-name", help="VideoPose3D file name part (data_3d_<name>.npz)")
    add("--keypoints", default="gt", help="2D source of VideoPose3D files (default gt)")
    add("--keypoints-out", help="keypoint convention of a synth dataset's 3D")
    add("--layout", help="the data's joint layout (VideoPose3D files; default: metadata)")
    add("--image-size", type=parse_image_size, help="WxH for VideoPose3D data without cameras")
    add("--estimate-cameras", action="store_true",
        help="VideoPose3D data without cameras (accepted for symmetry with train; bone "
        "lengths do not depend on the cameras)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        source = open_source(args.dataset, vp3d_name=args.vp3d_name, keypoints=args.keypoints,
                             layout=args.layout, image_size=args.image_size,
                             keypoints_out=args.keypoints_out,
                             estimate_cameras=args.estimate_cameras)
        if args.split:
            train, test = split_source(source, args.dataset, args.split)
            source = train if args.side == "train" else test
        if not len(source):
            raise ValueError("no sequences to measure")
        source.validate()
        skeletons = measure_skeletons(source)
    except (ValueError, KeyError, FileNotFoundError) as error:
        message = str(error)
        raise UsageError(message if message.startswith(str(args.dataset))
                         else f"{args.dataset}: {message}") from None
    layout = source.codec.layout
    what = f"{args.dataset}" + (f", {args.side} side of {args.split}" if args.split else "")
    try:
        save_skeletons(args.out, layout, skeletons, what)
    except (ValueError, OSError) as error:
        raise UsageError(f"{args.out}: cannot write the skeletons ({error})"
                         if not str(error).startswith(str(args.out)) else str(error)) from None
    names = bone_names(layout)
    child = [c for _, c in layout.bones()]
    for subject, lengths in skeletons.items():
        print(f"{subject}: " + ", ".join(f"{n} {1000 * lengths[k]:.0f}"
                                         for n, k in zip(names, child)))
    print(f"{len(skeletons)} skeletons ({layout.name}; above in mm, written in metres) -> "
          f"{args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
