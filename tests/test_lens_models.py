"""Lens models: Human3.6M's (VideoPose3D's) distortion formula next to OpenCV's, chosen by the
cameras data; the shipped Human3.6M and HumanEva-I calibrations; VideoPose3D's Human3.6M files
train without a cameras file (case 17 of ../shared/cases/real_inputs)."""
import json
import shutil

import numpy as np
import pytest

from conftest import shared_dir
from posecontract.layouts import H36M_17
from vp3dkeras import camera
from vp3dkeras.cameras_file import main as cameras_file_main
from vp3dkeras.data.published_cameras import cameras_from_calibration, load_calibration
from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.data.vp3d_format import open_vp3d, restricted_load_npz

CASE_17 = shared_dir() / "cases" / "real_inputs" / "17_videopose3d_h36m_files_without_cameras"
HUMANEVA = shared_dir() / "real" / "humaneva"


def h36m_reference(points, f, c, k, p):
    """Human3.6M's radial-tangential projection as its calibration documents it, written out
    per point in float64: clamp X/Z, Y/Z to [-1, 1]; r2; radial; tan = p . xy;
    xy' = xy (radial + tan) + p r2; pixel = f xy' + c."""
    out = []
    for point in points.reshape(-1, 3):
        xy = np.clip(point[:2] / point[2], -1, 1)
        r2 = xy @ xy
        radial = 1 + k[0] * r2 + k[1] * r2 ** 2 + k[2] * r2 ** 3
        distorted = xy * (radial + p @ xy) + p * r2
        out.append(f * distorted + c)
    return np.array(out).reshape(points.shape[:-1] + (2,))


def _h36m_cameras():
    calibration = load_calibration("h36m")
    return [(np.array(cam["focal_length"]), np.array(cam["center"]),
             np.array(cam["radial_distortion"]), np.array(cam["tangential_distortion"]),
             np.array(cam["image_size"])) for cam in calibration["cameras"]]


def _points_in_view(f, c, size, rng, count=400):
    """Camera-space points (metres) whose pinhole images fill the frame."""
    pixels = rng.uniform([0, 0], size, (count, 2))
    depth = rng.uniform(2.0, 7.0, (count, 1))
    return np.concatenate([(pixels - c) / f * depth, depth], axis=1)


def test_h36m_lens_model_reproduces_the_reference_on_every_human36m_camera():
    rng = np.random.default_rng(0)
    worst_gap = 0.0
    for f, c, k, p, size in _h36m_cameras():
        points = _points_in_view(f, c, size, rng)
        intrinsics = np.concatenate([f, c, k, p])
        ours = camera.project_to_2d_np(points, intrinsics, "h36m")
        np.testing.assert_allclose(ours, h36m_reference(points, f, c, k, p), atol=1e-6)
        opencv = camera.project_to_2d_np(points, intrinsics, "opencv")
        worst_gap = max(worst_gap, np.abs(opencv - ours).max())
    # the two tangential formulas differ by pixels on these cameras: the choice matters
    assert 1.0 < worst_gap < 10.0, worst_gap


def test_h36m_lens_model_clamps_normalised_coordinates():
    intrinsics = np.array([1000.0, 1000.0, 500.0, 500.0, -0.2, 0.2, 0.0, 0.001, -0.002])
    far = np.array([[1.7, -2.5, 1.0]])
    edge = np.array([[1.0, -1.0, 1.0]])
    np.testing.assert_allclose(camera.project_to_2d_np(far, intrinsics, "h36m"),
                               camera.project_to_2d_np(edge, intrinsics, "h36m"))
    assert not np.allclose(camera.project_to_2d_np(far, intrinsics, "opencv"),
                           camera.project_to_2d_np(edge, intrinsics, "opencv"))
    with pytest.raises(ValueError, match="unknown lens model 'fisheye'"):
        camera.project_to_2d(far, intrinsics, "fisheye")


@pytest.mark.parametrize("lens_model", camera.LENS_MODELS)
def test_mirrored_camera_projects_mirrored_points_under_each_lens_model(lens_model):
    codec = PoseCodec(H36M_17)
    f, c, k, p, size = _h36m_cameras()[1]
    intrinsics = codec.normalize_intrinsics(np.concatenate([f, c, k, p * 20]), size)
    points = np.random.default_rng(3).normal(size=(5, 17, 3)) * 0.4 + [0.3, 0.1, 4.0]
    projected = camera.project_to_2d_np(points, intrinsics.astype(np.float64), lens_model)
    mirrored = camera.project_to_2d_np(
        codec.flip(points), codec.flip_intrinsics(intrinsics, lens_model).astype(np.float64),
        lens_model)
    np.testing.assert_allclose(mirrored, codec.flip(projected), atol=1e-5)
    other = "opencv" if lens_model == "h36m" else "h36m"
    wrong = camera.project_to_2d_np(
        codec.flip(points), codec.flip_intrinsics(intrinsics, other).astype(np.float64),
        lens_model)
    assert np.abs(wrong - codec.flip(projected)).max() > 1e-3


def test_shipped_humaneva_calibration_reproduces_its_ground_truth_projections():
    if not HUMANEVA.is_dir():
        pytest.fail(f"{HUMANEVA} not found; set VP3D_SHARED_DIR to the shared/ folder")
    cameras = cameras_from_calibration(load_calibration("humaneva15"))
    positions_3d = restricted_load_npz(HUMANEVA / "data_3d_humaneva15.npz")["positions_3d"]
    positions_2d = restricted_load_npz(HUMANEVA / "data_2d_humaneva15_gt.npz")["positions_2d"]
    errors = []
    for subject in ("Train/S1", "Validate/S2", "Validate/S3"):
        action = sorted(positions_3d[subject])[0]
        world = positions_3d[subject][action]
        for view, entry in enumerate(cameras[subject]):
            assert entry["lens_model"] == "opencv"
            camera_space = world @ np.array(entry["rotation"]).T + entry["translation"]
            pixels = camera.project_to_2d_np(camera_space, np.array(entry["intrinsics"]),
                                             entry["lens_model"])
            truth = positions_2d[subject][action][view][: len(pixels)]
            errors.append(np.abs(pixels[: len(truth)] - truth).max())
    assert max(errors) < 0.5, errors


