"""Shared test fixtures: where the real mocap lives.

The real clips are never copied into the repository: tests read them from ``../shared``
beside the checkout, or from the directory named by ``VP3D_SHARED_DIR``.
"""
import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def shared_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("VP3D_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def mocap_dir() -> pathlib.Path:
    path = shared_dir() / "mocap"
    if not path.is_dir():
        pytest.fail(f"real mocap not found at {path}; set VP3D_SHARED_DIR to the shared/ folder")
    return path


@pytest.fixture(scope="session")
def hdm05_dir(mocap_dir) -> pathlib.Path:
    return mocap_dir / "hdm05"


@pytest.fixture(scope="session")
def cmu_dir(mocap_dir) -> pathlib.Path:
    return mocap_dir / "cmu"


@pytest.fixture(scope="session")
def bvh_dir() -> pathlib.Path:
    """CMU subject 01 clips as BVH from Debian's assimp-testmodels package."""
    path = pathlib.Path(os.environ.get("VP3D_BVH_DIR", "/usr/share/assimp/models/BVH"))
    if not (path / "01_01.bvh").is_file():
        pytest.fail(f"BVH test clips not found at {path}; apt-get install assimp-testmodels")
    return path


TINY_CLIPS = {"bd": ("HDM_bd_hopBothLegs1hops_001_120",
                     "HDM_bd_elbowToKnee1RepsLelbowStart_001_120", "HDM_bd_grabHighR_001_120"),
              "mm": ("HDM_mm_kickLFront1Reps_023_120", "HDM_mm_hopBothLegs1hops_031_120")}


def copy_hdm05_clips(hdm05_dir: pathlib.Path, folder: pathlib.Path, clips) -> pathlib.Path:
    """Copies HDM05 clips ({actor: (clip name, ...)}) and their actors' skeletons into
    `folder`, a mocap folder for a small render; returns `folder`."""
    import shutil

    for actor, names in clips.items():
        shutil.copy(hdm05_dir / f"HDM_{actor}.asf", folder)
        for clip in names:
            shutil.copy(hdm05_dir / f"{clip}.amc", folder)
    return folder


def assert_same_batches(first, second, windows_seed: int = 3) -> None:
    """Two sequence sources give identical training batches: every array of window batches
    0, 1 and one past an epoch (`WindowSampler`, 27-frame windows, seeded) and of a whole-
    sequence batch (`SequenceBatcher`)."""
    import numpy as np

    from vp3dkeras.data.windows import SequenceBatcher, WindowSampler

    a = WindowSampler(first, (13, 13), batch_size=64, seed=windows_seed)
    b = WindowSampler(second, (13, 13), batch_size=64, seed=windows_seed)
    assert a.steps_per_epoch == b.steps_per_epoch
    for number in (0, 1, a.steps_per_epoch + 1):
        for x, y in zip(a.batch(number), b.batch(number)):
            np.testing.assert_array_equal(x, y)
    (inputs_a, *rest_a) = SequenceBatcher(first, 2, seed=1, max_frames=40).batch(1)
    (inputs_b, *rest_b) = SequenceBatcher(second, 2, seed=1, max_frames=40).batch(1)
    for key in ("keypoints", "mask"):
        np.testing.assert_array_equal(inputs_a[key], inputs_b[key])
    for x, y in zip(rest_a, rest_b):  # targets, sample weights
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="session")
def tiny_synth_dataset(tmp_path_factory, hdm05_dir) -> pathlib.Path:
    """Five real HDM05 clips of actors bd and mm on one avatar, two cameras, 25 fps (about
    280 camera frames); split `actor_out_hdm05_mm` trains on bd and tests on mm.

    Rendered by the command line in a subprocess: rendering and TensorFlow must not share a
    process (PLATFORM.md)."""
    import subprocess
    import sys

    mocap = copy_hdm05_clips(hdm05_dir, tmp_path_factory.mktemp("tiny_mocap"), TINY_CLIPS)
    out = tmp_path_factory.mktemp("tiny_dataset")
    subprocess.run([sys.executable, "-m", "synth.render", str(mocap), "--out", str(out),
                    "--avatars", "ava", "--cameras", "2", "--fps", "25", "--quiet"],
                   check=True, capture_output=True, cwd=REPO_ROOT)
    return out


@pytest.fixture(scope="session")
def tiny_run(tiny_synth_dataset, tmp_path_factory) -> pathlib.Path:
    """A run directory of `python -m vp3dkeras.train` on the tiny dataset: 8 epochs."""
    from run_helpers import TINY_TRAINING
    from vp3dkeras.train import main

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["--dataset", str(tiny_synth_dataset), "--out", str(run_dir), "--epochs", "8",
                 *TINY_TRAINING]) == 0
    return run_dir
