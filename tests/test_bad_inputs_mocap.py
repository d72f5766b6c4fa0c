"""Bad mocap folders and reruns given to `python -m synth.render`: each must end in a
one-line error or a failure naming the file, never in a silently wrong dataset."""
import json
import os
import shutil
import time

import pytest

from robustness import NAMED, SILENT
from synth import dataset as ds
from synth.render import RenderSettings, main, render_dataset

SETTINGS = RenderSettings(fps=20.0, avatars=("ava",), num_cameras=1, seed=0)
CLIP = "HDM_bd_hopBothLegs1hops_001_120"


def _hdm05_clip(hdm05_dir, folder, name=CLIP):
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(hdm05_dir / "HDM_bd.asf", folder)
    shutil.copy(hdm05_dir / f"{CLIP}.amc", folder / f"{name}.amc")


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


def same_name_in_two_folders(hdm05_dir, bvh_dir, root):
    _hdm05_clip(hdm05_dir, root / "session1")
    _hdm05_clip(hdm05_dir, root / "session2")
    return ["session1", "session2"]


def unicode_names_sanitised_alike(hdm05_dir, bvh_dir, root):
    root.mkdir()
    shutil.copy(bvh_dir / "01_01.bvh", root / "wälk.bvh")
    shutil.copy(bvh_dir / "01_03.bvh", root / "wölk.bvh")
    return ["wälk.bvh", "wölk.bvh"]


COLLISIONS = {"same_name_in_two_folders": same_name_in_two_folders,
              "unicode_names_sanitised_alike": unicode_names_sanitised_alike}


def collision_outcome(hdm05_dir, bvh_dir, tmp_path, case, workers):
    """Renders a folder of two files that map to one clip key; named when the run reports
    one failure naming both files and the manifest lists the key once."""
    names = COLLISIONS[case](hdm05_dir, bvh_dir, tmp_path / "mocap")
    out = tmp_path / "out"
    summary = render_dataset(tmp_path / "mocap", out, SETTINGS, workers=workers,
                             progress=False)
    entries = _manifest(out)["records"]
    if len(entries) != len({(e["clip_key"], e["avatar"]) for e in entries}):
        return SILENT
    failures = json.loads((out / ds.FAILURES).read_text())
    if summary["done_clips"] == 1 and len(failures) == 1 and all(
            n in failures[0]["path"] + failures[0]["problem"] for n in names):
        return NAMED
    return SILENT


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("case", sorted(COLLISIONS))
def test_two_files_with_one_clip_key_are_reported_naming_both(
        hdm05_dir, bvh_dir, tmp_path, case, workers):
    outcome = collision_outcome(hdm05_dir, bvh_dir, tmp_path, case, workers)
    assert outcome == NAMED, f"OUTCOME={outcome}"


#: A first run's settings changed on the rerun into the same folder.
RERUNS = {"fps": ["--fps", "25"], "cameras": ["--cameras", "2"], "seed": ["--seed", "7"],
          "avatars": ["--avatars", "ben"], "bvh_scale": ["--bvh-scale", "0.0254"]}
BASE = ["--avatars", "ava", "--cameras", "1", "--fps", "20", "--quiet"]


def rerun_outcome(hdm05_dir, tmp_path, setting, capsys):
    _hdm05_clip(hdm05_dir, tmp_path / "mocap")
    out = tmp_path / "out"
    assert main([str(tmp_path / "mocap"), "--out", str(out), *BASE]) == 0
    before = (out / "manifest.json").read_bytes()
    capsys.readouterr()
    args = [str(tmp_path / "mocap"), "--out", str(out), *BASE, *RERUNS[setting]]
    code = main(args)
    err = capsys.readouterr().err.strip()
    if code == 0:
        return SILENT, err
    named = (code == 2 and len(err.splitlines()) == 1 and str(out) in err
             and (out / "manifest.json").read_bytes() == before)
    return (NAMED if named else "crash"), err


@pytest.mark.parametrize("setting", sorted(RERUNS))
def test_a_rerun_with_other_settings_is_refused_and_force_starts_over(
        hdm05_dir, tmp_path, setting, capsys):
    outcome, err = rerun_outcome(hdm05_dir, tmp_path, setting, capsys)
    assert outcome == NAMED, f"OUTCOME={outcome}: {err}"
    assert "--force" in err
    out = tmp_path / "out"
    assert main([str(tmp_path / "mocap"), "--out", str(out), *BASE, *RERUNS[setting],
                 "--force"]) == 0
    records = _manifest(out)["records"]
    settings = _manifest(out)["settings"]
    assert len(records) == len(settings["avatars"])
    assert all(r["num_cameras"] == settings["num_cameras"] and r["fps"] == settings["fps"]
               for r in records)


def test_an_empty_clip_is_named_as_empty_and_fast(tmp_path):
    mocap = tmp_path / "mocap"
    mocap.mkdir()
    for i in range(2000):
        (mocap / f"{i:02d}_{i:02d}.amc").touch()
    started = time.perf_counter()
    summary = render_dataset(mocap, tmp_path / "out", SETTINGS, progress=False)
    seconds = time.perf_counter() - started
    assert summary["failed"] == 2000
    assert {f["problem"] for f in summary["failures"]} == {"empty file"}
    assert seconds < 20, f"{seconds:.1f} s for 2000 empty files"


def test_clips_in_a_symlinked_folder_are_found(hdm05_dir, tmp_path):
    _hdm05_clip(hdm05_dir, tmp_path / "elsewhere" / "bd")
    (tmp_path / "mocap").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "mocap" / "linked")
    os.symlink(tmp_path / "mocap", tmp_path / "elsewhere" / "loop")  # a loop must end
    summary = render_dataset(tmp_path / "mocap", tmp_path / "out", SETTINGS, progress=False)
    assert summary["done_clips"] == 1 and summary["failed"] == 0, \
        f"OUTCOME=silent: {summary['clips']} clips found"
