"""Image rendering throughput on one core: rendered frames per second at 640x480.

    python experiments/benchmark_rendering.py [MOCAP_DIR] [--frames 60] [--cameras 4]
        [--size 640x480] [--renderer auto|osmesa|egl] [--clip NAME_PART] [--wall]

A rendered frame is one camera's view of one frame: RGB, depth and person mask PNGs plus the
joints' visibility. Stages: setup (per camera: warp maps, the static floor and backdrop),
skin (posing the mesh), render (upload, OpenGL draw and read-back), warp (composite over
the static view, distortion warp, mask, visibility), write (three PNGs). Cameras are the
dataset's seeded cameras, all at the requested size (each with the usual distortion). The
clip is prepared by the library's per-clip chain (`synth.render.load_clip`, `ClipChain`:
what `process_clip` runs for every engine), whose CPU seconds per stage are printed too.
"""
import os

# One core: pin the BLAS/OpenMP pools and llvmpipe's rasteriser threads before they start.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import pathlib  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from synth.mocap_io import find_clips  # noqa: E402
from synth.render import (ClipChain, RenderSettings, clip_key_for, load_clip,  # noqa: E402
                          timed_stage)
from synth.rendering import ImageSettings, get_renderer, render_clip_images  # noqa: E402
from synth.resample import resample  # noqa: E402

DEFAULT_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "mocap" / "hdm05"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mocap_dir", type=pathlib.Path, nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--frames", type=int, default=60,
                        help="at least this many frames per camera (every k-th of the clip)")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--renderer", default="auto")
    parser.add_argument("--clip", default="throwBasketball", help="part of the clip's name")
    parser.add_argument("--wall", action="store_true",
                        help="time stages by wall clock (default: this process's CPU time, "
                             "which other load on a shared machine does not inflate)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    width, height = (int(v) for v in args.size.split("x"))

    path = next(p for p in find_clips(args.mocap_dir) if args.clip in p.name)
    chain_timings = {}
    clip_settings = RenderSettings(fps=50.0, avatars=("ben",), num_cameras=args.cameras)
    with timed_stage(chain_timings, "parse"):
        motion = load_clip(path, clip_settings)
    key = clip_key_for(motion)
    with timed_stage(chain_timings, "resample"):
        motion = resample(motion, clip_settings.fps)
    chain = ClipChain(motion, key, clip_settings, chain_timings)
    filmed = chain.film(0, image_sizes=((width, height),))
    chain.record(filmed)
    step = max(1, motion.num_frames // args.frames)
    settings = ImageSettings(frame_step=step, depth=True, mask=True, preview=False,
                             renderer=args.renderer)
    print("per-clip chain before images, CPU seconds: " + ", ".join(
        f"{stage} {seconds:.3f}" for stage, seconds in chain_timings.items()))

    with tempfile.TemporaryDirectory(prefix="render-bench-") as folder:
        run(args, filmed.clip, filmed.cameras, chain.appearance(0), settings,
            pathlib.Path(folder), width, height, path)


def run(args, clip, cameras, appearance, settings, out, width, height, path):
    clock = time.perf_counter if args.wall else time.process_time
    t0 = time.perf_counter()
    renderer = get_renderer(args.renderer)
    renderer.clock = clock
    setup = time.perf_counter() - t0
    # Warm-up: shader compilation and the first context happen once per process.
    render_clip_images(clip, cameras[:1], appearance, out / "warmup",
                       ImageSettings(frame_step=clip.positions.shape[0], preview=False,
                                     renderer=args.renderer), renderer)
    t0, c0 = time.perf_counter(), clock()
    result = render_clip_images(clip, cameras, appearance, out / "images", settings, renderer)
    wall, total = time.perf_counter() - t0, clock() - c0
    views = len(cameras) * len(result["image_frames"])
    timings = result["timings"]
    print(f"{path.name}: {len(result['image_frames'])} frames x {len(cameras)} cameras = "
          f"{views} rendered frames at {width}x{height}, renderer {renderer.platform}, "
          f"{len(clip.avatar.mesh().vertices)} mesh vertices; context creation {setup:.2f} s")
    print(f"{'wall' if args.wall else 'CPU'} seconds per stage (wall clock for everything: "
          f"{wall:.2f} s, {views / wall:.1f} frames/s)")
    print(f"{'stage':<10}{'seconds':>10}{'ms/frame':>10}{'frames/s':>10}")
    for stage in ("setup", "skin", "render", "warp", "write"):
        value = timings.get(stage, 0.0)
        print(f"{stage:<10}{value:>10.2f}{1000 * value / views:>10.1f}"
              f"{views / max(value, 1e-9):>10.1f}")
    other = total - sum(timings.values())
    print(f"{'other':<10}{other:>10.2f}{1000 * other / views:>10.1f}"
          "             (preview off; bookkeeping)")
    print(f"{'total':<10}{total:>10.2f}{1000 * total / views:>10.1f}{views / total:>10.1f}")


if __name__ == "__main__":
    main()
