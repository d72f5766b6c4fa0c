"""`synth.render --engine ray` on a local Ray with 2 CPUs writes the local engine's dataset
byte for byte, also when a Ray worker is killed in the middle of a clip, and also to a URL
(fsspec) with the job's TFRecord shards."""
import hashlib
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from synth.render import RenderSettings, render_dataset
from conftest import copy_hdm05_clips

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CLIPS = {"bd": ("HDM_bd_hopBothLegs1hops_001_120", "HDM_bd_grabHighR_001_120",
                "HDM_bd_elbowToKnee1RepsLelbowStart_001_120"),
         "mm": ("HDM_mm_kickLFront1Reps_023_120", "HDM_mm_hopBothLegs1hops_031_120")}
ARGS = ["--avatars", "ava", "--cameras", "2", "--fps", "25", "--quiet"]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="ray is not installed (pip install -e .[ray])")


@pytest.fixture(scope="module")
def corpus(hdm05_dir, tmp_path_factory):
    return copy_hdm05_clips(hdm05_dir, tmp_path_factory.mktemp("ray_mocap"), CLIPS)


@pytest.fixture(scope="module")
def local_dataset(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray_local") / "local"
    render_dataset(corpus, out, RenderSettings(fps=25.0, avatars=("ava",), num_cameras=2),
                   progress=False)
    return out


@pytest.fixture(scope="module")
def local_shards(corpus, tmp_path_factory):
    """The local engine's job shards (`--shards-out`, 0.3 MB each) of the corpus."""
    root = tmp_path_factory.mktemp("ray_local_shards")
    render_dataset(corpus, root / "dataset", RenderSettings(fps=25.0, avatars=("ava",),
                                                            num_cameras=2),
                   progress=False, shards_out=root / "shards", shard_mb=0.3)
    return root / "shards"


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _contents(folder):
    """SHA-256 of every record, the manifest's records and the splits."""
    records = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted((folder / "clips").glob("*.npz"))}
    manifest = json.loads((folder / "manifest.json").read_text())["records"]
    splits = {p.name: p.read_text() for p in sorted((folder / "splits").glob("*.json"))}
    return records, manifest, splits


def _render_on_ray(corpus, out, *extra):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-m", "synth.render", str(corpus), "--out",
                             str(out), "--engine", "ray", "--workers", "2", *extra] + ARGS,
                            env=env,
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _busy_ray_workers():
    """PIDs of Ray worker processes running a clip (Ray titles them `ray::<function>`)."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title.startswith(b"ray::_process_safely"):
            pids.append(int(proc.name))
    return pids


def test_ray_writes_the_local_engines_records(corpus, local_dataset, tmp_path):
    out = tmp_path / "ray"
    process = _render_on_ray(corpus, out)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output[-3000:]
    assert "5 of 5 clips done" in output
    assert _contents(out) == _contents(local_dataset)
    assert json.loads((out / "failures.json").read_text()) == []


def test_a_killed_ray_worker_s_clip_is_retried_whole(corpus, local_dataset, local_shards,
                                                     tmp_path):
    out, shards = tmp_path / "ray_killed", tmp_path / "ray_killed_shards"
    process = _render_on_ray(corpus, out, "--shards-out", str(shards), "--shard-mb", "0.3")
    killed = None
    deadline = time.monotonic() + 240
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        busy = _busy_ray_workers()
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.02)
    output = process.communicate(timeout=300)[0]
    assert killed is not None, "no Ray worker was seen running a clip"
    assert process.returncode == 0, output[-3000:]
    assert _contents(out) == _contents(local_dataset)
    assert not [p for p in (out / "clips").iterdir() if p.name.startswith(".")]
    assert _files(shards) == _files(local_shards)  # the retried clip's records, once each


def test_ray_writes_to_a_url_with_the_local_engine_s_shards(corpus, local_dataset,
                                                            local_shards, tmp_path):
    """Ray workers write through fsspec (`file://` URLs: a file system every worker
    reaches) and the driver writes the job's shards: the same files as the local engine's
    run into folders."""
    out, shards = tmp_path / "ray_url", tmp_path / "ray_shards"
    process = _render_on_ray(corpus, out.as_uri(), "--shards-out", shards.as_uri(),
                             "--shard-mb", "0.3")
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output[-3000:]
    assert f"5 records in {len(list(local_shards.glob('*.tfrecord')))} shards: file://" \
        in output
    assert _contents(out) == _contents(local_dataset)
    assert _files(shards) == _files(local_shards)



def test_a_ray_that_cannot_be_joined_writes_nothing(corpus, tmp_path, monkeypatch):
    """Ray is started (or joined) before anything is written: when it cannot be, the run
    stops with start_ray's one-line ValueError and leaves no dataset folder holding only
    settings.json, nor a shard folder. (Ray's own refusal is simulated: joining a wrong
    address makes Ray retry for minutes.)"""
    from synth import engines

    def refuse(address, num_cpus):
        raise ValueError(f"--ray-address {address}: cannot start or join Ray (refused)")

    monkeypatch.setattr(engines, "start_ray", refuse)
    with pytest.raises(ValueError, match="cannot start or join Ray"):
        render_dataset(corpus, tmp_path / "set", RenderSettings(fps=25.0, avatars=("ava",),
                                                                num_cameras=2),
                       progress=False, engine="ray", ray_address="10.0.0.1:6379",
                       shards_out=tmp_path / "shards")
    assert not list(tmp_path.iterdir())
