"""Virtual cameras: projection maths, placement around a moving subject, serialisation."""
import json

import numpy as np
import pytest

from synth.cameras import Camera, look_at_rotation, place_cameras
from synth.kinematics import quat_rotate

# Rest pose of a 17-joint (Human3.6M order) figure facing +x, metres, pelvis on the floor's
# vertical: (forward, left, up).
_REST = np.array([
    [0.0, 0.0, 0.95], [0.0, -0.1, 0.95], [0.0, -0.1, 0.52], [0.0, -0.1, 0.08],
    [0.0, 0.1, 0.95], [0.0, 0.1, 0.52], [0.0, 0.1, 0.08], [0.0, 0.0, 1.2],
    [0.0, 0.0, 1.45], [0.06, 0.0, 1.56], [0.0, 0.0, 1.72], [0.0, 0.18, 1.45],
    [0.0, 0.2, 1.17], [0.0, 0.2, 0.92], [0.0, -0.18, 1.45], [0.0, -0.2, 1.17],
    [0.0, -0.2, 0.92]])
_RIGHT_LEG, _LEFT_LEG = (2, 3), (5, 6)
_LEFT_ARM, _RIGHT_ARM = (12, 13), (15, 16)


def walking_figure(path: str = "line", num_frames: int = 240, fps: float = 30.0,
                   length: float = 5.0) -> np.ndarray:
    """(T, 17, 3) metres: a figure swinging its limbs while it walks a line or a circle."""
    t = np.arange(num_frames) / fps
    phase = 2.0 * np.pi * 1.0 * t  # one stride per second
    s = np.linspace(0.0, 1.0, num_frames)
    if path == "line":
        root = np.stack([length * s - 0.5 * length, 0.3 * np.sin(np.pi * s), 0 * s], -1)
        heading = np.arctan2(np.gradient(root[:, 1]), np.gradient(root[:, 0]))
    else:  # a circle of diameter `length`
        angle = 2.0 * np.pi * s
        root = 0.5 * length * np.stack([np.cos(angle), np.sin(angle), 0 * s], -1)
        heading = angle + 0.5 * np.pi
    local = np.broadcast_to(_REST, (num_frames, 17, 3)).copy()
    local[:, :, 2] += 0.03 * np.sin(2.0 * phase)[:, None]
    swing = 0.35 * np.sin(phase)[:, None]
    for joints, sign in ((_RIGHT_LEG, 1), (_LEFT_LEG, -1), (_LEFT_ARM, 0.6), (_RIGHT_ARM, -0.6)):
        for depth, j in enumerate(joints, start=1):
            local[:, j, 0] += sign * depth * swing[:, 0] * 0.5
    cos, sin = np.cos(heading)[:, None], np.sin(heading)[:, None]
    world = np.empty_like(local)
    world[..., 0] = cos * local[..., 0] - sin * local[..., 1]
    world[..., 1] = sin * local[..., 0] + cos * local[..., 1]
    world[..., 2] = local[..., 2]
    return world + root[:, None, :] + np.array([1.5, -2.0, 0.0])


def _camera(**changes) -> Camera:
    values = dict(width=1000, height=1000, fx=1145.0, fy=1143.8, cx=512.5, cy=515.4,
                  k=(-0.207, 0.247, -0.003), p=(-0.0009, -0.0012),
                  rotation=look_at_rotation([4.0, 1.0, 1.6], [0.0, 0.0, 1.0]),
                  translation=np.zeros(3))
    values.update(changes)
    camera = Camera(**values)
    if "translation" not in changes:
        camera.translation = -camera.rotation @ np.array([4.0, 1.0, 1.6])
    return camera


def test_projection_matches_hand_computation():
    camera = Camera(width=640, height=480, fx=500.0, fy=510.0, cx=320.0, cy=240.0,
                    k=(-0.2, 0.1, 0.01), p=(0.001, -0.002))
    X, Y, Z = 0.3, -0.2, 2.0
    x, y = X / Z, Y / Z  # 0.15, -0.1
    r2 = x * x + y * y
    radial = 1 - 0.2 * r2 + 0.1 * r2 ** 2 + 0.01 * r2 ** 3
    xd = x * radial + 2 * 0.001 * x * y + (-0.002) * (r2 + 2 * x * x)
    yd = y * radial + 0.001 * (r2 + 2 * y * y) + 2 * (-0.002) * x * y
    expected = [500.0 * xd + 320.0, 510.0 * yd + 240.0]
    np.testing.assert_allclose(camera.project(np.array([X, Y, Z])), expected, rtol=0, atol=1e-9)
    # The same numbers written out once more, independently of the formula above.
    np.testing.assert_allclose(expected, [394.4279476, 189.3834706], atol=1e-6)


