"""A newcomer's first minutes with the command lines: quick help, no TensorFlow start-up
noise, one-line errors for wrong paths, files others can read."""
import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from robustness import NAMED, try_command

ENV = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
ENV.pop("TF_CPP_MIN_LOG_LEVEL", None)  # a newcomer has not set it

#: Commands that must name what is wrong in one line on stderr (no absl/CUDA lines).
WRONG_PATHS = {
    "evaluate_missing_run": (["vp3dkeras.evaluate", "/nonexistent/run"], ["/nonexistent/run"]),
    "train_missing_dataset": (["vp3dkeras.train", "--dataset", "/nonexistent/data", "--split",
                               "random", "--out", "{tmp}/run"], ["/nonexistent/data"]),
    "train_resume_missing_run": (["vp3dkeras.train", "--resume", "/nonexistent/run"],
                                 ["/nonexistent/run"]),
    "infer_missing_track": (["vp3dkeras.infer", "/nonexistent/model.keras", "--keypoints",
                             "/nonexistent/track.npz", "--width", "10", "--height", "10"],
                            ["/nonexistent/"]),
    "render_missing_mocap": (["synth.render", "/nonexistent/mocap", "--out", "{tmp}/d"],
                             ["/nonexistent/mocap"]),
}


@pytest.mark.parametrize("case", sorted(WRONG_PATHS))
def test_a_wrong_path_is_one_quiet_line(case, tmp_path):
    argv, names = WRONG_PATHS[case]
    argv = [a.format(tmp=tmp_path) for a in argv]
    outcome = try_command(argv, names, cwd=REPO_ROOT, env=ENV)
    assert outcome.kind == NAMED, f"OUTCOME={outcome.kind}: {outcome.message}"
    assert "cuInit" not in outcome.message and "absl" not in outcome.message


def test_train_help_does_not_import_tensorflow():
    probe = ("import atexit, runpy, sys\n"
             "atexit.register(lambda: sys.stderr.write('TF LOADED' if 'tensorflow' in "
             "sys.modules else 'TF NOT LOADED'))\n"
             "sys.argv = ['train', '--help']\n"
             "runpy.run_module('vp3dkeras.train', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=REPO_ROOT, env=ENV, timeout=120)
    assert result.returncode == 0 and "--resume" in result.stdout
    assert "TF NOT LOADED" in result.stderr


def test_run_files_are_readable_by_others(tiny_synth_dataset, tmp_path):
    run_dir = tmp_path / "run"
    old = os.umask(0o022)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "vp3dkeras.train", "--dataset", str(tiny_synth_dataset),
             "--split", "actor_out_hdm05_mm", "--out", str(run_dir), "--epochs", "1",
             "--channels", "8", "--filter-widths", "3", "--batch-size", "64", "--quiet"],
            capture_output=True, text=True, cwd=REPO_ROOT, env=ENV, timeout=300)
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    # What the user sees: the result line, nothing of TensorFlow's start-up.
    assert "cuInit" not in result.stderr and "I0000" not in result.stderr, result.stderr
    modes = {p.relative_to(run_dir).as_posix(): oct(stat.S_IMODE(p.stat().st_mode))
             for p in run_dir.rglob("*") if p.is_file()}
    assert "checkpoint/state.json" in modes and "summary.json" in modes
    assert set(modes.values()) == {"0o644"}, modes
