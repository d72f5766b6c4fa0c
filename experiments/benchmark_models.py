"""Size, cost and speed of the temporal models next to the paper's numbers.

For each receptive field (27, 81, 243 frames: filter widths 3x3, 3x4, 3x5) prints:
- trainable parameters and MFLOPs per output frame (matrix multiplications only, amortised
  over a long sequence, 2 FLOPs per multiply-add: the paper's 17.09 / 25.48 / 33.87);
- inference frames/s on one 10,000-frame sequence (compiled predict step, jit_compile off and
  on), the GFLOP/s this achieves and its ratio to a 4096x4096 float32 matmul timed in the same
  run;
- training samples/s (batch 256, AMSGrad) of the strided single-frame twin and, up to 81
  frames, of the layer-by-layer model on the same windows, and the twin's speed-up.

Timings are the best of a few repeats; on a shared machine they are noisy.

    python experiments/benchmark_models.py [--channels 1024] [--frames 27 81 243] [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from vp3dkeras.models import TemporalModel

JOINTS = 17
WIDTHS = {27: (3, 3, 3), 81: (3, 3, 3, 3), 243: (3, 3, 3, 3, 3)}
PAPER_MFLOPS = {27: 17.09, 81: 25.48, 243: 33.87}


def layer_mflops(model: TemporalModel) -> list:
    """(layer name, MFLOPs per output frame) for every convolution of the dilated model."""
    c, widths = model.channels, model.filter_widths
    macs = [("expand", model.num_joints_in * model.in_features * widths[0] * c)]
    for i, width in enumerate(widths[1:]):
        macs += [(f"block_{i}.dilated", width * c * c), (f"block_{i}.pointwise", c * c)]
    macs.append(("shrink", c * model.num_joints_out * 3))
    return [(name, 2 * n / 1e6) for name, n in macs]


def best_time(fn, repeats: int) -> tuple:
    """(best, median) seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def matmul_gflops(repeats: int) -> float:
    a = keras.random.normal((4096, 4096), seed=0)
    step = _compiled(lambda x: keras.ops.matmul(x, x))
    seconds, _ = best_time(lambda: keras.ops.convert_to_numpy(step(a)[:1, :1]), repeats)
    return 2 * 4096 ** 3 / seconds / 1e9


def _compiled(fn, jit_compile=False):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit_compile)
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def inference_fps(model: TemporalModel, frames: int, jit_compile: bool, repeats: int) -> float:
    """Output frames/s predicting one sequence of `frames` output frames."""
    left, right = model.total_pad()
    x = np.random.default_rng(0).normal(size=(1, frames + left + right, JOINTS, 2))
    x = keras.ops.convert_to_tensor(x.astype("float32"))
    model.compile(jit_compile=jit_compile)
    seconds, _ = best_time(lambda: model.predict_on_batch(x), repeats)
    return frames / seconds


def training_samples_per_s(model, batch: int, steps: int, jit_compile: bool) -> float:
    """Samples/s of `train_on_batch` on windows of one receptive field, one target frame."""
    rf = model.receptive_field()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, rf, JOINTS, 2)).astype("float32")
    y = rng.normal(size=(batch, 1, JOINTS, 3)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3, amsgrad=True), loss="mse",
                  jit_compile=jit_compile)
    seconds, _ = best_time(lambda: model.train_on_batch(x, y), steps)
    return batch / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--frames", type=int, nargs="+", default=sorted(WIDTHS),
                        choices=sorted(WIDTHS), help="receptive fields to benchmark")
    parser.add_argument("--sequence", type=int, default=10_000, help="inference frames")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--layerwise-max", type=int, default=81,
                        help="largest receptive field to train layer by layer (slow)")
    parser.add_argument("--train-jit", action="store_true", help="XLA for training too")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no training")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    steps = 3

    print(f"backend {keras.backend.backend()}, keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs, channels {args.channels}, sequence {args.sequence} frames")
    matmul = matmul_gflops(repeats)
    print(f"4096x4096 float32 matmul: {matmul:.1f} GFLOP/s")
    print()

    rows = []
    for frames in args.frames:
        model = TemporalModel(JOINTS, 2, JOINTS, WIDTHS[frames], channels=args.channels)
        model.build((None, None, JOINTS, 2))
        layers = layer_mflops(model)
        mflops = sum(m for _, m in layers)
        if frames == 27:
            rounded = " + ".join(f"{m:.3f}" for _, m in layers)
            print(f"27-frame MFLOPs by layer: {rounded} = "
                  f"{sum(round(m, 3) for _, m in layers):.3f} (exact {mflops:.4f})")
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        row = {"frames": frames, "params": params, "mflops": mflops}
        for jit in (False, True):
            fps = inference_fps(model, args.sequence, jit, repeats)
            row[f"fps_jit{int(jit)}"] = fps
            row[f"gflops_jit{int(jit)}"] = fps * mflops / 1e3
        if not args.quick:
            row["twin"] = training_samples_per_s(model.single_frame_twin(), args.batch, steps,
                                                 args.train_jit)
            if frames <= args.layerwise_max:
                row["layerwise"] = training_samples_per_s(model, args.batch, steps,
                                                          args.train_jit)
        rows.append(row)
        print(_format(row, matmul), flush=True)

    print()
    print("| frames | params | MFLOPs/frame (paper) | infer fps, no jit | infer fps, jit | "
          "GFLOP/s (% of matmul) | train samples/s twin | layer-by-layer | twin speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        best = max(row["gflops_jit0"], row["gflops_jit1"])
        twin, layerwise = row.get("twin"), row.get("layerwise")
        print(f"| {row['frames']} | {row['params'] / 1e6:.2f}M | {row['mflops']:.2f} "
              f"({PAPER_MFLOPS[row['frames']]}) | {row['fps_jit0']:,.0f} | "
              f"{row['fps_jit1']:,.0f} | {best:.1f} ({100 * best / matmul:.0f}%) | "
              f"{_num(twin)} | {_num(layerwise)} | "
              f"{_num(twin / layerwise if twin and layerwise else None, '.2f')}x |")


def _num(value, fmt=",.0f"):
    return "-" if value is None else format(value, fmt)


def _format(row, matmul):
    text = (f"{row['frames']:>3} frames: {row['params']:,} params, {row['mflops']:.2f} MFLOPs"
            f"/frame; inference {row['fps_jit0']:,.0f} fps ({row['gflops_jit0']:.1f} GFLOP/s, "
            f"{100 * row['gflops_jit0'] / matmul:.0f}% of matmul) without XLA, "
            f"{row['fps_jit1']:,.0f} fps ({row['gflops_jit1']:.1f} GFLOP/s) with XLA")
    if "twin" in row:
        text += f"; training twin {row['twin']:.0f} samples/s"
    if "layerwise" in row:
        text += f", layer-by-layer {row['layerwise']:.0f} samples/s"
    return text


if __name__ == "__main__":
    main()
