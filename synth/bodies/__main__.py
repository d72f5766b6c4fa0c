"""Build Anny bodies into a cache folder (a process of its own: PyTorch + NVIDIA Warp).

    python -m synth.bodies build --cache DIR [--count 100] [--seed 0] [--children]
    python -m synth.bodies build --cache DIR --specs SPECS.json   # a JSON list of BodySpecs
    python -m synth.bodies build --cache DIR --spec '{"sex": "male", "age": 30,
                                                      "stature": 1.80, "bmi": 24}'

Prints the body files (one per line). Bodies already in the cache are not rebuilt. Errors
(an invalid or unbuildable body, a missing `anny` package) are one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Optional, Sequence

from .population import BodySpec, sample_bodies


def _specs(args) -> list:
    if args.spec is not None:
        return [BodySpec.from_json(json.loads(args.spec))]
    if args.specs is not None:
        try:
            data = json.loads(pathlib.Path(args.specs).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{args.specs}: cannot read body specs ({error})") from None
        if not isinstance(data, list):
            raise ValueError(f"{args.specs}: body specs must be a JSON list")
        return [BodySpec.from_json(d) for d in data]
    return sample_bodies(args.count, args.seed, children=args.children)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.bodies", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build bodies into a cache folder")
    build.add_argument("--cache", type=pathlib.Path, required=True, help="body cache folder")
    build.add_argument("--count", type=int, default=100, help="bodies to sample (100)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--children", action="store_true", help="include children (5-17 y)")
    build.add_argument("--specs", default=None, help="JSON file: a list of body specs")
    build.add_argument("--spec", default=None, help="one body spec as JSON")
    args = parser.parse_args(argv)
    try:
        specs = _specs(args)
        try:
            from .anny_build import build_bodies
            import anny  # noqa: F401
        except ImportError:
            raise ValueError("Anny bodies need the anny package: pip install anny (or "
                             "bash scripts/setup_env.sh); --bodies capsule needs none") from None
        # Warp prints its banner on stdout, where this command lists the body files.
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        try:
            paths = build_bodies(specs, args.cache)
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
    except (ValueError, json.JSONDecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