def test_zero_distortion_is_pinhole():
    camera = _camera(k=(0.0, 0.0, 0.0), p=(0.0, 0.0))
    points = np.random.default_rng(1).uniform([-1, -1, 1], [1, 1, 6], size=(50, 3))
    homogeneous = points @ camera.intrinsic_matrix().T
    np.testing.assert_allclose(camera.project(points), homogeneous[:, :2] / homogeneous[:, 2:],
                               atol=1e-9)


def test_project_world_is_project_of_world_to_camera():
    camera = _camera()
    points = walking_figure()
    cam = camera.world_to_camera(points)
    assert cam.shape == points.shape
    np.testing.assert_allclose(camera.project_world(points), camera.project(cam), atol=1e-9)
    np.testing.assert_allclose(cam, (camera.rotation @ points[..., None])[..., 0]
                               + camera.translation, atol=1e-12)
    np.testing.assert_allclose(camera.camera_to_world(cam), points, atol=1e-12)


def test_position_and_orientation_agree_with_extrinsics():
    camera = _camera()
    np.testing.assert_allclose(camera.position, [4.0, 1.0, 1.6], atol=1e-12)
    np.testing.assert_allclose(camera.world_to_camera(camera.position), 0.0, atol=1e-12)
    q = camera.orientation_quaternion()
    assert q[0] >= 0 and np.isclose(np.linalg.norm(q), 1.0)
    points_cam = np.random.default_rng(2).normal(size=(20, 3))
    np.testing.assert_allclose(quat_rotate(q, points_cam) + camera.position,
                               camera.camera_to_world(points_cam), atol=1e-12)


def test_intrinsics_vector_layout():
    camera = _camera()
    vector = camera.intrinsics_vector()
    assert vector.dtype == np.float32 and vector.shape == (9,)
    np.testing.assert_allclose(vector, [1145.0, 1143.8, 512.5, 515.4, -0.207, 0.247, -0.003,
                                        -0.0009, -0.0012], rtol=1e-6)


@pytest.mark.parametrize("seed", range(8))
def test_placed_rotations_are_proper_and_cameras_look_at_the_subject(seed):
    positions = walking_figure("line", length=1.0)
    points = positions.reshape(-1, 3)
    centre = np.array([*points[:, :2].mean(0), 0.5 * (points[:, 2].min() + points[:, 2].max())])
    for camera in place_cameras(positions, num_cameras=4, rng=seed):
        R = camera.rotation
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(R), 1.0)
        u, v = camera.project_world(centre)
        assert abs(u - camera.width / 2) < 0.1 * camera.width
        assert abs(v - camera.height / 2) < 0.1 * camera.height
        # Upright: the world's up direction points up the image (negative camera y).
        assert (R @ [0.0, 0.0, 1.0])[1] < -0.9
        horizontal = np.linalg.norm(camera.position[:2] - centre[:2])
        assert 3.0 <= horizontal <= 12.0
        assert 0.7 <= camera.position[2] <= 2.6
        assert 0.9 < camera.fy / camera.fx < 1.1


