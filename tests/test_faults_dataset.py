"""Faults injected into dataset writing: leftovers of killed runs, a full disk, unreadable
file modes, and renders that depended on what a worker drew before."""
import errno
import hashlib
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import time

import pytest

from synth import dataset as ds
from synth.render import RenderSettings, main, render_dataset

REPO = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = RenderSettings(fps=20.0, avatars=("ava",), num_cameras=1, seed=0)
CLIPS = ("HDM_bd_hopBothLegs1hops_001_120", "HDM_bd_hopBothLegs1hops_002_120",
         "HDM_bd_grabHighR_001_120", "HDM_bd_elbowToKnee1RepsLelbowStart_001_120")


@pytest.fixture()
def mocap(hdm05_dir, tmp_path):
    folder = tmp_path / "mocap"
    folder.mkdir()
    shutil.copy(hdm05_dir / "HDM_bd.asf", folder)
    for clip in CLIPS[:2]:
        shutil.copy(hdm05_dir / f"{clip}.amc", folder)
    return folder


def test_leftover_temporary_files_of_killed_runs_are_removed(mocap, tmp_path):
    out = tmp_path / "out"
    render_dataset(mocap, out, SETTINGS, progress=False)
    dead = out / "clips" / ".hdm05_x__ava.npz.999999999.abcd.tmp"  # no such pid
    old = out / ".manifest.json.abcd.tmp"  # written before pids were in the names
    live = out / "clips" / f".y.npz.{os.getppid()}.abcd.tmp"  # a running writer's
    for path in (dead, old, live):
        path.write_bytes(b"partial")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    summary = render_dataset(mocap, out, SETTINGS, progress=False)
    assert summary["leftovers_removed"] == 2
    assert not dead.exists() and not old.exists() and live.exists()


def test_a_full_disk_fails_the_run_with_its_reason(mocap, tmp_path, monkeypatch, capsys):
    write_record = ds.write_record

    def no_space(store, rel, record):  # the disk fills up during the second clip
        if "_002_" in rel:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), store.url(rel))
        return write_record(store, rel, record)
    monkeypatch.setattr(ds, "write_record", no_space)
    code = main([str(mocap), "--out", str(tmp_path / "out"), "--avatars", "ava",
                 "--cameras", "1", "--fps", "20", "--quiet"])
    assert code == 1
    assert "No space left on device" in capsys.readouterr().out
    failures = json.loads((tmp_path / "out" / ds.FAILURES).read_text())
    assert len(failures) == 1
    assert all("No space left on device" in f["problem"] and ".npz" in f["problem"]
               for f in failures)


def test_dataset_files_are_readable_by_others(mocap, tmp_path):
    old = os.umask(0o022)
    try:
        render_dataset(mocap, tmp_path / "out", SETTINGS, progress=False)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(files) > 5
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o644}, modes


def _tree_digest(folder: pathlib.Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()
            and p.name not in ("manifest.json", "settings.json")}


def test_rendered_images_do_not_depend_on_the_worker(hdm05_dir, tmp_path):
    """A run with two workers and one with one write identical files over clips whose
    cameras differ in size: an image must not depend on what its process drew before.
    With a renderer reused across clips, software OpenGL (OSMesa, whose buffer only grew)
    made 34 of 338 files differ between two two-worker runs, whose clip orders varied."""
    mocap = tmp_path / "mocap"
    mocap.mkdir()
    shutil.copy(hdm05_dir / "HDM_bd.asf", mocap)
    for clip in CLIPS:
        shutil.copy(hdm05_dir / f"{clip}.amc", mocap)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("LP_NUM_THREADS", None)
    digests = []
    for run, workers in (("a", "2"), ("b", "1")):
        out = tmp_path / run
        result = subprocess.run(
            [sys.executable, "-m", "synth.render", str(mocap), "--out", str(out),
             "--avatars", "ava,dan", "--cameras", "4", "--fps", "20", "--images",
             "--image-scale", "0.3", "--frame-step", "16", "--depth", "--mask", "--quiet",
             "--workers", workers, "--seed", "1", "--renderer", "osmesa"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        digests.append(_tree_digest(out))
    assert len(digests[0]) > 100
    differing = [k for k in digests[0] if digests[0][k] != digests[1].get(k)]
    assert not differing, f"{len(differing)} files differ, e.g. {differing[:3]}"
