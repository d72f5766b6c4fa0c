"""Write a cameras file (`data_cameras_<name>.json`) from a published calibration.

    python -m vp3dkeras.cameras_file CALIBRATION OUT [--name NAME]

CALIBRATION: a shipped calibration (`h36m`: Human3.6M; `humaneva15`: HumanEva-I) or a
calibration JSON in the form `vp3dkeras.data.published_cameras` documents (intrinsics per
camera, extrinsics per subject as a quaternion + camera centre or as R + T, the lens model
and the length unit). OUT: a folder (the file is named `data_cameras_<name>.json`, name defaulting to
the calibration's) or a `.json` path. The file says which lens model its distortion
coefficients follow; training and the semi-supervised projection use that model.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Optional, Sequence

if __name__ == "__main__":  # TensorFlow without its start-up noise (vp3dkeras.quiet_tf)
    from vp3dkeras import quiet_tf  # noqa: F401
from vp3dkeras.data.published_cameras import (load_calibration, shipped_calibrations,
                                              write_cameras_file)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.cameras_file",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("calibration",
                        help=f"calibration JSON, or one of {', '.join(shipped_calibrations())}")
    parser.add_argument("out", type=pathlib.Path, help="output folder or .json file")
    parser.add_argument("--name", help="dataset name in the file name (default: the "
                                       "calibration's name)")
    args = parser.parse_args(argv)
    try:
        calibration = load_calibration(args.calibration)
        path = args.out
        if path.suffix != ".json":
            path.mkdir(parents=True, exist_ok=True)
            path = path / f"data_cameras_{args.name or calibration['name']}.json"
        write_cameras_file(calibration, path)
    except (ValueError, KeyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    subjects = [key for key in calibration["extrinsics"]]
    print(f"{len(calibration['cameras'])} cameras x {len(subjects)} subjects "
          f"({calibration['lens_model']} lens model) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
