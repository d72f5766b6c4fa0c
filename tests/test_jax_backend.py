"""The models run, train and load weights on the JAX backend (in a subprocess: the backend is
fixed at import time). Outputs must match the TensorFlow backend's for the same `.keras` file."""
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from model_helpers import predict, randomize_batch_norm, randomize_zero_kernels
from vp3dkeras.models import RefinerBaseline, TemporalModel

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

JAX_SCRIPT = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    from vp3dkeras.models import RefinerBaseline, TemporalModel
    assert keras.backend.backend() == "jax"
    folder = sys.argv[1]
    x = np.load(f"{folder}/x.npy")

    model = keras.saving.load_model(f"{folder}/tcn.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.load(f"{folder}/tcn_out.npy"), atol=1e-5)
    twin = model.single_frame_twin()
    window = x[:, :model.receptive_field()]
    np.testing.assert_allclose(np.asarray(twin(window, training=False))[:, 0],
                               np.asarray(model(x, training=False))[:, 0], atol=1e-5)
    before = np.asarray(model(x, training=False))
    twin.compile(optimizer=keras.optimizers.Adam(1e-2, amsgrad=True), loss="mse")
    loss = twin.fit(np.repeat(window, 4, 0), np.ones((8, 1, 4, 3), "float32"),
                    batch_size=8, verbose=0).history["loss"][0]
    assert np.isfinite(loss)
    assert np.abs(np.asarray(model(x, training=False)) - before).max() > 1e-4

    refiner = keras.saving.load_model(f"{folder}/refiner.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(refiner(x, training=False)),
                               np.load(f"{folder}/refiner_out.npy"), atol=1e-5)
    mask = np.arange(x.shape[1])[None].repeat(2, 0) < 20
    refiner.compile(optimizer="adam", loss="mse")
    refiner.fit({"keypoints": x, "mask": mask}, np.zeros((2, x.shape[1], 4, 3), "float32"),
                verbose=0)
    print("jax ok")
""")


def test_jax_backend_matches_tensorflow(tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    x = np.random.default_rng(0).normal(size=(2, 30, 4, 2)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    for name, model in (("tcn", TemporalModel(4, 2, 4, (3, 3, 3), causal=True, channels=16)),
                        ("refiner", RefinerBaseline(4, 4, channels=16, num_layers=2))):
        model(x)
        randomize_batch_norm(model)
        randomize_zero_kernels(model)
        np.save(tmp_path / f"{name}_out.npy", predict(model, x))
        model.save(tmp_path / f"{name}.keras")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jax ok" in result.stdout
