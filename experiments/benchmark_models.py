"""Size, cost and speed of the temporal models next to the paper's numbers.

For each receptive field (27, 81, 243 frames: filter widths 3x3, 3x4, 3x5) prints:
- trainable parameters and MFLOPs per output frame (matrix multiplications only, amortised
  over a long sequence, 2 FLOPs per multiply-add: the paper's 17.09 / 25.48 / 33.87);
- inference frames/s on one 10,000-frame sequence (compiled predict step, jit_compile off and
  on), the GFLOP/s this achieves and its ratio to a 4096x4096 float32 matmul timed in the same
  run;
- training samples/s (batch 256, AMSGrad) of the strided single-frame twin and, up to 81
  frames, of the layer-by-layer model on the same windows, and the twin's speed-up.

Every speed is given twice: wall clock (best of a few repeats) and "CPU-normalised", the
work divided by (process CPU seconds / core count): roughly what the cores would give if
this process had them to itself and kept them all busy. On a machine shared with
other jobs the wall figures drop with the load; the CPU-normalised ones hold up better but
overstate work that leaves a core idle and understate work slowed by spin-waiting or by
caches shared with the other jobs. The truth on an idle machine lies between the two.

    python experiments/benchmark_models.py [--channels 1024] [--frames 27 81 243] [--quick]
"""
from __future__ import annotations

import argparse
import os
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


def window_mflops(model: TemporalModel, strided: bool) -> float:
    """Forward MFLOPs for one window of `receptive_field()` frames and one output frame:
    the layer-by-layer model computes every intermediate frame, the strided twin only the
    frames the output needs."""
    per_frame = dict(layer_mflops(model))
    length, total = model.receptive_field(), 0.0
    units = [("expand", model.filter_widths[0], 1)]
    for i, (width, block) in enumerate(zip(model.filter_widths[1:], model.blocks)):
        units += [(f"block_{i}.dilated", width, block.dilation), (f"block_{i}.pointwise", 1, 1)]
    for name, width, dilation in units:
        length = length // width if strided else length - (width - 1) * dilation
        total += length * per_frame[name]
    return total + length * per_frame["shrink"]


def best_time(fn, repeats: int) -> tuple:
    """(wall, cpu) seconds of the best of `repeats` calls after a warm-up call; cpu is the
    process CPU time divided by the core count."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start_wall)
        cpu.append((time.process_time() - start_cpu) / os.cpu_count())
    return np.array([min(wall), min(cpu)])


def matmul_gflops(repeats: int) -> dict:
    """(wall, cpu) GFLOP/s of a 4096x4096 float32 matmul: NumPy's BLAS and the backend
    with and without XLA."""
    a = np.random.default_rng(0).normal(size=(4096, 4096)).astype("float32")
    flop = 2 * 4096 ** 3
    rates = {"numpy": flop / best_time(lambda: a @ a, repeats) / 1e9}
    tensor = keras.ops.convert_to_tensor(a)
    for jit in (False, True):
        step = _compiled(lambda x: keras.ops.matmul(x, x), jit)
        seconds = best_time(lambda: keras.ops.convert_to_numpy(step(tensor)[:1, :1]), repeats)
        rates[f"{keras.backend.backend()}{', XLA' if jit else ''}"] = flop / seconds / 1e9
    return rates


def _compiled(fn, jit_compile=False):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=jit_compile)
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn) if jit_compile else fn
    return fn


def inference_fps(model: TemporalModel, frames: int, jit_compile: bool, repeats: int):
    """(wall, cpu) output frames/s predicting one sequence of `frames` output frames
    (the input is padded by the receptive field, as in use)."""
    left, right = model.total_pad()
    x = np.random.default_rng(0).normal(size=(1, frames + left + right, JOINTS, 2))
    x = keras.ops.convert_to_tensor(x.astype("float32"))
    model.compile(jit_compile=jit_compile)
    return frames / best_time(lambda: model.predict_on_batch(x), repeats)


def training_samples_per_s(model, batch: int, steps: int, jit_compile: bool):
    """(wall, cpu) samples/s of `train_on_batch` on windows of one receptive field."""
    rf = model.receptive_field()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, rf, JOINTS, 2)).astype("float32")
    y = rng.normal(size=(batch, 1, JOINTS, 3)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3, amsgrad=True), loss="mse",
                  jit_compile=jit_compile)
    return batch / best_time(lambda: model.train_on_batch(x, y), steps)


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
          f"{os.cpu_count()} CPUs, channels {args.channels}, sequence {args.sequence} frames, "
          f"load average {os.getloadavg()[0]:.1f}")
    rates = matmul_gflops(repeats)
    matmul = np.max(list(rates.values()), axis=0)
    print("4096x4096 float32 matmul GFLOP/s, wall / CPU-normalised: "
          + ", ".join(f"{name} {_pair(rate, '.0f')}" for name, rate in rates.items())
          + f"; reference (best of each): {_pair(matmul, '.0f')}")

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
        row = {"frames": frames, "mflops": mflops,
               "params": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
               "flop_ratio": window_mflops(model, False) / window_mflops(model, True)}
        for jit in (False, True):
            row[f"fps_jit{int(jit)}"] = inference_fps(model, args.sequence, jit, repeats)
        if not args.quick:
            row["twin"] = training_samples_per_s(model.single_frame_twin(), args.batch, steps,
                                                 args.train_jit)
            if frames <= args.layerwise_max:
                row["layerwise"] = training_samples_per_s(model, args.batch, steps,
                                                          args.train_jit)
        rows.append(row)
        print(f"{frames} frames done: " + ", ".join(
            f"{k} {_pair(v)}" for k, v in row.items() if isinstance(v, np.ndarray)), flush=True)

    print("\nSpeeds as wall / CPU-normalised.")
    print("| frames | params | MFLOPs/frame (paper) | inference fps, no XLA | inference fps, XLA "
          "| GFLOP/s, best (% of matmul) | train samples/s, twin | layer-by-layer "
          "| twin speed-up (FLOP ratio) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        gflops = np.maximum(row["fps_jit0"], row["fps_jit1"]) * row["mflops"] / 1e3
        percent = 100 * gflops / matmul
        twin, layerwise = row.get("twin"), row.get("layerwise")
        speedup = None if twin is None or layerwise is None else twin / layerwise
        print(f"| {row['frames']} | {row['params'] / 1e6:.2f}M | {row['mflops']:.2f} "
              f"({PAPER_MFLOPS[row['frames']]}) | {_pair(row['fps_jit0'])} | "
              f"{_pair(row['fps_jit1'])} | {_pair(gflops, '.0f')} ({_pair(percent, '.0f')}%) "
              f"| {_pair(twin)} | {_pair(layerwise)} | {_pair(speedup, '.1f')} "
              f"({row['flop_ratio']:.1f}) |")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def _pair(values, fmt=",.0f"):
    if values is None:
        return "-"
    return " / ".join(format(v, fmt) for v in values)


if __name__ == "__main__":
    main()
