"""Scoring runs on real VideoPose3D-format sets (HumanEva-I from ../shared/real/humaneva):
subject splits with "/" in names, cameras estimated from ground-truth 2D, runs and data
whose joint conventions differ, detector-noise scoring, bone lengths."""
import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import shared_dir
from posecontract.layouts import H36M_17, HUMANEVA_15
from vp3dkeras.data import open_split
from vp3dkeras.data.calibration import decompose_projection, estimate_cameras, projection_matrix
from vp3dkeras.data.published_cameras import cameras_from_calibration, load_calibration
from vp3dkeras.data.joint_subset import JointSubsetSource
from vp3dkeras.data.sources import parse_subject_split
from vp3dkeras.data.vp3d_format import restricted_load_npz
from vp3dkeras.evaluate import main as evaluate_main
from vp3dkeras.metrics import bone_length_report
from vp3dkeras.train import main as train_main
from vp3dkeras.train_config import parse_image_size

HUMANEVA_SUBJECTS = ["Train/S1", "Train/S2", "Train/S3", "Validate/S1", "Validate/S2",
                     "Validate/S3"]
HUMANEVA_SPLIT = "subjects:Train/S1,Train/S2,Train/S3/Validate/S1,Validate/S2,Validate/S3"
HUMANEVA_OPTIONS = ["--vp3d-name", "humaneva15"]


@pytest.fixture(scope="module")
def humaneva_dir():
    path = shared_dir() / "real" / "humaneva"
    if not (path / "data_3d_humaneva15.npz").is_file():
        pytest.fail(f"HumanEva-I files not found at {path}; set VP3D_SHARED_DIR")
    return path


def test_subject_names_with_slashes_split_unambiguously():
    train, test = parse_subject_split(HUMANEVA_SPLIT, HUMANEVA_SUBJECTS)
    assert train == ["Train/S1", "Train/S2", "Train/S3"]
    assert test == ["Validate/S1", "Validate/S2", "Validate/S3"]
    explicit = "subjects:train=Train/S1,Train/S2;test=Validate/S3"
    assert parse_subject_split(explicit, HUMANEVA_SUBJECTS) == (["Train/S1", "Train/S2"],
                                                                 ["Validate/S3"])
    assert parse_subject_split("subjects:S1,S5/S9", ["S1", "S5", "S9"]) == (["S1", "S5"], ["S9"])
    # "A/B/C" with subjects A, B, C, A/B and B/C reads two ways: refused, both offered.
    with pytest.raises(ValueError, match="ambiguous.*train=A/B;test=C|ambiguous.*train=A;test=B/C"):
        parse_subject_split("subjects:A/B/C", ["A", "B", "C", "A/B", "B/C"])
    with pytest.raises(ValueError, match="no '/' splits it into two lists"):
        parse_subject_split("subjects:Train/S1/S4", HUMANEVA_SUBJECTS)
    with pytest.raises(ValueError, match=r"unknown subjects \['Train/S9'\]"):
        parse_subject_split("subjects:train=Train/S9;test=Validate/S1", HUMANEVA_SUBJECTS)
    with pytest.raises(ValueError, match="train=A,B;test=C,D"):
        parse_subject_split("subjects:train=Train/S1", HUMANEVA_SUBJECTS)
    assert parse_image_size("640x480") == parse_image_size("640,480") == [640.0, 480.0]


def test_dlt_recovers_a_known_camera():
    rng = np.random.default_rng(0)
    rotation = Rotation.from_euler("xyz", [100, 20, -30], degrees=True).as_matrix()
    translation = np.array([0.3, -0.2, 5.0])
    k = np.array([[800.0, 0, 310], [0, 805.0, 245], [0, 0, 1]])
    world = rng.uniform(-1, 1, (200, 3))
    camera = world @ rotation.T + translation
    pixels = camera @ k.T
    pixels = pixels[:, :2] / pixels[:, 2:]
    k_est, r_est, t_est = decompose_projection(projection_matrix(world, pixels))
    np.testing.assert_allclose(k_est, k, atol=1e-6 * 800)
    np.testing.assert_allclose(r_est, rotation, atol=1e-8)
    np.testing.assert_allclose(t_est, translation, atol=1e-8)
    with pytest.raises(ValueError, match="at least 6"):
        projection_matrix(world[:5], pixels[:5])