def test_cameras_file_command_writes_the_declared_lens_model(tmp_path, capsys):
    assert cameras_file_main(["h36m", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "data_cameras_h36m.json").read_text())
    entry = data["S9"][2]
    assert entry["lens_model"] == "h36m" and entry["image_size"] == [1000, 1000]
    rotation = np.array(entry["rotation"])
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-6)
    # every Human3.6M camera looks at the capture area around the world origin, 4-6 m away
    for subject in ("S1", "S5", "S6", "S7", "S8", "S9", "S11"):
        for entry in data[subject]:
            origin = np.array(entry["translation"])
            assert 3.5 < origin[2] < 6.5
            u, v = camera.project_to_2d_np(origin[None], np.array(entry["intrinsics"]),
                                           "h36m")[0]
            assert 0 < u < entry["image_size"][0] and 0 < v < entry["image_size"][1]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"cameras": [], "extrinsics": {}, "lens_model": "pinhole",
                               "length_unit": "mm"}))
    assert cameras_file_main([str(bad), str(tmp_path)]) == 2
    assert "bad.json: lens_model 'pinhole'" in capsys.readouterr().err


def _case_17(tmp_path, name="h36m"):
    if not CASE_17.is_dir():
        pytest.fail(f"{CASE_17} not found; set VP3D_SHARED_DIR to the shared/ folder")
    folder = tmp_path / "vp3d"
    folder.mkdir()
    shutil.copy(CASE_17 / "data_3d_h36m.npz", folder / f"data_3d_{name}.npz")
    shutil.copy(CASE_17 / "data_2d_h36m_cpn_ft_h36m_dbb.npz",
                folder / f"data_2d_{name}_cpn_ft_h36m_dbb.npz")
    return folder


def test_videopose3d_h36m_files_without_cameras_get_the_published_calibration(tmp_path):
    source = open_vp3d(_case_17(tmp_path), keypoints="cpn_ft_h36m_dbb")
    assert source.lens_model == "h36m" and source.has_3d and len(source) == 8
    seq = source.load(0)
    assert seq.poses_3d.shape == (30, 17, 3) and np.all(seq.trajectory[:, 2] > 1.0)
    np.testing.assert_allclose(seq.intrinsics[:2], [1145.0494, 1143.7811], rtol=1e-6)


def test_unknown_videopose3d_dataset_without_cameras_says_how_to_make_them(tmp_path):
    folder = _case_17(tmp_path, name="mystudio")
    with pytest.raises(ValueError, match=r"no data_cameras_mystudio.json: write one .*"
                                         r"python -m vp3dkeras.cameras_file"):
        open_vp3d(folder, keypoints="cpn_ft_h36m_dbb")


def test_semi_supervised_projection_uses_the_declared_lens_model(tmp_path):
    from vp3dkeras.data.semi_supervised import ReprojectionWindowSampler
    from vp3dkeras.models import TemporalModel, TrajectoryModel
    from vp3dkeras.models.semi_supervised_model import SemiSupervisedModel

    source = open_vp3d(_case_17(tmp_path), keypoints="cpn_ft_h36m_dbb")
    model = SemiSupervisedModel(TemporalModel(17, 2, 17, (3,), channels=8),
                                TrajectoryModel(17, 2, (3,), channels=8),
                                lens_model=source.lens_model)
    f, c, k, p, size = _h36m_cameras()[2]
    intrinsics = np.concatenate([f, c, k, p]).astype("float32")
    pose = np.random.default_rng(4).normal(size=(2, 1, 17, 3)).astype("float32") * 0.3
    root = np.array([0.9, -0.6, 3.0], "float32").reshape(1, 1, 1, 3).repeat(2, 0)
    projected = np.asarray(model.project(pose, root, intrinsics[None]))
    absolute = (pose - pose[..., :1, :] + root).astype("float64")
    expected = h36m_reference(absolute, f, c, k, p)
    np.testing.assert_allclose(projected, expected, atol=1e-2)
    assert model.get_config()["lens_model"] == "h36m"
    sampler = ReprojectionWindowSampler(source, (1, 1), batch_size=4, with_3d=False)
    normalized = source.load(0).normalized_intrinsics()
    np.testing.assert_allclose(sampler._fields()["intrinsics"][2](normalized)[7],
                               -normalized[7])


def test_humaneva_folder_gets_camera_space_3d_from_the_shipped_calibration():
    if not HUMANEVA.is_dir():
        pytest.fail(f"{HUMANEVA} not found; set VP3D_SHARED_DIR to the shared/ folder")
    source = open_vp3d(HUMANEVA)
    assert source.has_3d and source.lens_model == "opencv" and len(source) == 231
    for index in (0, 100, 230):
        seq = source.load(index)
        joints = (seq.poses_3d + seq.trajectory[:, None]).astype("float64")
        pixels = camera.project_to_2d_np(joints, seq.intrinsics.astype("float64"))
        truth = source.codec.denormalize_2d(seq.keypoints_2d, seq.image_size)
        assert np.abs(pixels - truth).max() < 0.5
