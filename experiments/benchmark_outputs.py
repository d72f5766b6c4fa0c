"""What the output path costs a generation run: a folder, a URL (fsspec, `file://`), and a
folder plus the job's TFRecord shards (`--shards-out`), on one core.

    python experiments/benchmark_outputs.py [MOCAP_DIR] [--clips 16] [--repeats 2]

Each run is `synth.render.render_dataset` of the first `--clips` clips of MOCAP_DIR (default
HDM05 actor bd) with the five capsule avatars, 4 cameras, 50 fps, in a fresh process pinned
to one core, into a fresh temporary folder; the figure is that process's CPU time for the
run (robust to other load on a shared machine), the best of `--repeats`.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO.parent / "shared" / "mocap" / "hdm05"

RUN = """
import json, os, pathlib, sys, time
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
from synth.render import RenderSettings, render_dataset
mocap, root, kind = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
out = (root / "d").as_uri() if kind == "url" else root / "d"
shards = root / "s" if kind == "shards" else None
start = time.process_time()
s = render_dataset(mocap, out, RenderSettings(fps=50.0, num_cameras=4), progress=False,
                   shards_out=shards)
size = sum(p.stat().st_size for p in (root / "s").glob("*.tfrecord")) if shards else 0
print(json.dumps({"cpu": time.process_time() - start, "camera_frames": s["camera_frames"],
                  "records": s["records"], "shard_bytes": size}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mocap_dir", type=pathlib.Path, nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="outputs-bench-") as folder:
        mocap = pathlib.Path(folder) / "mocap"
        mocap.mkdir()
        clips = sorted(args.mocap_dir.glob("HDM_bd_*.amc"))[:args.clips]
        shutil.copy(args.mocap_dir / "HDM_bd.asf", mocap)
        for clip in clips:
            shutil.copy(clip, mocap)
        best = {}
        for repeat in range(args.repeats):
            for kind in ("folder", "url", "shards"):
                root = pathlib.Path(folder) / f"{kind}{repeat}"
                root.mkdir()
                result = json.loads(subprocess.run(
                    [sys.executable, "-c", RUN, str(mocap), str(root), kind], env=env,
                    check=True, capture_output=True, text=True).stdout)
                if kind not in best or result["cpu"] < best[kind]["cpu"]:
                    best[kind] = result
                shutil.rmtree(root)
    frames = best["folder"]["camera_frames"]
    print(f"{len(clips)} clips, {best['folder']['records']} records, {frames} camera frames; "
          f"CPU seconds, best of {args.repeats}")
    for kind, label in (("folder", "--out folder"), ("url", "--out file:// URL (fsspec)"),
                        ("shards", "--out folder --shards-out folder")):
        cpu = best[kind]["cpu"]
        print(f"{label:<36}{cpu:>7.2f} s{frames / cpu:>10,.0f} camera frames/core-s")
    extra = best["shards"]["cpu"] - best["folder"]["cpu"]
    print(f"shards alone: {extra:.2f} s for {best['shards']['shard_bytes'] / 1e6:.1f} MB "
          f"of shards, {frames / max(extra, 1e-9):,.0f} camera frames/core-s")


if __name__ == "__main__":
    main()