@pytest.mark.parametrize("path,length", [("line", 5.0), ("circle", 4.0), ("line", 9.0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_joint_of_a_moving_subject_stays_in_frame_in_front_of_the_camera(path, length,
                                                                              seed):
    positions = walking_figure(path, length=length)
    cameras = place_cameras(positions, num_cameras=4, rng=seed, margin=0.05)
    assert len(cameras) == 4
    for camera in cameras:
        assert np.all(camera.world_to_camera(positions)[..., 2] > 0.5)
        uv = camera.project_world(positions)
        assert np.all(uv >= 0.05 * np.array([camera.width, camera.height]) - 1e-9)
        assert np.all(uv <= 0.95 * np.array([camera.width, camera.height]) + 1e-9)
        assert camera.in_frame(positions, margin=0.05).all()


def test_cameras_are_spread_around_the_subject():
    positions = walking_figure()
    centre = positions.reshape(-1, 3)[:, :2].mean(0)
    cameras = place_cameras(positions, num_cameras=4, rng=3)
    azimuths = np.sort([np.arctan2(*(c.position[:2] - centre)[::-1]) for c in cameras])
    gaps = np.diff(np.concatenate([azimuths, azimuths[:1] + 2 * np.pi]))
    assert np.all(gaps > np.deg2rad(45)) and np.all(gaps < np.deg2rad(135))


def test_same_seed_same_cameras_different_seed_different():
    positions = walking_figure()
    first = [c.to_dict() for c in place_cameras(positions, rng=7)]
    again = [c.to_dict() for c in place_cameras(positions, rng=np.random.default_rng(7))]
    other = [c.to_dict() for c in place_cameras(positions, rng=8)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("seed", range(10))
def test_distortion_is_monotonic_over_the_image(seed):
    # Strong barrel distortion with wide lenses is where folding would happen.
    cameras = place_cameras(walking_figure(), rng=seed, hfov_range_deg=(60.0, 75.0),
                            radial_range=((-0.4, -0.2), (0.0, 0.05), (-0.01, 0.0)))
    for camera in cameras:
        assert camera.distortion_is_monotonic()
        # Radial: distorted radius strictly increases up to past the image corners.
        r = np.linspace(0.0, camera.monotonic_radius() if np.isfinite(camera.monotonic_radius())
                        else 3.0, 2001)
        k1, k2, k3 = camera.k
        r_d = r * (1 + k1 * r ** 2 + k2 * r ** 4 + k3 * r ** 6)
        covered = r_d <= camera.image_corner_radius()
        assert np.all(np.diff(r_d[covered]) > 0)
        assert not covered[-1]
        # With tangential terms too: the map has a positive Jacobian over the image.
        grid = np.stack(np.meshgrid(np.linspace(-1, 1, 41), np.linspace(-1, 1, 41)), -1)
        xy = grid * r[covered][-1] / np.sqrt(2)
        eps = 1e-6
        dx = (camera.distort(xy + [eps, 0]) - camera.distort(xy - [eps, 0])) / (2 * eps)
        dy = (camera.distort(xy + [0, eps]) - camera.distort(xy - [0, eps])) / (2 * eps)
        assert np.all(dx[..., 0] * dy[..., 1] - dx[..., 1] * dy[..., 0] > 0)


def test_monotonic_radius_of_known_coefficients():
    assert Camera(10, 10, 1, 1, 5, 5, k=(-0.25, 0, 0)).monotonic_radius() == pytest.approx(
        np.sqrt(1 / 0.75))
    assert Camera(10, 10, 1, 1, 5, 5, k=(0.1, 0.01, 0)).monotonic_radius() == np.inf


def test_points_past_the_fold_are_not_in_frame():
    # k1 < 0 alone folds at r = 1.15; a point at r = 1.9 lands back near the image centre.
    camera = Camera(1000, 1000, 500.0, 500.0, 500.0, 500.0, k=(-0.25, 0.0, 0.0))
    point = np.array([1.9, 0.0, 1.0])
    u, v = camera.project(point)
    assert 0 <= u <= 1000 and 0 <= v <= 1000
    assert not camera.in_frame(point)
    assert camera.in_frame(np.array([0.2, 0.1, 1.0]))
    assert not camera.in_frame(np.array([0.2, 0.1, -1.0]))


def test_to_dict_from_dict_round_trip():
    cameras = place_cameras(walking_figure(), rng=5)
    for camera in cameras:
        data = json.loads(json.dumps(camera.to_dict()))
        restored = Camera.from_dict(data)
        assert restored.to_dict() == camera.to_dict()
        points = walking_figure()[:10]
        np.testing.assert_array_equal(restored.project_world(points), camera.project_world(points))


def test_to_arrays_round_trip(tmp_path):
    camera = place_cameras(walking_figure(), num_cameras=1, rng=5)[0]
    arrays = camera.to_arrays()
    assert {k: v.shape for k, v in arrays.items()} == {
        "image_size": (2,), "intrinsics": (9,), "rotation": (3, 3), "translation": (3,),
        "position": (3,), "orientation": (4,)}
    np.savez(tmp_path / "cam.npz", **arrays)
    with np.load(tmp_path / "cam.npz") as loaded:
        restored = Camera.from_arrays(dict(loaded))
    np.testing.assert_allclose(restored.project_world(walking_figure()),
                               camera.project_world(walking_figure()), atol=1e-3)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
        place_cameras(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        place_cameras(np.full((2, 17, 3), np.nan))
    with pytest.raises(ValueError):
        Camera(100, 100, 50, 50, 50, 50, k=(0.1, 0.0))
