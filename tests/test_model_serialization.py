"""Every model round-trips through get_config and a `.keras` file loaded with safe_mode."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json

import numpy as np
import pytest

from model_helpers import (predict, randomize_batch_norm, randomize_zero_kernels,
                           save_and_reload)
from vp3dkeras.models import (RefinerBaseline, SingleFrameModel, TemporalModel,
                              TrajectoryModel)

J = 4


def as_json(config):
    return json.loads(json.dumps(config))  # tuples and lists compare equal


def models():
    return {
        "temporal": lambda: TemporalModel(J, 2, J, (3, 3), channels=8, momentum=0.8),
        "temporal_causal": lambda: TemporalModel(J, 3, 6, (3, 2), causal=True, channels=8),
        "temporal_dense": lambda: TemporalModel(J, 2, J, (3, 3), dense=True, channels=8),
        "trajectory": lambda: TrajectoryModel(J, 2, (3, 3), channels=8),
        "twin": lambda: TemporalModel(J, 2, J, (3, 3), channels=8).single_frame_twin(),
        "refiner": lambda: RefinerBaseline(J, J, channels=8, num_layers=2),
        "refiner_dilated": lambda: RefinerBaseline(J, J, channels=8, num_layers=2,
                                                   dilated=True),
    }


@pytest.mark.parametrize("name", sorted(models()))
def test_keras_file_round_trip(name, tmp_path):
    model = models()[name]()
    features = model.temporal_model.in_features if name == "twin" else getattr(
        model, "in_features", 2)
    x = np.random.default_rng(0).normal(size=(2, 9, J, features)).astype("float32")
    model(x)
    randomize_batch_norm(model)
    randomize_zero_kernels(model)
    reloaded = save_and_reload(model, tmp_path / f"{name}.keras")
    assert type(reloaded) is type(model)
    assert as_json(reloaded.get_config()) == as_json(model.get_config())
    np.testing.assert_array_equal(predict(reloaded, x), predict(model, x))


def test_from_config_rebuilds_the_same_architecture():
    model = TemporalModel(J, 2, J, (3, 3, 3), causal=True, dropout=0.1, channels=8,
                          momentum=0.7, name="tcn")
    clone = TemporalModel.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.receptive_field() == 27 and clone.total_pad() == (26, 0)
    assert clone.expand.bn.momentum == pytest.approx(0.7)


def test_reloaded_twin_keeps_sharing_weights(tmp_path):
    twin = TemporalModel(J, 2, J, (3, 3), channels=8).single_frame_twin()
    x = np.zeros((1, 9, J, 2), "float32")
    twin(x)
    reloaded = save_and_reload(twin, tmp_path / "twin.keras")
    assert isinstance(reloaded, SingleFrameModel)
    inner = reloaded.temporal_model
    inner.expand.bn.beta.assign(np.ones(8, "float32"))
    np.testing.assert_allclose(predict(reloaded, x), predict(inner, x), atol=1e-6)


def test_compiled_model_round_trip_keeps_jit_setting(tmp_path):
    model = TemporalModel(J, 2, J, (3,), channels=8)
    model.compile(optimizer="adam", loss="mse", jit_compile=False)
    x = np.ones((2, 5, J, 2), "float32")
    model.fit(x, np.zeros((2, 3, J, 3), "float32"), verbose=0)
    reloaded = save_and_reload(model, tmp_path / "compiled.keras")
    assert reloaded.jit_compile is False
    np.testing.assert_array_equal(predict(reloaded, x), predict(model, x))
    assert np.isfinite(reloaded.evaluate(x, np.zeros((2, 3, J, 3), "float32"), verbose=0))
