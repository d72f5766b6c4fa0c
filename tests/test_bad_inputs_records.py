"""Bad dataset records are refused when loaded, with one line naming the file (and array).

Each case copies the tiny real dataset, spoils one record the way a user's disk or tool
might, and opens the split as training does. Before this check a NaN trained to a "finished"
run with NaN weights and a truncated file died in an 80-line TensorFlow traceback.
"""
import hashlib
import io
import json
import shutil
import zipfile

import numpy as np
import pytest

from robustness import NAMED, try_call, try_command
from vp3dkeras.data import open_split
from vp3dkeras.losses import MPJPELoss, mpjpe_loss, n_mpjpe_loss

SPLIT = "actor_out_hdm05_mm"


def _first_record(dataset):
    manifest = json.loads((dataset / "manifest.json").read_text())
    return manifest, manifest["records"][0]


def _rewrite(dataset, change, update_sha=True):
    """Applies `change(arrays) -> arrays` to the first record (re-hashed in the manifest
    unless `update_sha` is False); returns the record's path."""
    manifest, entry = _first_record(dataset)
    path = dataset / entry["file"]
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    buffer = io.BytesIO()
    np.savez(buffer, **change(arrays))
    path.write_bytes(buffer.getvalue())
    if update_sha:
        entry["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
        (dataset / "manifest.json").write_text(json.dumps(manifest))
    return path


def _used(arrays, key):
    """The record key training reads for `key`: its Human3.6M-convention copy where the
    record holds keypoint conventions (the default convention of training)."""
    return f"{key}__h36m17" if f"{key}__h36m17" in arrays else key


def _set(key, index, value):
    def change(arrays):
        key_used = _used(arrays, key)
        arrays[key_used] = arrays[key_used].copy()
        arrays[key_used][index] = value
        return arrays
    return change


def _bytes(dataset, change, update_sha=True):
    manifest, entry = _first_record(dataset)
    path = dataset / entry["file"]
    data = change(path.read_bytes())
    path.write_bytes(data)
    if update_sha:
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        (dataset / "manifest.json").write_text(json.dumps(manifest))
    return path


def _flip_stored_byte(data):
    """Flips one byte inside the first stored array, leaving the zip structure intact (the
    member's CRC no longer matches)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.infolist()[0]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    return data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1:]


def _object_array(arrays):
    buffer = io.BytesIO()
    arrays[_used(arrays, "keypoints2d")] = np.array([{"a": 1}], dtype=object)
    np.savez(buffer, **arrays)  # written with pickle, as a hostile tool could
    return arrays


#: name -> spoils a dataset copy and returns the path that must be named.
CASES = {
    "nan_in_keypoints2d": lambda d: _rewrite(d, _set("keypoints2d", (0, 3, 2, 0), np.nan)),
    "inf_in_joints3d_camera": lambda d: _rewrite(d, _set("joints3d_camera", (1, 0, 5, 2),
                                                         np.inf)),
    "nan_in_intrinsics": lambda d: _rewrite(d, _set("camera_intrinsics", (0, 0), np.nan)),
    "zero_image_size": lambda d: _rewrite(d, _set("camera_image_size", (0, 0), 0)),
    "wrong_joint_count": lambda d: _rewrite(
        d, lambda a: {**a, _used(a, "keypoints2d"): a[_used(a, "keypoints2d")][:, :, :5]}),
    "missing_array": lambda d: _rewrite(
        d, lambda a: {k: v for k, v in a.items() if k != _used(a, "joints3d_camera")}),
    "object_array": lambda d: _rewrite(d, _object_array),
    "truncated_file": lambda d: _bytes(d, lambda b: b[: len(b) // 2]),
    "empty_file": lambda d: _bytes(d, lambda b: b""),
    "crc_broken": lambda d: _bytes(d, _flip_stored_byte),
    "changed_since_manifest": lambda d: _bytes(d, _flip_stored_byte, update_sha=False),
    "garbage_file": lambda d: _bytes(d, lambda b: b"not a zip file at all" * 10),
    "missing_file": lambda d: (d / _first_record(d)[1]["file"]).unlink() or
    (d / _first_record(d)[1]["file"]),
}


def spoil(tiny_synth_dataset, tmp_path, case):
    dataset = tmp_path / "dataset"
    shutil.copytree(tiny_synth_dataset, dataset)
    return dataset, CASES[case](dataset)


def load_everything(dataset):
    """Loads every sequence of the split, as training and evaluation do."""
    for source in open_split(dataset, SPLIT):
        for _ in source:
            pass


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_spoilt_record_is_refused_naming_the_file(tiny_synth_dataset, tmp_path, case):
    dataset, path = spoil(tiny_synth_dataset, tmp_path, case)
    outcome = try_call(lambda: load_everything(dataset), [path.name])
    assert outcome.kind == NAMED, f"OUTCOME={outcome.kind}: {outcome.message}"


def test_training_on_a_nan_record_stops_before_the_first_step(tiny_synth_dataset, tmp_path):
    dataset, path = spoil(tiny_synth_dataset, tmp_path, "nan_in_keypoints2d")
    run_dir = tmp_path / "run"
    outcome = try_command(["vp3dkeras.train", "--dataset", str(dataset), "--split", SPLIT,
                           "--out", str(run_dir), "--epochs", "1", "--channels", "8",
                           "--filter-widths", "3", "--quiet"], [path.name])
    assert outcome.kind == NAMED, f"OUTCOME={outcome.kind}: {outcome.message}"
    assert "keypoints2d" in outcome.message
    assert not (run_dir / "model.keras").exists()


def test_losses_propagate_non_finite_predictions():
    target = np.zeros((2, 4, 17, 3), np.float32)
    for bad in (np.nan, np.inf):
        pred = np.ones_like(target)
        pred[1, 2, 3, 0] = bad
        loss = float(mpjpe_loss(target, pred))
        assert not np.isfinite(loss), f"OUTCOME=silent: loss {loss} for a {bad} prediction"
        assert not np.isfinite(float(n_mpjpe_loss(target, pred)))
        assert not np.isfinite(float(MPJPELoss()(target, pred)))
    # The zero-error case keeps its finite value and zero gradient.
    assert float(mpjpe_loss(target, target)) == 0.0
