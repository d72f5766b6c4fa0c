"""Images of the avatars: skinning, distortion warp, PNGs, visibility, `--images` end to end.

Everything that needs OpenGL runs in a child process (`render_helpers.run_child`): pyrender's
software OpenGL and TensorFlow, which other test files import, cannot share a process.
"""
import hashlib
import io
import json
import pathlib
import shutil
import sys
import types

import numpy as np
import pytest
from PIL import Image

from synth.appearance import Appearance
from synth.avatars import CANONICAL_JOINTS, CANONICAL_PARENTS, get_avatars
from synth.cameras import Camera
from synth.mocap_io import load_motion
from synth.render import canonical_indices
from synth.rendering import (ImageGeometry, encode_png, joint_visibility, undistort_points,
                             use_platform, visibility_tolerance)
from synth.resample import resample
from synth.retarget import Retargeter
from synth.skinning import Skinner, joint_radii, vertex_segments

from render_helpers import CLIP, run_child

H36M = {name: i for i, name in enumerate(CANONICAL_JOINTS[:17])}


@pytest.fixture(scope="module")
def clip(hdm05_dir):
    motion = resample(load_motion(hdm05_dir / f"{CLIP}.amc"), 25.0)
    return Retargeter(motion, canonical_indices(motion, None))(get_avatars(["cleo"])[0])


# --- in this process: no OpenGL -------------------------------------------------------------

def test_skinning_moves_every_segment_rigidly_with_its_joints(clip):
    skinner = Skinner(clip)
    frames = np.arange(0, clip.positions.shape[0], 7)
    vertices, normals = skinner.pose(frames)
    assert vertices.shape == (len(frames), len(skinner.mesh.vertices), 3)
    weights, owner = skinner.mesh.weights, vertex_segments(skinner.mesh)
    posed = clip.canonical_positions[frames]
    rest = skinner.rest
    for c, p in enumerate(CANONICAL_PARENTS):
        rigid = (owner == c) & np.isclose(weights[:, c], 1.0)
        if p < 0 or not rigid.any():
            continue
        # Distance to the segment's start and its axis are what a rigid motion keeps.
        def axis_distance(points, a, b):
            d = b - a
            return np.linalg.norm(np.cross(points - a, d / np.linalg.norm(d, axis=-1,
                                                                        keepdims=True)), axis=-1)
        rest_start = np.linalg.norm(skinner.mesh.vertices[rigid] - rest[p], axis=-1)
        posed_start = np.linalg.norm(vertices[:, rigid] - posed[:, p, None], axis=-1)
        np.testing.assert_allclose(posed_start, np.broadcast_to(rest_start, posed_start.shape),
                                   atol=2e-3, err_msg=CANONICAL_JOINTS[c])
        if np.linalg.norm(rest[c] - rest[p]) > 0.05:
            rest_axis = axis_distance(skinner.mesh.vertices[rigid], rest[p], rest[c])
            posed_axis = axis_distance(vertices[:, rigid], posed[:, p, None], posed[:, c, None])
            np.testing.assert_allclose(posed_axis, np.broadcast_to(rest_axis, posed_axis.shape),
                                       atol=2e-3, err_msg=CANONICAL_JOINTS[c])
    assert np.all(np.isfinite(normals))


def test_joint_radii_follow_the_body():
    avatar = get_avatars(["ben"])[0]
    radii = joint_radii(avatar.mesh(), avatar.rest_positions())
    name = {n: radii[i] for i, n in enumerate(CANONICAL_JOINTS)}
    assert name["l_wrist"] < name["l_elbow"] < name["l_shoulder"] < name["thorax"]
    assert name["r_hip"] == pytest.approx(name["hip"])  # the pelvis holds the hip joints
    assert 0.02 < name["l_wrist"] < 0.06 and 0.1 < name["spine"] < 0.2


