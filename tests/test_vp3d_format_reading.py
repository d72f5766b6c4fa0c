"""VideoPose3D-format files are read without trusting their pickles."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from synth import dataset as ds
from synth.export_vp3d import export_videopose3d
from vp3dkeras.data import RestrictedUnpickler, VP3DSource, open_source, restricted_load_npz
from vp3dkeras.data.sources import split_source
from vp3dkeras.data.vp3d_format import open_vp3d


class _RunsCommand:
    """Unpickling this object runs a shell command (the classic malicious pickle)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    hand_made = f"cos\nsystem\n(S'{command}'\ntR.".encode()  # protocol 0, os.system
    for payload in (hand_made, pickle.dumps({"S1": _RunsCommand(command)})):
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            RestrictedUnpickler(io.BytesIO(payload)).load()
    path = tmp_path / "data_2d_evil_gt.npz"
    holder = np.empty((), dtype=object)
    holder[()] = {"S1": {"walk": [_RunsCommand(command)]}}
    np.savez(path, positions_2d=holder)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_load_npz(path)
    with pytest.raises(pickle.UnpicklingError):
        open_source(tmp_path, image_size=(100, 100))
    assert not marker.exists()
    # The same file does run the command under a plain unpickler: the test is meaningful.
    pickle.loads(hand_made)
    assert marker.exists()


def test_restricted_unpickler_reads_plain_data_of_every_protocol():
    value = {"a": [np.arange(6, dtype=np.float32).reshape(2, 3), 1, 2.5, "x"],
             "b": {"c": np.float64(3.0), "d": (1, 2)}}
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        loaded = RestrictedUnpickler(io.BytesIO(pickle.dumps(value, protocol))).load()
        np.testing.assert_array_equal(loaded["a"][0], value["a"][0])
        assert loaded["a"][1:] == value["a"][1:] and loaded["b"] == value["b"]


def test_reads_exported_videopose3d_files_in_camera_space(tiny_synth_dataset, tmp_path):
    export_videopose3d(tiny_synth_dataset, tmp_path, "tiny")
    source = open_source(tmp_path)
    assert source.codec.layout.name == "h36m17" and source.has_3d
    entry = next(e for e in ds.read_manifest(tiny_synth_dataset)["records"]
                 if e["actor"] == "bd")
    record = ds.load_record(tiny_synth_dataset / entry["file"])
    subject = f"hdm05_bd_{entry['avatar']}"
    index = next(i for i, r in enumerate(source.refs)
                 if r.subject == subject and r.action == entry["clip_id"] and r.camera == 1)
    seq = source.load(index)
    # The export defaults to the dataset's Human3.6M joints.
    cam3d = record["joints3d_camera__h36m17"][1]
    np.testing.assert_allclose(seq.poses_3d, cam3d - cam3d[:, :1], atol=1e-5)
    np.testing.assert_allclose(seq.trajectory, cam3d[:, 0], atol=1e-5)
    size = record["camera_image_size"][1]
    np.testing.assert_allclose(seq.keypoints_2d,
                               source.codec.normalize_2d(record["keypoints2d__h36m17"][1],
                                                         size),
                               atol=1e-6)
    train, test = split_source(source, tmp_path, "subjects:hdm05_bd_ava/hdm05_mm_ava")
    assert {r.subject for r in train.refs} == {"hdm05_bd_ava"} and len(test) == 4


def test_without_cameras_the_data_are_2d_only(tiny_synth_dataset, tmp_path):
    export_videopose3d(tiny_synth_dataset, tmp_path, "tiny")
    (tmp_path / "data_cameras_tiny.json").unlink()
    with pytest.raises(ValueError, match="image size"):
        open_vp3d(tmp_path)
    with pytest.warns(UserWarning, match="2D-only"):
        source = open_vp3d(tmp_path, image_size=(1000, 1000))
    assert not source.has_3d
    seq = source.load(0)
    assert seq.poses_3d is None and seq.keypoints_2d.shape[1:] == (17, 2)


def test_32_joint_h36m_3d_is_reduced_and_scores_dropped():
    rng = np.random.default_rng(0)
    positions_3d = {"S9": {"Walking 1": rng.normal(size=(12, 32, 3)).astype(np.float32)}}
    positions_2d = {"S9": {"Walking 1": [rng.uniform(0, 1000, (10, 17, 3)).astype(np.float32)]}}
    cameras = {"S9": [{"intrinsics": [1100, 1100, 500, 500, 0, 0, 0, 0, 0],
                       "image_size": [1000, 1002], "rotation": np.eye(3).tolist(),
                       "translation": [0, 0, 5]}]}
    metadata = {"layout_name": "h36m", "num_joints": 17,
                "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    source = VP3DSource(positions_2d, metadata, positions_3d, cameras)
    seq = source.load(0)
    assert seq.ref.num_frames == 10 and seq.ref.motion_class == "Walking"
    kept = positions_3d["S9"]["Walking 1"][:10, [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18,
                                                  19, 25, 26, 27]]
    np.testing.assert_allclose(seq.poses_3d, kept - kept[:, :1], atol=1e-6)
    bad = dict(metadata, keypoints_symmetry=[[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match="left/right"):
        VP3DSource(positions_2d, bad, positions_3d, cameras)


def test_npz_members_without_objects_need_no_pickle(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.arange(3))
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["a.npy"]
    np.testing.assert_array_equal(restricted_load_npz(path)["a"], np.arange(3))


def test_training_and_evaluation_read_videopose3d_files(tiny_synth_dataset, tmp_path):
    from vp3dkeras.evaluate import main as evaluate
    from vp3dkeras.train import main as train

    export_videopose3d(tiny_synth_dataset, tmp_path / "vp3d", "tiny")
    run = tmp_path / "run"
    assert train(["--dataset", str(tmp_path / "vp3d"), "--split",
                  "subjects:hdm05_bd_ava/hdm05_mm_ava", "--filter-widths", "3,3", "--channels",
                  "8", "--epochs", "1", "--batch-size", "64", "--out", str(run), "--quiet"]) == 0
    assert evaluate([str(run)]) == 0
    assert (run / "eval_subjects_hdm05_bd_ava_hdm05_mm_ava_test.md").is_file()
