"""Synth throughput on real mocap, one core: output frames per second by stage.

    python experiments/benchmark_synth.py [MOCAP_DIR] [--fps 50] [--cameras 4] [--limit N]

An output frame is one frame seen by one camera: its 2D keypoints, camera-space 3D joints
and joint rotations (what a lifting model trains on). Each clip goes through the library's
per-clip work, `synth.render.process_clip` (what both generation engines run), onto every
built-in capsule avatar; its `timings` give the CPU seconds of each stage (parse; resample;
per clip: source kinematics and rotations; per avatar: retarget, cameras, record; write).
Times are the process's CPU time (single-threaded, pinned to one core), so other load on a
shared machine does not inflate them.
"""
import os

# One core: pin the BLAS/OpenMP pools before NumPy starts them.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

from synth.avatars import get_avatars  # noqa: E402
from synth.mocap_io import find_clips  # noqa: E402
from synth.motion import MocapError  # noqa: E402
from synth.render import RenderSettings, process_clip  # noqa: E402

DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "mocap" / "hdm05"
GENERATE = ("resample", "per clip", "retarget", "cameras", "record")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mocap_dir", type=pathlib.Path, nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--fps", type=float, default=50.0)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    paths = find_clips(args.mocap_dir)[:args.limit]
    avatars = tuple(a.name for a in get_avatars())
    settings = RenderSettings(fps=args.fps, avatars=avatars, num_cameras=args.cameras)
    out_dir = pathlib.Path(tempfile.mkdtemp(prefix="synth-bench-"))
    seconds = {}
    output_frames = records = skipped = 0
    try:
        for path in paths:
            try:
                entries, _ = process_clip(path, out_dir, settings, resume=False,
                                          timings=seconds)
            except MocapError:
                skipped += 1
                continue
            records += len(entries)
            output_frames += sum(e["num_frames"] * e["num_cameras"] for e in entries)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)

    generate = sum(seconds.get(k, 0.0) for k in GENERATE)
    print(f"{len(paths)} clips from {args.mocap_dir} ({skipped} unusable), {args.fps:g} fps,"
          f" {len(avatars)} avatars x {args.cameras} cameras = {records} records,"
          f" {output_frames} output frames (one camera's 2D + 3D + rotations)")
    print("times: CPU time of this process")
    print(f"{'stage':<12}{'seconds':>10}{'output frames/s':>18}")
    for stage, value in seconds.items():
        print(f"{stage:<12}{value:>10.2f}{output_frames / max(value, 1e-9):>18,.0f}")
    print(f"{'generate':<12}{generate:>10.2f}{output_frames / max(generate, 1e-9):>18,.0f}"
          "   (resample + per clip + retarget + cameras + record)")
    total = sum(seconds.values())
    print(f"{'end to end':<12}{total:>10.2f}{output_frames / max(total, 1e-9):>18,.0f}"
          "   (parse + generate + write)")


if __name__ == "__main__":
    main()