def test_distortion_map_sends_each_image_pixel_to_its_undistorted_ray():
    camera = Camera(320, 240, 250.0, 252.0, 158.3, 121.7, (-0.24, 0.12, -0.01), (0.002, -0.001))
    xy = np.random.default_rng(0).uniform(-0.6, 0.6, (500, 2))
    np.testing.assert_allclose(camera.distort(undistort_points(camera, xy)), xy, atol=1e-9)

    geometry = ImageGeometry(camera, scale=0.5)
    assert (geometry.width, geometry.height) == (160, 120)
    # Barrel distortion: the undistorted canvas must reach beyond the image.
    assert geometry.canvas_width > geometry.width and geometry.canvas_height > geometry.height
    v, u = np.mgrid[0:geometry.canvas_height, 0:geometry.canvas_width]
    coordinates = np.stack([u, v], -1).astype(np.float32)
    sampled = np.stack([geometry.warp_nearest(coordinates[..., k]) for k in (0, 1)], -1)
    # Each image pixel reads the canvas pixel on its ray: project that canvas pixel's ray
    # through the lens and the scaled intrinsics, and land back on the image pixel.
    rays = np.stack([(sampled[..., 0] - geometry.canvas_cx) / geometry.fx,
                     (sampled[..., 1] - geometry.canvas_cy) / geometry.fy,
                     np.ones(sampled.shape[:2])], -1)
    landed = geometry.image_pixels(rays)
    iv, iu = np.mgrid[0:geometry.height, 0:geometry.width]
    assert np.abs(landed - np.stack([iu, iv], -1)).max() < 0.75  # nearest canvas pixel

    bilinear = geometry.warp(np.repeat((coordinates[..., :1] % 256).astype(np.uint8), 3, -1))
    assert bilinear.shape == (120, 160, 3) and bilinear.dtype == np.uint8
    box = geometry.output_box(slice(40, 60), slice(50, 90))
    part = geometry.warp(np.repeat((coordinates[..., :1] % 256).astype(np.uint8), 3, -1), box)
    np.testing.assert_array_equal(part, bilinear[box])


def test_png_encoder_round_trips_through_pillow():
    rng = np.random.default_rng(1)
    for image in (rng.integers(0, 256, (13, 17, 3), dtype=np.uint8),
                  rng.integers(0, 256, (5, 9), dtype=np.uint8),
                  rng.integers(0, 65536, (11, 7), dtype=np.uint16)):
        back = np.asarray(Image.open(io.BytesIO(encode_png(image))))
        np.testing.assert_array_equal(back, image)
    with pytest.raises(ValueError):
        encode_png(np.zeros((4, 4, 2), np.uint8))


def test_visibility_compares_joint_depth_with_the_surface_in_front():
    depth = np.full((10, 10), 5.0, np.float32)
    depth[:, :5] = 3.0  # something 2 m in front of the left half
    depth[0, 9] = 0.0  # nothing drawn
    pixels = np.array([[2.0, 2.0], [7.0, 2.0], [9.0, 0.0], [12.0, 3.0], [7.2, 8.4]])
    joint_depth = np.array([5.05, 5.05, 9.0, 5.0, 5.3])
    tolerance = visibility_tolerance(np.full(5, 0.1))
    visible = joint_visibility(depth, pixels, joint_depth, tolerance)
    np.testing.assert_array_equal(visible, [False, True, True, False, False])


def test_appearance_is_seeded_and_varied():
    looks = [Appearance.sample(np.random.default_rng([0, 7, k, 1])) for k in range(12)]
    assert Appearance.sample(np.random.default_rng([0, 7, 3, 1])) == looks[3]
    assert len({a.top for a in looks}) == 12 and len({a.floor_pattern for a in looks}) > 1
    colours = looks[0].segment_colours()
    assert colours.shape == (19, 3) and np.all((colours >= 0) & (colours <= 1))
    texture = looks[0].floor_texture(32)
    assert texture.shape == (32, 32, 3) and texture.dtype == np.uint8
    assert looks[0].background(40, 30).shape == (30, 40, 3)


