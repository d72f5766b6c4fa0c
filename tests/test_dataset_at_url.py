"""`synth.render --out URL` writes through fsspec (`synth.storage`) the files a run into a
folder writes, byte for byte; resumes, checks settings, merges shards and uploads images
there as it does in a folder."""
import hashlib
import os
import pathlib
import subprocess
import sys
import uuid

import fsspec
import pytest

from synth import dataset as ds
from synth.merge import merge_shards
from synth.render import RenderSettings, main, render_dataset
from conftest import copy_hdm05_clips

REPO = pathlib.Path(__file__).resolve().parents[1]
CLIPS = {"bd": ("HDM_bd_hopBothLegs1hops_001_120", "HDM_bd_grabHighR_001_120"),
         "mm": ("HDM_mm_kickLFront1Reps_023_120",)}
SETTINGS = RenderSettings(fps=25.0, avatars=("ava", "ben"), num_cameras=2)


@pytest.fixture(scope="module")
def corpus(hdm05_dir, tmp_path_factory):
    return copy_hdm05_clips(hdm05_dir, tmp_path_factory.mktemp("url_mocap"), CLIPS)


@pytest.fixture(scope="module")
def local_dataset(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("url_local") / "local"
    render_dataset(corpus, out, SETTINGS, progress=False)
    return out


@pytest.fixture()
def memory_url():
    """A fresh folder of fsspec's in-process memory file system (no disk behind it)."""
    url = f"memory://synth-test-{uuid.uuid4().hex[:8]}/set"
    yield url
    fs = fsspec.filesystem("memory")
    fs.rm(url.split("://")[1].split("/")[0], recursive=True)


def _folder_files(folder: pathlib.Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _url_files(url: str) -> dict:
    fs, root = fsspec.core.url_to_fs(url)
    return {path[len(root) + 1:]: hashlib.sha256(fs.cat_file(path)).hexdigest()
            for path in sorted(fs.find(root))}


def test_a_run_to_a_url_writes_the_folder_runs_files(corpus, local_dataset, memory_url,
                                                     tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a write that bypassed fsspec would land under ./memory:
    summary = render_dataset(corpus, memory_url, SETTINGS, progress=False)
    assert summary["done_clips"] == 3 and summary["failed"] == 0
    files = _url_files(memory_url)
    # Every file: records, sidecars, claims, manifest, settings, failures, splits.
    assert files == _folder_files(local_dataset)
    assert {"manifest.json", "settings.json", "failures.json", "splits/random.json",
            "clips/hdm05_HDM_mm_kickLFront1Reps_023_120__ben.npz"} <= set(files)
    assert not list(tmp_path.iterdir())
    assert ds.verify_dataset(memory_url) == []


def test_a_run_to_a_url_resumes_and_checks_its_settings(corpus, local_dataset, memory_url):
    render_dataset(corpus, memory_url, SETTINGS, progress=False)
    fs, root = fsspec.core.url_to_fs(memory_url)
    fs.rm_file(f"{root}/{ds.sidecar_file('hdm05_HDM_bd_grabHighR_001_120')}")
    summary = render_dataset(corpus, memory_url, SETTINGS, progress=False)
    assert (summary["resumed_clips"], summary["done_clips"]) == (2, 3)
    assert _url_files(memory_url) == _folder_files(local_dataset)

    other = RenderSettings(fps=25.0, avatars=("ava",), num_cameras=1)
    with pytest.raises(ds.SettingsMismatch, match=r"memory://.*num_cameras 2 -> 1"):
        render_dataset(corpus, memory_url, other, progress=False)
    summary = render_dataset(corpus, memory_url, other, progress=False, force=True)
    assert summary["resumed_clips"] == 0 and summary["records"] == 3
    assert not [f for f in _url_files(memory_url) if f.endswith("__ben.npz")]


def test_shards_of_a_run_merge_at_a_url(corpus, local_dataset, memory_url):
    for k in range(2):
        render_dataset(corpus, memory_url, SETTINGS, shard=(k, 2), progress=False)
    merge_shards([memory_url])
    merged = ds.open_store(memory_url).read_json("manifest.json")
    assert merged == ds.read_json(local_dataset / "manifest.json")


def test_a_url_fsspec_cannot_open_is_a_one_line_error(corpus, capsys, tmp_path):
    assert main([str(corpus), "--out", "nosuchprotocol://bucket/set", "--quiet",
                 "--avatars", "ava"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nosuchprotocol://bucket/set: cannot open this URL") \
        and err.count("\n") == 1
    # A command's memory file system would vanish when it exits (the library takes one).
    for where in (["--out", "memory://x/set"],
                  ["--out", str(tmp_path / "y"), "--shards-out", "memory://x/s"]):
        assert main([str(corpus), *where, "--quiet", "--avatars", "ava"]) == 2
        err = capsys.readouterr().err
        assert "an in-process file system, gone when this command exits" in err
        assert err.count("\n") == 1
    assert not (tmp_path / "y").exists()
    # Nor can worker processes of the library write into this process's memory.
    with pytest.raises(ValueError, match="memory://x/set: an in-process file system"):
        render_dataset(corpus, "memory://x/set", SETTINGS, workers=2, progress=False)


def test_an_out_that_is_a_file_is_a_one_line_error(corpus, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out in (str(a_file), f"file://{a_file}"):
        assert main([str(corpus), "--out", out, "--quiet", "--avatars", "ava"]) == 2
        assert capsys.readouterr().err == f"error: {out}: a file, not a dataset folder\n"
    assert a_file.read_text() == "x"


def test_images_are_uploaded_to_a_url_as_a_folder_holds_them(corpus, tmp_path):
    """Images are rendered into a local temporary folder and uploaded through fsspec
    (`file://`), in a process of their own (OpenGL never beside TensorFlow, PLATFORM.md)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    url = (tmp_path / "url").as_uri()
    for out in (str(tmp_path / "local"), url, url):
        result = subprocess.run(
            [sys.executable, "-m", "synth.render", str(corpus), "--out", out, "--avatars",
             "ava", "--cameras", "1", "--fps", "25", "--limit", "1", "--images",
             "--image-scale", "0.2", "--frame-step", "25", "--renderer", "osmesa",
             "--quiet"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
    # The last run found the images at the URL and resumed the clip.
    assert "(1 already finished before this run" in result.stdout
    local = _folder_files(tmp_path / "local")
    assert any(f.startswith("images/") and f.endswith(".png") for f in local)
    assert any(f.endswith("preview.gif") for f in local)
    assert _url_files(url) == local
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local", "url"]


def test_temporary_files_of_killed_writers_at_a_url_are_removed(corpus, tmp_path):
    """At a file system URL (temporary name, then a move) a killed writer's temporary file
    is removed: an old one before the run, any after it (every writer has finished)."""
    import time

    url = (tmp_path / "set").as_uri()
    settings = RenderSettings(fps=25.0, avatars=("ava",), num_cameras=1)
    render_dataset(corpus, url, settings, progress=False, limit=1)
    old = tmp_path / "set" / "clips" / ".x__ava.npz.999999.abcd1234.tmp"
    fresh = tmp_path / "set" / ".manifest.json.999999.abcd1234.tmp"
    for path in (old, fresh):
        path.write_bytes(b"partial")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    summary = render_dataset(corpus, url, settings, progress=False, limit=1)
    assert summary["leftovers_removed"] == 1  # before the run: only the old one
    assert not old.exists() and not fresh.exists()