@pytest.fixture
def unnamed_humaneva(humaneva_dir, tmp_path):
    """HumanEva-I under a name no calibration ships for: cameras must come from elsewhere."""
    folder = tmp_path / "he"
    folder.mkdir()
    (folder / "data_3d_he.npz").symlink_to(humaneva_dir / "data_3d_humaneva15.npz")
    (folder / "data_2d_he_gt.npz").symlink_to(humaneva_dir / "data_2d_humaneva15_gt.npz")
    return folder


def test_humaneva_cameras_estimated_from_ground_truth_2d(humaneva_dir, unnamed_humaneva):
    positions_3d = restricted_load_npz(humaneva_dir / "data_3d_humaneva15.npz")["positions_3d"]
    positions_2d = restricted_load_npz(humaneva_dir / "data_2d_humaneva15_gt.npz")["positions_2d"]
    cameras, report = estimate_cameras(positions_3d, positions_2d, (640, 480))
    assert sorted(cameras) == HUMANEVA_SUBJECTS and all(len(c) == 3 for c in cameras.values())
    # Pinhole fit of distorted projections: about a pixel on average, never far off.
    assert all(e["mean_px"] < 1.5 and e["max_px"] < 12 for es in report.values() for e in es)
    for entry in cameras["Validate/S2"]:
        rotation = np.array(entry["rotation"])
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        fx, fy = entry["intrinsics"][:2]
        assert 650 < fx < 800 and abs(fx - fy) < 10  # HumanEva-I's 640x480 colour cameras
    # Near the published calibration (shipped with the package), not on it: the linear fit
    # without distortion trades pose against lens.
    published = cameras_from_calibration(load_calibration("humaneva15"))
    for subject, entries in cameras.items():
        for estimated, truth in zip(entries, published[subject]):
            relative = np.array(estimated["rotation"]) @ np.array(truth["rotation"]).T
            angle = np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1, 1)))
            assert angle < 6.0
            assert np.linalg.norm(np.subtract(estimated["translation"],
                                              truth["translation"])) < 0.5
    # Every camera-space target lies in front of its camera, a few metres away.
    with pytest.warns(UserWarning, match="cameras estimated"):
        train, test = open_split(unnamed_humaneva, HUMANEVA_SPLIT, image_size=[640, 480],
                                 estimate_cameras=True)
    assert {r.subject for r in train.refs} == set(HUMANEVA_SUBJECTS[:3])
    assert {r.subject for r in test.refs} == set(HUMANEVA_SUBJECTS[3:])
    depths = np.concatenate([test.load(i).trajectory[:, 2] for i in range(len(test))])
    assert 2.0 < depths.min() and depths.max() < 8.0


def test_bone_length_report_compares_predicted_and_true_lengths():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(20, 15, 3))
    report = bone_length_report(target * 1.1, target, HUMANEVA_15)
    true = {k: v["true"] for k, v in report["per_bone"].items()}
    assert set(true) == {f"{HUMANEVA_15.names[p]}-{HUMANEVA_15.names[c]}"
                         for p, c in HUMANEVA_15.bones()}
    for bone in report["per_bone"].values():
        assert bone["pred"] == pytest.approx(1.1 * bone["true"])
        assert bone["error"] == pytest.approx(0.1 * bone["true"])
    assert bone_length_report(target, target, HUMANEVA_15)["error"] == 0.0


def test_joint_subset_picks_joints_by_name(tiny_synth_dataset):
    train, _ = open_split(tiny_synth_dataset, "actor_out_hdm05_mm")
    subset = JointSubsetSource(train, HUMANEVA_15)
    full, part = train.load(0), subset.load(0)
    index = [H36M_17.index(n) for n in HUMANEVA_15.names]
    np.testing.assert_array_equal(part.keypoints_2d, full.keypoints_2d[:, index])
    np.testing.assert_allclose(part.poses_3d, full.poses_3d[:, index], atol=1e-6)
    assert subset.codec.layout.name == "humaneva15"
    with pytest.raises(ValueError, match=r"lack \['spine', 'neck_nose'\]"):
        JointSubsetSource(subset, H36M_17)


