"""The codec between raw data and network tensors: normalisation, root, flips, intrinsics."""
import numpy as np
import pytest

from vp3dkeras.camera import project_to_2d_np
from vp3dkeras.data import PoseCodec, load_layout
from posecontract.layouts import H36M_17, HUMANEVA_15

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("layout", [H36M_17, HUMANEVA_15])
def test_flip_twice_is_identity_and_swaps_sides(layout):
    codec = PoseCodec(layout)
    points = RNG.normal(size=(4, 7, layout.num_joints, 3)).astype(np.float32)
    flipped = codec.flip(points)
    np.testing.assert_array_equal(codec.flip(flipped), points)
    for left, right in zip(layout.left_joints, layout.right_joints):
        np.testing.assert_array_equal(flipped[..., left, 0], -points[..., right, 0])
        np.testing.assert_array_equal(flipped[..., right, 1:], points[..., left, 1:])
    centre = [i for i, n in enumerate(layout.names) if not n.startswith(("l_", "r_"))]
    np.testing.assert_array_equal(flipped[..., centre, 0], -points[..., centre, 0])


def test_normalisation_keeps_aspect_ratio_and_inverts():
    codec = PoseCodec(H36M_17)
    width, height = 1000, 600
    pixels = RNG.uniform([0, 0], [width, height], size=(5, 17, 2))
    normalised = codec.normalize_2d(pixels, (width, height))
    assert normalised.dtype == np.float32
    corners = codec.normalize_2d(np.array([[[0, 0], [width, height]]]), (width, height))
    np.testing.assert_allclose(corners[0], [[-1, -0.6], [1, 0.6]], atol=1e-6)
    # Same scale on both axes: distances scale by 2 / width.
    d_pixels = np.linalg.norm(pixels[:, 1] - pixels[:, 2], axis=-1)
    d_norm = np.linalg.norm(normalised[:, 1] - normalised[:, 2], axis=-1)
    np.testing.assert_allclose(d_norm, d_pixels * 2 / width, rtol=1e-5)
    np.testing.assert_allclose(codec.denormalize_2d(normalised, (width, height)), pixels,
                               atol=1e-3)


def test_flip_of_normalised_2d_mirrors_the_image():
    codec = PoseCodec(H36M_17)
    width, height = 640, 480
    pixels = RNG.uniform([0, 0], [width, height], size=(3, 17, 2))
    mirrored = pixels[:, H36M_17.flip_permutation()].copy()
    mirrored[..., 0] = width - mirrored[..., 0]
    np.testing.assert_allclose(codec.flip(codec.normalize_2d(pixels, (width, height))),
                               codec.normalize_2d(mirrored, (width, height)), atol=1e-6)


def test_targets_are_root_relative_and_keep_the_trajectory():
    codec = PoseCodec(H36M_17)
    joints = RNG.normal(size=(6, 17, 3)).astype(np.float32) + [0, 0, 5]
    poses, trajectory = codec.encode_3d(joints)
    assert np.all(poses[:, 0] == 0)
    np.testing.assert_allclose(trajectory, joints[:, 0])
    np.testing.assert_allclose(codec.decode_3d(poses, trajectory), joints, atol=1e-6)


def test_normalised_intrinsics_project_to_normalised_coordinates_also_flipped():
    codec = PoseCodec(H36M_17)
    size = np.array([1280.0, 720.0])
    intrinsics = np.array([900, 910, 650, 350, -0.1, 0.02, 0.001, 0.003, -0.002])
    points = RNG.normal(size=(4, 17, 3)) * 0.5 + [0, 0, 4]
    pixels = project_to_2d_np(points, intrinsics)
    normalised_intrinsics = codec.normalize_intrinsics(intrinsics, size)
    np.testing.assert_allclose(project_to_2d_np(points, normalised_intrinsics.astype(np.float64)),
                               codec.normalize_2d(pixels, size), atol=1e-5)
    flipped = project_to_2d_np(codec.flip(points),
                               codec.flip_intrinsics(normalised_intrinsics).astype(np.float64))
    np.testing.assert_allclose(flipped, codec.flip(codec.normalize_2d(pixels, size)), atol=1e-5)


def test_layout_from_json(tmp_path):
    path = tmp_path / "three.json"
    path.write_text('{"name": "three", "names": ["hip", "l_foot", "r_foot"], '
                    '"parents": [-1, 0, 0], "groups": {"feet": [1, 2]}}')
    layout = load_layout(path)
    assert layout.num_joints == 3 and list(layout.flip_permutation()) == [0, 2, 1]
    with pytest.raises(ValueError):
        load_layout("no_such_layout")
