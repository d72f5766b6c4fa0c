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


@pytest.fixture(scope="session")
def tiny_synth_dataset(tmp_path_factory, hdm05_dir) -> pathlib.Path:
    """Five real HDM05 clips of actors bd and mm on one avatar, two cameras, 25 fps (about
    280 camera frames); split `actor_out_hdm05_mm` trains on bd and tests on mm.

    Rendered by the command line in a subprocess: rendering and TensorFlow must not share a
    process (PLATFORM.md)."""
    import shutil
    import subprocess
    import sys

    mocap = tmp_path_factory.mktemp("tiny_mocap")
    for actor, clips in TINY_CLIPS.items():
        shutil.copy(hdm05_dir / f"HDM_{actor}.asf", mocap)
        for clip in clips:
            shutil.copy(hdm05_dir / f"{clip}.amc", mocap)
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
