"""Projection follows the OpenCV lens model, is differentiable and takes NumPy input."""
import numpy as np
import pytest
import tensorflow as tf

from vp3dkeras import camera

# fx, fy, cx, cy, k1, k2, k3, p1, p2
INTRINSICS = np.array([1000.0, 1100.0, 500.0, 400.0, 0.1, 0.01, 0.001, 0.001, -0.002])


def test_distorted_projection_matches_hand_computed_value():
    # x' = 0.1, y' = -0.2, r^2 = 0.05, radial = 1.005025125
    # x'' = 0.1005025125 + 2*0.001*(-0.02) - 0.002*(0.05 + 0.02)   = 0.1003225125
    # y'' = -0.201005025 + 0.001*(0.05 + 0.08) + 2*(-0.002)*(-0.02) = -0.200795025
    point = np.array([[0.1, -0.2, 1.0]])
    expected = np.array([[600.3225125, 179.1254725]])
    np.testing.assert_allclose(camera.project_to_2d_np(point, INTRINSICS), expected, rtol=0, atol=1e-9)
    # Only the direction of the ray matters.
    np.testing.assert_allclose(camera.project_to_2d_np(2.5 * point, INTRINSICS), expected,
                               rtol=0, atol=1e-9)


def test_zero_distortion_equals_linear():
    rng = np.random.default_rng(0)
    points = rng.uniform([-1, -1, 2], [1, 1, 6], size=(4, 5, 17, 3))
    plain = INTRINSICS.copy()
    plain[4:] = 0.0
    linear = camera.project_to_2d_linear_np(points, INTRINSICS)
    np.testing.assert_allclose(camera.project_to_2d_np(points, plain), linear, atol=1e-9)
    np.testing.assert_allclose(linear[..., 0], 1000.0 * points[..., 0] / points[..., 2] + 500.0)


def test_per_sequence_intrinsics_broadcast_over_time_and_joints():
    rng = np.random.default_rng(1)
    points = rng.uniform([-1, -1, 2], [1, 1, 6], size=(3, 4, 17, 3))
    cams = np.stack([INTRINSICS * s for s in (1.0, 0.9, 1.1)])  # (B, 9)
    batched = camera.project_to_2d_np(points, cams)
    assert batched.shape == (3, 4, 17, 2)
    for b in range(3):
        np.testing.assert_allclose(batched[b], camera.project_to_2d_np(points[b], cams[b]))


def test_numpy_dtype_is_kept():
    points = np.array([[0.1, -0.2, 1.0]], dtype=np.float32)
    assert camera.project_to_2d_np(points, INTRINSICS).dtype == np.float32
    assert camera.project_to_2d_np(points.astype(np.float64), INTRINSICS).dtype == np.float64


def test_wrong_intrinsics_size_is_rejected():
    with pytest.raises(ValueError, match="fx, fy, cx, cy"):
        camera.project_to_2d(np.ones((2, 3)), np.ones(4))


def test_gradient_flows_through_projection():
    points = tf.Variable([[[0.1, -0.2, 1.0], [0.3, 0.2, 2.0]]])
    intrinsics = tf.Variable(INTRINSICS.astype("float32"))
    with tf.GradientTape() as tape:
        uv = camera.project_to_2d(points, intrinsics)
        target = tf.reduce_sum(uv[..., 0])
    grad_points, grad_intrinsics = tape.gradient(target, [points, intrinsics])
    assert np.all(np.isfinite(grad_points.numpy()))
    # du/dcx = 1 per point; du/dfy = 0.
    assert grad_intrinsics.numpy()[2] == pytest.approx(2.0)
    assert grad_intrinsics.numpy()[1] == pytest.approx(0.0)
    # Compare du/dX with a central finite difference in float64.
    p = np.array([0.1, -0.2, 1.0])
    eps = 1e-6
    step = np.array([eps, 0.0, 0.0])
    fd = (camera.project_to_2d_np(p + step, INTRINSICS)[0]
          - camera.project_to_2d_np(p - step, INTRINSICS)[0]) / (2 * eps)
    assert grad_points.numpy()[0, 0, 0] == pytest.approx(fd, rel=1e-4)


def test_normalisation_round_trip_and_range():
    w, h = 1000, 600
    corners = np.array([[0, 0], [w, h], [w / 2, h / 2]])
    normalised = camera.normalize_screen_coordinates(corners, w, h)
    np.testing.assert_allclose(normalised, [[-1, -0.6], [1, 0.6], [0, 0]])
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, [w, h], size=(7, 17, 2))
    np.testing.assert_allclose(
        camera.image_coordinates(camera.normalize_screen_coordinates(xy, w, h), w, h), xy)


def test_matches_opencv_when_installed():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    points = rng.uniform([-1, -1, 2], [1, 1, 6], size=(17, 3))
    fx, fy, cx, cy, k1, k2, k3, p1, p2 = INTRINSICS
    matrix = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    expected, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), matrix,
                                    np.array([k1, k2, p1, p2, k3]))
    np.testing.assert_allclose(camera.project_to_2d_np(points, INTRINSICS), expected[:, 0],
                               atol=1e-6)
