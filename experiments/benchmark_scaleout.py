"""Scale-out measurements for docs/SCALING.md: generation per core, shard writing, training
samples/s per worker (2 local JAX workers against one process).

    python experiments/benchmark_scaleout.py [--clips 8] [--out DIR] [--skip-images]
    python experiments/benchmark_scaleout.py --sampler-only DIR   # input pipeline, on DIR's
                                                                  # dataset/ and shards/

Generation runs the library's per-clip work (`synth.render.render_dataset`, one process),
timed by the process's CPU time, so it is per core whatever else the machine runs; the image
pass renders every 5th frame at half the camera's size (OSMesa). Training runs
`python -m vp3dkeras.train` (JAX backend) once in one process and once as two workers on
127.0.0.1, and takes samples/s from the second epoch's wall time (the first compiles).
The input pipeline (`WindowSampler`, 243-frame windows, batches of 1024, records cached) is
timed by CPU time on the folder and on its shards. Prints one JSON object.
"""
import argparse
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
HDM05 = ROOT.parent / "shared" / "mocap" / "hdm05"


def generate(clips, out, images):
    """CPU seconds and camera frames of rendering `clips` (a folder) into `out`, in a child
    process (OpenGL must not share a process with anything that imports TensorFlow)."""
    code = f"""
import json, pathlib, time
from synth.render import RenderSettings, render_dataset
from synth.rendering import ImageSettings
images = ImageSettings(scale=0.5, frame_step=5, preview=False) if {images} else None
settings = RenderSettings(fps=50.0, avatars=("ava",), num_cameras=4, images=images)
start = time.process_time()
summary = render_dataset(pathlib.Path({str(clips)!r}), pathlib.Path({str(out)!r}), settings,
                         progress=False)
print(json.dumps({{"cpu_s": time.process_time() - start, "seconds": summary["seconds"],
                  "camera_frames": summary["camera_frames"], "clips": summary["done_clips"]}}))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", LP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                            capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def train(dataset, out, workers, windows):
    """Epoch-2 samples/s of `workers` processes on `windows` windows per epoch (a multiple
    of the batch, so one process and several see the same full batches)."""
    args = ["--dataset", str(dataset), "--split", "random", "--epochs", "2",
            "--channels", "256", "--filter-widths", "3,3,3", "--batch-size", "512",
            "--max-windows-per-epoch", str(windows), "--val-windows", "0", "--quiet"]
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=str(ROOT))
    if workers == 1:
        commands = [[sys.executable, "-m", "vp3dkeras.train", "--out", str(out),
                     "--distribute", "none"] + args]
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        commands = [[sys.executable, "-m", "vp3dkeras.train", "--out", str(out),
                     "--distribute", "multiworker", "--coordinator", f"127.0.0.1:{port}",
                     "--num-workers", str(workers), "--worker-id", str(i)] + args
                    for i in range(workers)]
    processes = [subprocess.Popen(c, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for c in commands]
    for p in processes:
        if p.wait() != 0:
            raise SystemExit(f"training with {workers} workers failed")
    history = json.loads((out / "history.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    samples = summary["steps_per_epoch"] * summary["batch_size"]
    assert samples == summary["windows_per_epoch"] == windows, summary
    return {"workers": workers, "epoch2_s": history[1]["seconds"], "samples": samples,
            "samples_per_s": samples / history[1]["seconds"],
            "samples_per_s_per_worker": samples / history[1]["seconds"] / workers}


def sampler_rate(work):
    """243-frame windows cut per CPU second, on the folder and on the shards, in a child
    process with one BLAS thread."""
    code = f"""
import json, time
from vp3dkeras.data import WindowSampler, open_split
out = {{}}
for name in ("dataset", "shards"):
    train, _ = open_split({str(work)!r} + "/" + name, "random")
    sampler = WindowSampler(train, (121, 121), batch_size=1024, seed=0)
    sampler.batch(0)
    start = time.process_time()
    for number in range(1, 9):
        sampler.batch(number)
    out[name] = 8 * 1024 / (time.process_time() - start)
print(json.dumps(out))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                            capture_output=True, text=True)
    return {"windows243_per_cpu_s": json.loads(result.stdout.strip().splitlines()[-1])}


def weight_difference(run_a, run_b):
    """Largest absolute difference between the final weights of two runs (child process)."""
    code = f"""
import keras, numpy as np, vp3dkeras.models
a = keras.saving.load_model({str(run_a / "model.keras")!r}).get_weights()
b = keras.saving.load_model({str(run_b / "model.keras")!r}).get_weights()
print(max(float(np.abs(x - y).max()) for x, y in zip(a, b)))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True,
                            capture_output=True, text=True)
    return float(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--skip-images", action="store_true")
    parser.add_argument("--sampler-only", type=pathlib.Path, default=None, metavar="DIR",
                        help="only time the input pipeline on an earlier run's --out DIR")
    args = parser.parse_args()
    if args.sampler_only:
        print(json.dumps({"sampler": sampler_rate(args.sampler_only)}, indent=1))
        return
    work = args.out or pathlib.Path(tempfile.mkdtemp(prefix="scaleout-bench-"))
    clips = work / "mocap"
    clips.mkdir(parents=True, exist_ok=True)
    amcs = sorted(HDM05.glob("HDM_bd_*.amc"))[:: max(1, 60 // args.clips)][: args.clips]
    shutil.copy(HDM05 / "HDM_bd.asf", clips)
    for amc in amcs:
        shutil.copy(amc, clips)
    results = {"clips": len(amcs)}
    plain = generate(clips, work / "dataset", images=False)
    results["generation"] = dict(plain, camera_frames_per_core_s=plain["camera_frames"]
                                 / plain["cpu_s"])
    if not args.skip_images:
        with_images = generate(clips, work / "dataset_images", images=True)
        # Images are rendered for every 5th frame: frames per second counts rendered ones.
        rendered = with_images["camera_frames"] / 5
        results["generation_images"] = dict(
            with_images, rendered_frames=rendered,
            rendered_frames_per_core_s=rendered / with_images["cpu_s"],
            camera_frames_per_core_s=with_images["camera_frames"] / with_images["cpu_s"])
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vp3dkeras.data.shards", str(work / "dataset"),
                    "--out", str(work / "shards"), "--quiet"], check=True, cwd=ROOT,
                   env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2"),
                   capture_output=True)
    index = json.loads((work / "shards" / "shards.json").read_text())
    records = sum((work / "dataset" / r["file"]).stat().st_size for r in index["records"])
    results["shards"] = {"seconds_incl_tf_import": time.perf_counter() - started,
                         "records": len(index["records"]), "record_bytes": records,
                         "shard_bytes": sum(s["bytes"] for s in index["shards"])}
    results["sampler"] = sampler_rate(work)
    windows = sum(r["num_frames"] * r["num_cameras"] for r in index["manifest"]["records"])
    windows = int(0.7 * windows) // 512 * 512  # below the train side's windows (random split)
    results["training"] = [train(work / "shards", work / f"run{w}", w, windows)
                           for w in (1, 2)]
    results["weights_max_abs_diff_1_vs_2_workers"] = weight_difference(work / "run1",
                                                                       work / "run2")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
