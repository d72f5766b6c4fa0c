"""Behaviour of the temporal model, its single-frame twin and the other models."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from model_helpers import (fit_one_step, predict, randomize_batch_norm,
                           randomize_zero_kernels)
from vp3dkeras.models import (RefinerBaseline, TemporalModel, TrajectoryModel,
                              batch_norm_layers)

J = 5


def make_model(widths=(3, 3, 3), causal=False, channels=16, **kwargs):
    model = TemporalModel(J, 2, J, widths, causal=causal, channels=channels, **kwargs)
    model.build((None, None, J, 2))
    randomize_batch_norm(model)
    return model


def keypoints(batch, frames, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, frames, J, 2)).astype("float32")


@pytest.mark.parametrize("widths, receptive_field", [((3, 3, 3), 27), ((3, 3, 3, 3, 3), 243),
                                                     ((5, 3), 15), ((1,), 1)])
def test_output_length_and_receptive_field(widths, receptive_field):
    model = make_model(widths, channels=8)
    assert model.receptive_field() == receptive_field
    assert model(keypoints(2, receptive_field + 6)).shape == (2, 7, J, 3)
    assert model.total_pad() == ((receptive_field - 1) // 2,) * 2 and model.causal_shift == 0
    causal = make_model(widths, causal=True, channels=8)
    assert causal.total_pad() == (receptive_field - 1, 0)
    assert causal.causal_shift == (receptive_field - 1) // 2


@pytest.mark.parametrize("causal", [False, True])
def test_output_frame_sees_exactly_its_window(causal):
    """Perturbing input frame k changes exactly the outputs whose window contains k."""
    model = make_model(causal=causal)
    x = keypoints(1, 40)
    frame = 30
    changed = x.copy()
    changed[:, frame] += 1.0
    diff = np.abs(predict(model, changed) - predict(model, x)).max(axis=(0, 2, 3))
    left, right = model.total_pad()
    aligned = np.arange(len(diff)) + left  # input frame each output frame belongs to
    in_window = (aligned - left <= frame) & (frame <= aligned + right)
    assert np.all(diff[in_window] > 1e-6)
    np.testing.assert_array_equal(diff[~in_window], 0.0)
    if causal:
        assert np.all(diff[aligned < frame] == 0.0) and diff[aligned == frame].item() > 0


@pytest.mark.parametrize("widths", [(3, 3, 3), (3, 5, 2)])
@pytest.mark.parametrize("causal", [False, True])
def test_single_frame_twin_matches_temporal_model(widths, causal):
    model = make_model(widths, causal)
    twin = model.single_frame_twin()
    rf = model.receptive_field()
    x = keypoints(3, rf + 4)
    full = predict(model, x)
    for start in range(5):
        single = predict(twin, x[:, start:start + rf])
        assert single.shape == (3, 1, J, 3)
        np.testing.assert_allclose(single[:, 0], full[:, start], atol=1e-5)
    two_windows = keypoints(3, 2 * rf, seed=2)  # one output per consecutive window
    np.testing.assert_allclose(predict(twin, two_windows),
                               predict(model, two_windows)[:, ::rf], atol=1e-5)


def test_twin_shares_weights_and_training_it_changes_the_model():
    model = make_model()
    twin = model.single_frame_twin()
    x = keypoints(8, model.receptive_field(), seed=1)
    before = predict(model, x)
    twin(x)
    assert {id(v) for v in twin.weights} == {id(v) for v in model.weights}
    fit_one_step(twin, x, np.ones((8, 1, J, 3), "float32"))
    after = predict(model, x)
    assert np.abs(after - before).max() > 1e-4
    np.testing.assert_allclose(predict(twin, x), after, atol=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_one_step(jit_compile):
    model = make_model()
    x = keypoints(4, 30)
    loss = fit_one_step(model, x, np.zeros((4, 4, J, 3), "float32"), jit_compile=jit_compile)
    assert np.isfinite(loss)


def test_batch_norm_momentum_can_change_after_compile():
    model = make_model(dropout=0.0)
    x = keypoints(4, 27) + 3.0
    y = np.zeros((4, 1, J, 3), "float32")
    fit_one_step(model, x, y)  # compiles the train step
    bn = model.expand.bn
    bn.momentum = 1.0  # frozen statistics
    frozen = keras.ops.convert_to_numpy(bn.moving_mean)
    model.fit(x, y, batch_size=4, verbose=0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), frozen)
    for layer in batch_norm_layers(model):
        layer.momentum = 0.0  # running statistics = this batch's statistics
    conv_out = keras.ops.convert_to_numpy(model.expand.conv(x.reshape(4, 27, 2 * J)))
    model.fit(x, y, batch_size=4, verbose=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean),
                               conv_out.mean(axis=(0, 1)), rtol=1e-4, atol=1e-5)


def test_dense_model():
    model = make_model((3, 3, 3), dense=True)
    assert model.receptive_field() == 7
    assert model(keypoints(2, 10)).shape == (2, 4, J, 3)
    with pytest.raises(NotImplementedError):
        model.single_frame_twin()


def test_trajectory_model_predicts_one_root_position():
    model = TrajectoryModel(J, 2, (3, 3), channels=8)
    assert model(keypoints(2, 12)).shape == (2, 4, 1, 3)


def make_refiner(dilated=False, randomize=True):
    model = RefinerBaseline(J, J, channels=16, dilated=dilated)
    model.build((None, None, J, 2))
    if randomize:
        randomize_batch_norm(model)
        randomize_zero_kernels(model)
    return model


@pytest.mark.parametrize("dilated", [False, True])
def test_refiner_keeps_length_and_ignores_padding(dilated):
    model = make_refiner(dilated)
    for frames in (40, 73):
        assert model(keypoints(2, frames)).shape == (2, frames, J, 3)
    short = keypoints(1, 40, seed=3)
    padded = np.concatenate([short, np.full((1, 25, J, 2), 7.0, "float32")], axis=1)
    mask = np.arange(65)[None] < 40
    out = keras.ops.convert_to_numpy(model(padded, training=False, mask=mask))
    np.testing.assert_allclose(out[:, :40], predict(model, short), atol=1e-5)
    np.testing.assert_array_equal(out[:, 40:], 0.0)
    inputs = {"keypoints": np.repeat(padded, 2, 0), "mask": np.repeat(mask, 2, 0)}
    weights = inputs["mask"].astype("float32")[..., None]  # mse leaves (B, T, J)
    loss = fit_one_step(model, inputs, np.zeros((2, 65, J, 3), "float32"),
                        sample_weight=weights)
    assert np.isfinite(loss)


def test_untrained_refiner_starts_at_the_zero_pose_and_refines_by_identity():
    model = make_refiner(randomize=False)
    randomize_batch_norm(model)
    x = keypoints(2, 30)
    np.testing.assert_array_equal(predict(model, x), 0.0)
    # Whatever the lifter says, the untrained refiner passes it on unchanged.
    lifter_head = model.lifter.head.kernel
    lifter_head.assign(np.random.default_rng(1).normal(size=lifter_head.shape))
    lifted = model.lifter(x.reshape(2, 30, -1), training=False)
    lifted = keras.ops.convert_to_numpy(lifted).reshape(2, 30, J, 3)
    assert np.abs(lifted).mean() > 0.1
    np.testing.assert_allclose(predict(model, x), lifted, atol=1e-6)


@pytest.mark.parametrize("dilated, context", [(False, 13), (True, 53)])
def test_refiner_context_frames(dilated, context):
    model = make_refiner(dilated)
    assert model.context_frames() == context
    x = keypoints(1, 120)
    moved = x.copy()
    moved[:, 60] += 1.0
    changed = np.abs(predict(model, moved) - predict(model, x)).max(axis=(0, 2, 3)) > 1e-6
    assert np.flatnonzero(changed).tolist() == list(range(60 - context // 2,
                                                          61 + context // 2))