def test_rendering_refuses_to_share_a_process_with_tensorflow(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    with pytest.raises(RuntimeError, match="another process"):
        use_platform("osmesa")


# --- in a child process: OpenGL -------------------------------------------------------------

def test_synth_imports_neither_tensorflow_nor_opengl():
    run_child("-c", "import sys, synth.render, synth.rendering, synth.preview; "
                    "bad = {'tensorflow', 'keras', 'pyrender', 'OpenGL'} & set(sys.modules); "
                    "assert not bad, bad")


@pytest.fixture(scope="module")
def checks(hdm05_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "checks.npz"
    run_child(pathlib.Path(__file__).parent / "render_helpers.py", hdm05_dir, out)
    with np.load(out) as data:
        return {key: data[key] for key in data.files}


def test_mask_covers_the_projected_joints(checks):
    assert checks["mask_hits"].mean() >= 0.95
    assert checks["mask_hits"].mean(axis=0).min() >= 0.8  # no joint systematically off


def test_depth_agrees_with_camera_space_joints(checks):
    gap = checks["joint_depth"] - checks["surface_depth"]  # surface in front: positive
    visible = checks["visible"]
    # A visible joint sits inside its limb: the surface lies in front by about the limb's
    # radius, never behind it and never by more than the thickest body part.
    assert np.all(gap[visible] > -0.02) and np.all(gap[visible] < 0.25)
    assert 0.02 < np.median(gap[visible]) < 0.15
    assert np.all(checks["depth_png_error"] <= 0.0005 + 1e-6)  # millimetre PNG rounding
    assert np.all(checks["floor_height"] < 0.008)  # back-projected floor pixels: z = 0


def test_far_wrist_is_hidden_from_the_side(checks):
    left_camera, right_camera = checks["side_visible"]
    assert left_camera[H36M["l_wrist"]] and not left_camera[H36M["r_wrist"]]
    assert right_camera[H36M["r_wrist"]] and not right_camera[H36M["l_wrist"]]
    assert left_camera[H36M["l_elbow"]] and right_camera[H36M["r_elbow"]]


def _tree_digest(folder: pathlib.Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def test_images_end_to_end_with_workers_and_resume(hdm05_dir, tmp_path):
    mocap = tmp_path / "mocap"
    mocap.mkdir()
    shutil.copy(hdm05_dir / "HDM_bd.asf", mocap)
    for clip_name in ("HDM_bd_hopBothLegs1hops_001_120", "HDM_bd_hopBothLegs1hops_002_120"):
        shutil.copy(hdm05_dir / f"{clip_name}.amc", mocap)
    out = tmp_path / "dataset"
    command = ["-m", "synth.render", mocap, "--out", out, "--avatars", "ava", "--cameras", "2",
               "--fps", "25", "--images", "--image-scale", "0.2", "--frame-step", "4",
               "--depth", "--mask", "--quiet"]
    run_child(*command, "--workers", "2")
    first = _tree_digest(out)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["images"]["frame_step"] == 4
    for entry in manifest["records"]:
        images = entry["images"]
        record = np.load(out / entry["file"], allow_pickle=False)
        frames = record["image_frames"]
        np.testing.assert_array_equal(frames, np.arange(0, entry["num_frames"], 4))
        assert record["visibility"].shape == (2, len(frames), 17)
        assert record["visibility"].dtype == bool and record["visibility"].mean() > 0.5
        assert record["visibility_full"].shape[:2] == (2, len(frames))
        for camera, (width, height) in enumerate(images["image_size"]):
            assert (width, height) == tuple(np.rint(0.2 * record["camera_image_size"][camera]))
            for frame in frames:
                folder = out / images["dir"]
                rgb = Image.open(folder / images["rgb"].format(camera=camera, frame=frame))
                assert rgb.size == (width, height) and rgb.mode == "RGB"
                depth = np.asarray(Image.open(folder / images["depth"].format(
                    camera=camera, frame=frame)))
                mask = np.asarray(Image.open(folder / images["mask"].format(
                    camera=camera, frame=frame)))
                assert depth.dtype == np.uint16 and mask.dtype == bool
                assert mask.any() and np.all(depth[mask] > 0)
        assert Image.open(out / images["preview"]).n_frames == len(frames)

    # Resume: nothing is rewritten.
    resumed = run_child(*command)
    assert "2 already finished" in resumed.stdout
    assert _tree_digest(out) == first
    # An interrupted clip (no sidecar) is rendered again, in this process: identical files.
    (out / "clips" / "hdm05_HDM_bd_hopBothLegs1hops_002_120.json").unlink()
    run_child(*command)
    assert _tree_digest(out) == first
