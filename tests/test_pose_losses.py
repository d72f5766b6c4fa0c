"""Training losses agree with the NumPy metrics, mask padded frames and stay differentiable."""
import numpy as np
import pytest
import keras
import tensorflow as tf

from vp3dkeras import losses, metrics


@pytest.fixture
def poses():
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=(3, 6, 17, 3)).astype("float32")
    y_pred = (1.2 * y_true + rng.normal(scale=0.1, size=y_true.shape)).astype("float32")
    return y_true, y_pred


def to_float(x):
    return float(keras.ops.convert_to_numpy(x))


def test_functions_match_numpy_metrics(poses):
    y_true, y_pred = poses
    assert to_float(losses.mpjpe_loss(y_true, y_pred)) == pytest.approx(
        metrics.mpjpe(y_pred, y_true), rel=1e-5)
    assert to_float(losses.n_mpjpe_loss(y_true, y_pred)) == pytest.approx(
        metrics.n_mpjpe(y_pred, y_true), rel=1e-5)
    assert to_float(losses.mean_velocity_loss(y_true, y_pred)) == pytest.approx(
        metrics.mpjve(y_pred, y_true), rel=1e-5)
    weights = np.linspace(0.5, 2.0, 17).astype("float32")
    assert to_float(losses.weighted_mpjpe_loss(y_true, y_pred, weights)) == pytest.approx(
        metrics.weighted_mpjpe(y_pred, y_true, weights), rel=1e-5)


def test_loss_classes_match_numpy_metrics(poses):
    y_true, y_pred = poses
    assert to_float(losses.MPJPELoss()(y_true, y_pred)) == pytest.approx(
        metrics.mpjpe(y_pred, y_true), rel=1e-5)
    assert to_float(losses.NMPJPELoss()(y_true, y_pred)) == pytest.approx(
        metrics.n_mpjpe(y_pred, y_true), rel=1e-5)
    assert to_float(losses.MeanVelocityLoss()(y_true, y_pred)) == pytest.approx(
        metrics.mpjve(y_pred, y_true), rel=1e-5)
    combined = losses.PoseAndVelocityLoss(velocity_weight=0.5)(y_true, y_pred)
    assert to_float(combined) == pytest.approx(
        metrics.mpjpe(y_pred, y_true) + 0.5 * metrics.mpjve(y_pred, y_true), rel=1e-5)


def test_inverse_depth_loss_weights_by_target_depth():
    y_true = np.array([[[0.0, 0.0, 2.0]], [[0.0, 0.0, 4.0]]], "float32")  # (T=2, 1, 3)
    y_pred = y_true + np.array([1.0, 0.0, 0.0], "float32")
    expected = metrics.weighted_mpjpe(y_pred, y_true, 1.0 / y_true[..., 2])
    assert expected == pytest.approx((0.5 + 0.25) / 2)
    assert to_float(losses.InverseDepthMPJPELoss()(y_true, y_pred)) == pytest.approx(expected)


def test_mask_leaves_padded_frames_out(poses):
    y_true, y_pred = poses
    mask = np.ones(y_true.shape[:2], "float32")
    mask[:, 4:] = 0.0
    padded = y_pred.copy()
    padded[:, 4:] += 100.0  # garbage in the padded frames must not matter
    real = metrics.mpjpe(y_pred[:, :4], y_true[:, :4])
    assert to_float(losses.mpjpe_loss(y_true, padded, mask)) == pytest.approx(real, rel=1e-5)
    assert to_float(losses.MPJPELoss()(y_true, padded, sample_weight=mask)) == pytest.approx(
        real, rel=1e-5)
    assert to_float(losses.mean_velocity_loss(y_true, padded, mask)) == pytest.approx(
        metrics.mpjve(y_pred[:, :4], y_true[:, :4]), rel=1e-5)


def test_gradient_is_finite_at_zero_error():
    y_true = tf.zeros((1, 2, 4, 3))
    y_pred = tf.Variable(tf.zeros((1, 2, 4, 3)))
    with tf.GradientTape() as tape:
        value = losses.mpjpe_loss(y_true, y_pred) + losses.mean_velocity_loss(y_true, y_pred)
    grad = tape.gradient(value, y_pred)
    assert np.all(np.isfinite(grad.numpy()))


def test_config_round_trip():
    loss = losses.PoseAndVelocityLoss(velocity_weight=2.0, name="pv")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, losses.PoseAndVelocityLoss)
    assert restored.velocity_weight == 2.0 and restored.name == "pv"
    assert restored.reduction == "mean_with_sample_weight"


def test_compiled_model_masks_frames_through_sample_weight(poses):
    y_true, y_pred = poses
    identity = keras.Sequential([keras.layers.Identity()])
    identity.compile(loss=losses.MPJPELoss())
    mask = np.ones(y_true.shape[:2], "float32")
    mask[:, 3:] = 0.0
    garbage = y_true.copy()
    garbage[:, 3:] = 1e3
    value = identity.evaluate(y_pred, garbage, sample_weight=mask, batch_size=3, verbose=0)
    assert value == pytest.approx(metrics.mpjpe(y_pred[:, :3], y_true[:, :3]), rel=1e-5)
