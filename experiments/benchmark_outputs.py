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
                if not (kind == "folder" and repeat == args.repeats - 1):
                    shutil.rmtree(root)
        split = shard_work(pathlib.Path(folder) / f"folder{args.repeats - 1}" / "d",
                           pathlib.Path(folder) / "split")
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
    megabytes = split["bytes"] / 1e6
    for stage, label in (("encode", "workers: Example encoding"),
                         ("frame", "workers: TFRecord framing"),
                         ("append", "driver: append + write")):
        print(f"{label:<36}{split[stage]:>7.2f} s{megabytes / split[stage]:>10,.0f} MB/core-s"
              f"{frames / split[stage]:>10,.0f} camera frames/core-s")


def shard_work(dataset: pathlib.Path, out: pathlib.Path) -> dict:
    """CPU seconds of the job shards' stages over a dataset's records, in this process
    (no rendering here, so no OpenGL beside anything): what each worker does per clip
    (encode, frame) and what the driver does (append to shards, write them)."""
    import time

    sys.path.insert(0, str(REPO))
    from posecontract.dataset_format import load_record
    from posecontract.shard_format import ShardWriter, encode_record, framed_record
    from synth.storage import LocalStore

    records = [(p.relative_to(dataset).as_posix(), load_record(p))
               for p in sorted((dataset / "clips").glob("*.npz"))]
    encode_record("warm-up", records[0][1])
    start = time.process_time()
    payloads = [(f, encode_record(f, r)) for f, r in records]
    encode = time.process_time() - start
    start = time.process_time()
    framed = [framed_record(f, p) for f, p in payloads]
    frame = time.process_time() - start
    start = time.process_time()
    writer = ShardWriter(LocalStore(out).write_bytes)
    for record in framed:
        writer.add_framed(*record)
    writer.finish()
    append = time.process_time() - start
    return {"encode": encode, "frame": frame, "append": append,
            "bytes": sum(len(p) for _, p in payloads)}


if __name__ == "__main__":
    main()
