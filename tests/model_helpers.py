"""Helpers shared by the model tests: random batch-norm state, one fit step, save and reload,
running a SavedModel in an interpreter that cannot import the project."""
import json
import os
import subprocess
import sys

import numpy as np
import keras

from vp3dkeras.models import TemporalConv1D, batch_norm_layers


def randomize_batch_norm(model, seed=0):
    """Give every BatchNorm non-trivial gamma, beta and running statistics."""
    rng = np.random.default_rng(seed)
    for bn in batch_norm_layers(model):
        channels = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
        bn.beta.assign(rng.normal(0, 0.2, channels).astype("float32"))
        bn.moving_mean.assign(rng.normal(0, 0.3, channels).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))


def randomize_zero_kernels(model, seed=0):
    """Give convolution kernels that start at zero (the refiner's output layers) random
    values, so comparisons of outputs are not between zeros."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, TemporalConv1D) and not np.any(layer.kernel.numpy()):
            layer.kernel.assign(rng.normal(0, 0.1, layer.kernel.shape).astype("float32"))


def fit_one_step(model, x, y, jit_compile=False, **fit_kwargs):
    model.compile(optimizer=keras.optimizers.Adam(1e-2, amsgrad=True), loss="mse",
                  jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=len(y), epochs=1, verbose=0, **fit_kwargs)
    return history.history["loss"][0]


def save_and_reload(model, path):
    model.save(path)
    return keras.saving.load_model(path, safe_mode=True)


def predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def run_without_project(loader: str, saved_model, inputs, outputs, cwd) -> dict:
    """Runs the script `loader` (argv: saved_model, inputs npz, outputs npz) in a fresh
    interpreter with an empty PYTHONPATH from `cwd`, so only TensorFlow serves the model;
    returns the JSON report it prints last."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", loader, str(saved_model), str(inputs), str(outputs)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
