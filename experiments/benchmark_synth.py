"""Synth throughput on real mocap, one core: output frames per second by stage.

    python experiments/benchmark_synth.py [MOCAP_DIR] [--fps 50] [--cameras 4] [--limit N]
        [--write]

An output frame is one frame seen by one camera: its 2D keypoints, camera-space 3D joints
and joint rotations (what a lifting model trains on). Parsing is timed separately from the
generation (resample; per clip: source kinematics and rotations; per avatar: retarget,
cameras, record); `--write` also times writing the npz files.
Times are the process's CPU time (single-threaded, pinned to one core), so other load on a
shared machine does not inflate them; `--wall` uses wall-clock time instead.
"""
import os

# One core: pin the BLAS/OpenMP pools before NumPy starts them.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

from synth import dataset as ds  # noqa: E402
from synth.avatars import get_avatars  # noqa: E402
from synth.cameras import place_cameras  # noqa: E402
from synth.mocap_io import find_clips, load_motion  # noqa: E402
from synth.record import build_record, local_rotation_arrays  # noqa: E402
from synth.render import canonical_indices, clip_key_for, clip_rng  # noqa: E402
from synth.resample import resample  # noqa: E402
from synth.retarget import Retargeter  # noqa: E402

DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "mocap" / "hdm05"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mocap_dir", type=pathlib.Path, nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--fps", type=float, default=50.0)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="also write the npz records")
    parser.add_argument("--wall", action="store_true", help="wall-clock instead of CPU time")
    args = parser.parse_args()
    clock = time.perf_counter if args.wall else time.process_time
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    paths = find_clips(args.mocap_dir)[:args.limit]
    avatars = get_avatars()
    seconds = defaultdict(float)
    motions = []
    t0 = clock()
    for path in paths:
        motions.append(load_motion(path))
    seconds["parse"] = clock() - t0

    out_dir = pathlib.Path(tempfile.mkdtemp(prefix="synth-bench-"))
    output_frames = records = source_frames = 0
    for motion in motions:
        t = clock()
        motion = resample(motion, args.fps)
        key = clip_key_for(motion)
        t1 = clock()
        retargeter = Retargeter(motion, canonical_indices(motion, None))
        rotations = local_rotation_arrays(motion)
        seconds["resample"] += t1 - t
        seconds["per clip"] += clock() - t1
        source_frames += motion.num_frames
        for avatar_index, avatar in enumerate(avatars):
            t = clock()
            clip = retargeter(avatar)
            t1 = clock()
            cameras = place_cameras(clip.positions, args.cameras,
                                    rng=clip_rng(0, key, avatar_index))
            t2 = clock()
            record = build_record(motion, clip, cameras, key, rotations)
            t3 = clock()
            seconds["retarget"] += t1 - t
            seconds["cameras"] += t2 - t1
            seconds["record"] += t3 - t2
            if args.write:
                ds.write_record(ds.record_path(out_dir, key, avatar.name), record)
                seconds["write"] += clock() - t3
            output_frames += motion.num_frames * len(cameras)
            records += 1

    generate = sum(v for k, v in seconds.items() if k not in ("parse", "write"))
    print(f"{len(paths)} clips from {args.mocap_dir}, {source_frames} frames at {args.fps:g} fps,"
          f" {len(avatars)} avatars x {args.cameras} cameras = {records} records,"
          f" {output_frames} output frames (one camera's 2D + 3D + rotations)")
    print(f"times: {'wall clock' if args.wall else 'CPU time of this process'}")
    print(f"{'stage':<12}{'seconds':>10}{'output frames/s':>18}")
    for stage, value in seconds.items():
        print(f"{stage:<12}{value:>10.2f}{output_frames / max(value, 1e-9):>18,.0f}")
    print(f"{'generate':<12}{generate:>10.2f}{output_frames / generate:>18,.0f}"
          "   (resample + per clip + retarget + cameras + record)")
    total = generate + seconds["parse"] + seconds.get("write", 0.0)
    print(f"{'end to end':<12}{total:>10.2f}{output_frames / total:>18,.0f}"
          "   (parse + generate" + (" + write)" if args.write else ")"))


if __name__ == "__main__":
    main()
