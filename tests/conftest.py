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
