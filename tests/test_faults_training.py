"""Faults injected into training: kills in the checkpoint window, a NaN batch, a checkpoint
whose parts disagree. A killed run resumed must end with the weights of an uninterrupted
one; a run that meets NaN must stop and say where."""
import json
import os

import keras
import numpy as np
import pytest

from run_helpers import TINY_TRAINING
from vp3dkeras import callbacks as cb
from vp3dkeras.data import WindowSampler
from vp3dkeras.train import main

EPOCHS = "3"


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler catches it."""


def _args(dataset):
    return ["--dataset", str(dataset), "--epochs", EPOCHS, *TINY_TRAINING]


@pytest.fixture(scope="module")
def uninterrupted(tiny_synth_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "whole"
    assert main([*_args(tiny_synth_dataset), "--out", str(run_dir)]) == 0
    return run_dir


def _weights(path):
    return keras.saving.load_model(path).get_weights()


def _assert_same_run(expected, resumed):
    for a, b in zip(_weights(expected / "model.keras"), _weights(resumed / "model.keras")):
        np.testing.assert_array_equal(a, b)
    history = json.loads((resumed / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]


def kill_before_state(monkeypatch):
    """Kill after the epoch-2 model is saved, before its resume state is written."""
    original = cb._write_atomic

    def write(path, text):
        if path.name == cb.CHECKPOINT_STATE and json.loads(text)["epoch"] == 2:
            raise Killed()
        original(path, text)
    monkeypatch.setattr(cb, "_write_atomic", write)


def kill_between_renames(monkeypatch):
    """Kill after the old checkpoint was moved aside, before the new one took its name."""
    original, seen = os.replace, []

    def replace(src, dst):
        if os.path.basename(str(dst)) == cb.CHECKPOINT_DIR:
            seen.append(dst)
            if len(seen) == 2:
                raise Killed()
        original(src, dst)
    monkeypatch.setattr(os, "replace", replace)


FAULTS = {"kill_after_model_before_state": kill_before_state,
          "kill_between_checkpoint_renames": kill_between_renames}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_run_killed_in_the_checkpoint_window_resumes_exactly(
        tiny_synth_dataset, uninterrupted, tmp_path, monkeypatch, fault):
    run_dir = tmp_path / "killed"
    with monkeypatch.context() as patch:
        FAULTS[fault](patch)
        with pytest.raises(Killed):
            main([*_args(tiny_synth_dataset), "--out", str(run_dir)])
    (run_dir / ".history.json.k1ll3d").write_text("[")  # a temporary a kill left behind
    assert main(["--resume", str(run_dir), "--quiet"]) == 0
    _assert_same_run(uninterrupted, run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["train_seconds"] > summary["train_seconds_this_run"]  # both invocations
    assert not [p.name for p in run_dir.rglob(".*")]  # no leftovers


def test_resume_refuses_a_checkpoint_whose_state_is_of_another_epoch(
        tiny_synth_dataset, uninterrupted, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "mixed"
    shutil.copytree(uninterrupted, run_dir)
    state_path = run_dir / "checkpoint" / "state.json"
    state = json.loads(state_path.read_text())
    state["epoch"] = 2
    state["optimizer_iterations"] //= 2
    state_path.write_text(json.dumps(state))
    from vp3dkeras.cli_errors import run_main

    assert run_main(main, ["--resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "model.keras" in err and "steps" in err


def test_a_nan_batch_stops_the_run_and_says_where(tiny_synth_dataset, tmp_path,
                                                  monkeypatch, capsys):
    original = WindowSampler.batches

    def batches(self, start=0):
        for number, (inputs, targets) in enumerate(original(self, start), start):
            if number == 2:
                inputs = inputs.copy()
                inputs[0, 0, 0, 0] = np.nan
            yield inputs, targets
    monkeypatch.setattr(WindowSampler, "batches", batches)
    run_dir = tmp_path / "nan"
    from vp3dkeras.cli_errors import run_main

    assert run_main(main, [*_args(tiny_synth_dataset), "--out", str(run_dir)]) == 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["nan"] and not summary["finished"]
    assert "epoch 1, batch 3" in summary["stopped"]
    assert not (run_dir / "model.keras").exists()
    assert "epoch 1, batch 3" in capsys.readouterr().err
