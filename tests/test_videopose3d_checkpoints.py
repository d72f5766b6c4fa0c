"""VideoPose3D checkpoints as its training script saves them load safely: only tensors and
plain data are rebuilt, never objects a file names.

The real-layout checkpoint and its PyTorch reference output are case 15 of
../shared/cases/real_inputs.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pickle

import numpy as np
import pytest

from conftest import shared_dir
from vp3dkeras.convert import load_videopose3d, read_torch_checkpoint

CASE = shared_dir() / "cases" / "real_inputs" / "15_vp3d_checkpoint_with_random_state"


def _case(name):
    path = CASE / name
    if not path.is_file():
        pytest.fail(f"{path} not found; set VP3D_SHARED_DIR to the shared/ folder")
    return path


def test_checkpoint_with_random_state_reproduces_the_reference_output():
    checkpoint = read_torch_checkpoint(_case("vp3d_style_checkpoint.bin"))
    name, keys = checkpoint["random_state"][:2]  # NumPy RandomState.get_state()
    assert name == "MT19937" and keys.shape == (624,) and keys.dtype == np.uint32
    assert {"model_pos", "model_traj", "optimizer", "epoch"} <= set(checkpoint)
    model = load_videopose3d(_case("vp3d_style_checkpoint.bin"))
    with np.load(_case("reference_io.npz")) as reference:
        x, expected = reference["x"], reference["y"]
    actual = model(x, training=False).numpy()
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() < 1e-6
    assert checkpoint["model_traj"] is None  # trained without the trajectory model
    with pytest.raises(KeyError, match="'model_traj' holds no weights"):
        load_videopose3d(_case("vp3d_style_checkpoint.bin"), key="model_traj")


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    torch.save({"model_pos": {"expand_conv.weight": torch.zeros(2, 2, 1)},
                "random_state": _Exploit(marker)}, path)
    with pytest.raises(pickle.UnpicklingError, match=r"evil.bin: refusing .*system"):
        load_videopose3d(path)
    assert not marker.exists()


def test_pre_zip_pytorch_files_load_with_only_numpy_globals_allowed(tmp_path):
    torch = pytest.importorskip("torch")
    source = read_torch_checkpoint(_case("vp3d_style_checkpoint.bin"))
    legacy = {"epoch": 80, "random_state": np.random.RandomState(1234).get_state(),
              "model_pos": {k: torch.from_numpy(np.array(v))
                            for k, v in source["model_pos"].items()}}
    path = tmp_path / "legacy.bin"
    torch.save(legacy, path, _use_new_zipfile_serialization=False)
    model = load_videopose3d(path)
    with np.load(_case("reference_io.npz")) as reference:
        assert np.abs(model(reference["x"], training=False).numpy()
                      - reference["y"]).max() < 1e-6
    evil = tmp_path / "evil_legacy.bin"
    torch.save({"x": _Exploit(tmp_path / "pwned")}, evil, _use_new_zipfile_serialization=False)
    with pytest.raises(pickle.UnpicklingError, match="evil_legacy.bin"):
        read_torch_checkpoint(evil)
    assert not (tmp_path / "pwned").exists()


def test_damaged_checkpoints_are_one_line_naming_the_file(tmp_path):
    pytest.importorskip("torch")  # a file that is no zip archive goes to PyTorch's reader
    data = _case("vp3d_style_checkpoint.bin").read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as error:
        load_videopose3d(truncated)
    assert str(truncated) in str(error.value) and "\n" not in str(error.value)
    import zipfile

    missing = tmp_path / "missing_storage.bin"
    with zipfile.ZipFile(_case("vp3d_style_checkpoint.bin")) as source, \
            zipfile.ZipFile(missing, "w") as target:
        for name in source.namelist():
            if not name.endswith("/data/3"):
                target.writestr(name, source.read(name))
    with pytest.raises(ValueError, match=r"missing_storage.bin: damaged PyTorch checkpoint"):
        load_videopose3d(missing)