def test_run_scored_on_humaneva_on_the_joints_it_shares(tiny_synth_dataset, tiny_run,
                                                       humaneva_dir, unnamed_humaneva,
                                                       tmp_path, capsys):
    run = tmp_path / "he15"
    assert train_main(["--dataset", str(tiny_synth_dataset), "--split", "actor_out_hdm05_mm",
                       "--joints", "humaneva15", "--filter-widths", "3,3", "--channels", "8",
                       "--epochs", "1", "--batch-size", "64", "--val-windows", "64",
                       "--noise-2d", "on", "--out", str(run), "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["joints"] == "humaneva15" and config["noise_2d"] == "on"
    # No cameras file and no shipped calibration: refused with a one-line hint unless the
    # cameras are estimated.
    with pytest.raises(SystemExit, match="--estimate-cameras"):
        evaluate_main([str(run), "--dataset", str(unnamed_humaneva), "--split", HUMANEVA_SPLIT,
                       "--image-size", "640x480"])
    assert evaluate_main([str(run), "--dataset", str(unnamed_humaneva), "--split",
                          HUMANEVA_SPLIT, "--image-size", "640x480", "--estimate-cameras",
                          "--name", "estimated"]) == 0
    # HumanEva-I itself: its published calibration ships with the package.
    assert evaluate_main([str(run), "--dataset", str(humaneva_dir), "--split", HUMANEVA_SPLIT,
                          *HUMANEVA_OPTIONS]) == 0
    clean = json.loads((run / "eval_humaneva_subjects_Train_S1_Train_S2_Train_S3_Validate_S1_"
                               "Validate_S2_Validate_S3_test.json").read_text())
    assert clean["num_sequences"] == 126 and clean["num_frames"] == 14544
    assert set(clean["per_class"]) == {"Box", "Gestures", "Jog", "ThrowCatch", "Walking"}
    assert set(clean["metrics"]["per_group"]) == set(HUMANEVA_15.groups)
    assert len(clean["bones"]["per_bone"]) == 14 and clean["bones"]["error"] > 0
    assert "joints" not in clean  # the run's joints are the data's: nothing to say
    # HumanEva-I's S3 walk has its head below the thorax in 209 of 267 frames: named, scored.
    bad = clean["implausible_targets"]
    assert bad["frames"] == 3 * 209 and not bad["excluded"]
    assert all(key.startswith("Validate/S3/Walking 1 chunk4") for key in bad["sequences"])
    assert "(a data defect)" in capsys.readouterr().err
    assert evaluate_main([str(run), "--dataset", str(humaneva_dir), "--split", HUMANEVA_SPLIT,
                          *HUMANEVA_OPTIONS, "--exclude-implausible"]) == 0
    kept = json.loads((run / "eval_humaneva_subjects_Train_S1_Train_S2_Train_S3_Validate_S1_"
                             "Validate_S2_Validate_S3_test_plausible.json").read_text())
    assert kept["num_frames"] == 14544 - 3 * 209 and kept["implausible_targets"]["excluded"]
    assert kept["per_class"]["Walking"]["frames"] == clean["per_class"]["Walking"]["frames"] - 627
    assert evaluate_main([str(run), "--dataset", str(humaneva_dir), "--split", HUMANEVA_SPLIT,
                          *HUMANEVA_OPTIONS, "--noise-2d", "on",
                          "--name", "noisy"]) == 0
    noisy = json.loads((run / "eval_noisy.json").read_text())
    assert noisy["noise_2d"] == "on" and noisy["metrics"]["P1"] != clean["metrics"]["P1"]
    estimated = json.loads((run / "eval_estimated.json").read_text())
    assert estimated["num_frames"] == clean["num_frames"]
    assert estimated["metrics"]["P1"] != clean["metrics"]["P1"]  # other cameras, other targets

    # A 17-joint Human3.6M-layout run reads spine and neck/nose, which HumanEva lacks.
    with pytest.raises(SystemExit, match=r"\['spine', 'neck_nose'\].*cannot be scored"):
        evaluate_main([str(tiny_run), "--dataset", str(humaneva_dir), "--split",
                       HUMANEVA_SPLIT, *HUMANEVA_OPTIONS])
    # A humaneva15 run scored on 17-joint synthetic data: the 15 shared joints, said so.
    assert evaluate_main([str(run), "--dataset", str(tiny_synth_dataset), "--split",
                          "actor_out_hdm05_mm", "--name", "synth17"]) == 0
    cross = json.loads((run / "eval_synth17.json").read_text())
    assert cross["joints"]["scored"] == list(HUMANEVA_15.names)
    assert cross["joints"]["not_scored"] == ["spine", "neck_nose"]
    assert "share by name" in capsys.readouterr().out
    assert "spine, neck_nose are not predicted" in (run / "eval_synth17.md").read_text()
