"""Speed of streaming lifting: the causal model fed frame by frame, against its limits.

For each receptive field (27, 81, 243 frames: widths 3x3, 3x4, 3x5) and width (256, 1024
channels) of a causal `TemporalModel` (random weights: speed does not depend on them) prints:
- latency per frame of one stream, p50 and p99 (`StreamPool`-style step with XLA, NumPy in and
  out, i.e. what `python -m vp3dkeras.stream` pays per model call);
- the CPU time of the process per frame of that stream, all threads together: a figure
  the other jobs on a shared machine change much less than the wall-clock latency;
- throughput in frames/s for 1, 8 and 64 streams stepped together (B / median step time);
- the naive alternative in the same run: the offline model (compiled) over a sliding window
  of the last `receptive_field()` frames for each new frame, and the speed-up of streaming
  over it; also the strided single-frame twin on the same window, a smarter offline baseline
  that computes only the frames one output needs;
- the memory-bandwidth limit of batch 1: the bytes of weights one step reads (batch norm
  folded: kernels and biases, float32) divided by a memory bandwidth measured just before that
  model's latency (a 256 MiB NumPy copy, counted as read + write bytes; best of 5), so both
  see the same load on a shared machine, and p99 / limit. The
  limit binds when the weights do not fit in the caches (1024 channels: 34-68 MB); 256-channel
  weights (2-4 MB) stay cached, and their latency is set by per-call overhead instead.

At batch 1 the sliding window also reads every weight once per new frame, so its cost over
streaming grows with the frames it recomputes: small at 27 frames, large at 243.

The machine is shared: the load average is printed with the results. Every time is the wall
clock of the step including the transfer of the pose and the new state back to NumPy.

    python experiments/benchmark_streaming.py [--frames 27 81 243] [--channels 256 1024]
        [--steps 300] [--out experiments/results/streaming_benchmark.md]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from vp3dkeras.models import StreamingTemporalModel, TemporalModel
from vp3dkeras.stream_pool import keras_stream_step

JOINTS = 17
WIDTHS = {27: (3, 3, 3), 81: (3, 3, 3, 3), 243: (3, 3, 3, 3, 3)}
STREAMS = (1, 8, 64)


def memory_bandwidth(mib: int = 256, repeats: int = 5) -> float:
    """Bytes/s of a large NumPy copy (read + write), best of `repeats`."""
    source = np.ones(mib * 2 ** 18, np.float32)
    target = np.empty_like(source)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best


def step_times(step, batch: int, state_size: int, steps: int, rng):
    """(seconds per call of a streaming step for `batch` streams after a warm-up, process CPU
    seconds of those calls)."""
    frames = rng.normal(0, 0.3, (steps + 10, batch, JOINTS, 2)).astype(np.float32)
    state = np.zeros((batch, state_size), np.float32)
    fresh = np.ones(batch, bool)
    times = []
    for t, frame in enumerate(frames):
        if t == 10:  # the first calls compile
            cpu_start = time.process_time()
        start = time.perf_counter()
        _, state = step(frame, state, fresh)
        if t >= 10:
            times.append(time.perf_counter() - start)
        fresh = np.zeros(batch, bool)
    return np.array(times), time.process_time() - cpu_start


def window_times(model, steps: int, rng) -> np.ndarray:
    """Seconds per new frame when `model` (compiled) lifts the window of the last
    receptive_field() frames, batch 1."""
    predict = tf.function(lambda x: model(x, training=False))
    window = rng.normal(0, 0.3, (1, model.receptive_field(), JOINTS, 2)).astype(np.float32)
    times = []
    for t in range(steps + 2):
        start = time.perf_counter()
        predict(window).numpy()
        if t >= 2:
            times.append(time.perf_counter() - start)
    return np.array(times)


def benchmark(frames: int, channels: int, steps: int, rng) -> dict:
    model = TemporalModel(JOINTS, 2, JOINTS, WIDTHS[frames], causal=True, channels=channels)
    model.build((None, None, JOINTS, 2))
    streaming = StreamingTemporalModel.from_temporal_model(model)
    step = keras_stream_step(streaming)
    row = {"frames": frames, "channels": channels, "weight_mb": streaming.weight_bytes() / 1e6}
    # Measured right before the latency on this shared machine, so both see the same load.
    bandwidth = memory_bandwidth()
    row["bandwidth_gbs"] = bandwidth / 1e9
    single, cpu = step_times(step, 1, streaming.state_size, steps, rng)
    row["cpu_ms"] = cpu / steps * 1e3
    row["p50_ms"], row["p99_ms"] = np.percentile(single, [50, 99]) * 1e3
    for batch in STREAMS:
        times = single if batch == 1 else step_times(
            step, batch, streaming.state_size, max(steps // batch, 20), rng)[0]
        row[f"fps_{batch}"] = batch / np.median(times)
    naive_steps = max(5, steps // (10 if channels > 256 else 3))
    row["naive_ms"] = np.median(window_times(model, naive_steps, rng)) * 1e3
    row["twin_ms"] = np.median(window_times(model.single_frame_twin(), naive_steps, rng)) * 1e3
    row["speedup"] = row["naive_ms"] / row["p50_ms"]
    row["speedup_twin"] = row["twin_ms"] / row["p50_ms"]
    row["limit_ms"] = streaming.weight_bytes() / bandwidth * 1e3
    row["p99_over_limit"] = row["p99_ms"] / row["limit_ms"]
    return row


COLUMNS = [("frames", "frames", "{:d}"), ("channels", "channels", "{:d}"),
           ("weight_mb", "weights MB", "{:.1f}"), ("p50_ms", "p50 ms", "{:.2f}"),
           ("p99_ms", "p99 ms", "{:.2f}"), ("cpu_ms", "CPU ms", "{:.2f}"),
           ("fps_1", "fps 1 stream", "{:.0f}"),
           ("fps_8", "fps 8 streams", "{:.0f}"), ("fps_64", "fps 64 streams", "{:.0f}"),
           ("naive_ms", "sliding window ms", "{:.2f}"), ("speedup", "speed-up", "{:.1f}x"),
           ("twin_ms", "strided twin ms", "{:.2f}"), ("speedup_twin", "speed-up vs twin",
                                                      "{:.1f}x"),
           ("bandwidth_gbs", "bandwidth GB/s", "{:.1f}"),
           ("limit_ms", "bandwidth limit ms", "{:.2f}"), ("p99_over_limit", "p99 / limit",
                                                          "{:.2f}")]


def table(rows) -> str:
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[27, 81, 243],
                        choices=sorted(WIDTHS))
    parser.add_argument("--channels", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--steps", type=int, default=300, help="timed frames per stream")
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow intra-op threads (0: one per core)")
    parser.add_argument("--out", type=pathlib.Path, help="also write the table (markdown)")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    rows = []
    for channels in args.channels:
        for frames in args.frames:
            rows.append(benchmark(frames, channels, args.steps, rng))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    header = (f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before and "
              f"{os.getloadavg()[0]:.1f} after; memory bandwidth: NumPy copy (read + write), "
              f"best of 5, before each model; TensorFlow {tf.__version__}, XLA step, "
              f"intra-op threads "
              f"{args.threads or os.cpu_count()}")
    report = header + "\n\n" + table(rows)
    print("\n" + report)
    if args.out:
        args.out.write_text(report + "\n")


if __name__ == "__main__":
    main()
