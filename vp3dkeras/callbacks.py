"""Training callbacks: the paper's per-epoch schedules, resumable checkpoints, time limits.

Every schedule is a pure function of the epoch number, so a resumed run sets exactly the
values an uninterrupted one would have.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import shutil
import tempfile
import time
from typing import List, Optional

import keras
import numpy as np

from vp3dkeras.models import batch_norm_layers

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_MODEL = "model.keras"
CHECKPOINT_STATE = "state.json"
HISTORY = "history.json"


def learning_rate_at(epoch: int, initial: float = 1e-3, decay: float = 0.95) -> float:
    """The paper's learning rate: `initial * decay ** epoch` (decayed once per epoch)."""
    return float(initial * decay ** epoch)


def bn_momentum_at(epoch: int, epochs: int, start: float = 0.1, end: float = 0.001) -> float:
    """Batch-norm momentum in PyTorch's convention (weight of the new batch statistics),
    decayed exponentially from `start` at the first epoch to `end` at the last one.
    Keras' momentum (weight of the running value) is 1 minus this."""
    if epochs <= 1:
        return float(start)
    return float(start * (end / start) ** (epoch / (epochs - 1)))


def _file_mode() -> int:
    """The mode `open` gives new files (0666 less the umask); `mkstemp` would leave 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_atomic(path: pathlib.Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, _file_mode())
    os.replace(tmp, path)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite and remembers where
    (`reason`: epoch and batch, 1-based), unlike `TerminateOnNaN`, which only prints it."""

    def __init__(self):
        super().__init__()
        self.reason = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.reason = (f"loss became {float(loss)} at epoch {self._epoch + 1}, batch "
                           f"{batch + 1}")
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            if "loss" in key and not math.isfinite(float(value)) and self.reason is None:
                self.reason = f"{key} became {float(value)} at epoch {epoch + 1}"
                self.model.stop_training = True


class TrainingSchedule(keras.callbacks.Callback):
    """Sets the learning rate and every `BatchNorm` momentum at the start of each epoch and
    logs them (`lr`, `bn_momentum` in PyTorch's convention) and the loss in mm."""

    def __init__(self, epochs: int, lr: float = 1e-3, lr_decay: float = 0.95,
                 bn_momentum_start: float = 0.1, bn_momentum_end: float = 0.001):
        super().__init__()
        self.epochs = int(epochs)
        self.lr, self.lr_decay = float(lr), float(lr_decay)
        self.bn_momentum_start = float(bn_momentum_start)
        self.bn_momentum_end = float(bn_momentum_end)
        self._current = {}

    def on_epoch_begin(self, epoch, logs=None):
        lr = learning_rate_at(epoch, self.lr, self.lr_decay)
        momentum = bn_momentum_at(epoch, self.epochs, self.bn_momentum_start,
                                  self.bn_momentum_end)
        self.model.optimizer.learning_rate = lr
        for layer in batch_norm_layers(self.model):
            layer.momentum = 1.0 - momentum
        self._current = {"lr": lr, "bn_momentum": momentum}

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        logs.update(self._current)
        for key in ("loss", "val_loss"):
            if key in logs:
                logs[f"{key}_mm"] = float(logs[key]) * 1000.0


def seed_generators(model) -> List:
    """Every `keras.random.SeedGenerator` of the model's layers (dropout), in layer order."""
    generators = []
    for layer in model._flatten_layers():
        generators.extend(getattr(layer, "_seed_generators", []) or [])
    return generators


def get_seed_states(model) -> List[List[int]]:
    """The RNG states of the model's dropout layers, which `.keras` files do not keep."""
    return [np.asarray(g.state.numpy()).tolist() for g in seed_generators(model)]


def set_seed_states(model, states: List[List[int]]) -> None:
    generators = seed_generators(model)
    if len(generators) != len(states):
        raise ValueError(f"checkpoint has {len(states)} RNG states, model {len(generators)}")
    for generator, state in zip(generators, states):
        generator.state.assign(np.asarray(state, dtype=generator.state.dtype))


CHECKPOINT_TMP = ".checkpoint.tmp"
CHECKPOINT_OLD = ".checkpoint.old"


class CheckpointError(ValueError):
    """A run directory whose checkpoint cannot be resumed; the message names it."""


def write_checkpoint(run_dir, model, state: dict) -> pathlib.Path:
    """Writes `checkpoint/` as one unit: the training model with its optimizer
    (`model.keras`) and the resume state (`state.json`) go to a fresh `.checkpoint.tmp/`
    (state last, so a folder with a state is complete), which then replaces `checkpoint/` by
    two renames. A kill at any point leaves either the previous or the new checkpoint
    (`recover_checkpoint` finishes an interrupted switch), never a model of one epoch beside
    the state of another."""
    run_dir = pathlib.Path(run_dir)
    final, tmp, old = (run_dir / CHECKPOINT_DIR, run_dir / CHECKPOINT_TMP,
                       run_dir / CHECKPOINT_OLD)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / CHECKPOINT_MODEL)
    _write_atomic(tmp / CHECKPOINT_STATE, json.dumps(state) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def recover_checkpoint(run_dir) -> None:
    """Finishes or rolls back a checkpoint switch a kill interrupted, and removes the
    leftovers of a killed run (`.checkpoint.tmp/`, `.checkpoint.old/`, hidden temporaries)."""
    run_dir = pathlib.Path(run_dir)
    final, tmp, old = (run_dir / CHECKPOINT_DIR, run_dir / CHECKPOINT_TMP,
                       run_dir / CHECKPOINT_OLD)
    if not final.exists():
        if (tmp / CHECKPOINT_STATE).is_file():
            os.replace(tmp, final)
        elif (old / CHECKPOINT_STATE).is_file():
            os.replace(old, final)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    for leftover in (*run_dir.glob(f".{HISTORY}.*"), *final.glob(f".{CHECKPOINT_STATE}.*")):
        leftover.unlink(missing_ok=True)  # `_write_atomic` temporaries of a killed run


class RunCheckpoint(keras.callbacks.Callback):
    """After each epoch writes the checkpoint (`write_checkpoint`: the training model with
    its optimizer and the resume state: epochs done, optimizer steps, dropout RNG states,
    training seconds so far, the history) and then `history.json`, a copy for readers.

    An epoch whose loss is not finite is not saved (the run stops on NaN).
    seconds_before: training time of earlier invocations of a resumed run.
    """

    def __init__(self, run_dir, history: Optional[list] = None, seconds_before: float = 0.0):
        super().__init__()
        self.run_dir = pathlib.Path(run_dir)
        self.history = list(history or [])
        self.seconds_before = float(seconds_before)
        self._started = None
        self._run_started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if not all(math.isfinite(float(v)) for k, v in logs.items() if "loss" in k):
            return
        entry = {"epoch": epoch + 1, "seconds": time.perf_counter() - self._started}
        entry.update({k: float(v) for k, v in logs.items()})
        history = self.history + [entry]
        state = {"epoch": epoch + 1, "seed_states": get_seed_states(self.model),
                 "optimizer_iterations": int(self.model.optimizer.iterations.numpy()),
                 "train_seconds": self.seconds_before + time.perf_counter()
                 - self._run_started,
                 "history": history}
        write_checkpoint(self.run_dir, self.model, state)
        self.history = history
        _write_atomic(self.run_dir / HISTORY, json.dumps(self.history, indent=1) + "\n")


class StopAfter(keras.callbacks.Callback):
    """Stops at the end of an epoch once `epochs` epochs ran in this invocation or the
    wall-clock budget (seconds) is spent; the run can be resumed later."""

    def __init__(self, epochs: Optional[int] = None, seconds: Optional[float] = None):
        super().__init__()
        self.epochs, self.seconds = epochs, seconds
        self.ran = 0
        self.reason = None
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.ran += 1
        if self.epochs is not None and self.ran >= self.epochs:
            self.reason = f"stopped after {self.ran} epochs (--stop-after-epochs)"
        elif self.seconds is not None and time.perf_counter() - self._started >= self.seconds:
            self.reason = f"time budget of {self.seconds / 60:.1f} min spent"
        if self.reason:
            self.model.stop_training = True


def open_run(run_dir, resume: bool):
    """Creates `run_dir` and returns (run_dir as a Path, state or None, history, start epoch).

    With `resume`, the state and history of its last checkpoint (`read_resume_state`); raises
    `CheckpointError` naming the folder when there is none.
    """
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    state, history = read_resume_state(run_dir) if resume else (None, [])
    if resume and state is None:
        raise CheckpointError(f"{run_dir}: no checkpoint to resume (no "
                              f"{CHECKPOINT_DIR}/{CHECKPOINT_STATE})")
    return run_dir, state, history, (state["epoch"] if state else 0)


def read_resume_state(run_dir):
    """(state dict, history list) of a run directory's last checkpoint, or (None, []).

    Finishes an interrupted checkpoint switch first (`recover_checkpoint`). Raises
    `CheckpointError` naming the file when the state cannot be read.
    """
    run_dir = pathlib.Path(run_dir)
    recover_checkpoint(run_dir)
    state_path = run_dir / CHECKPOINT_DIR / CHECKPOINT_STATE
    if not state_path.is_file():
        return None, []
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        epoch = int(state["epoch"])
    except (ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{state_path}: unreadable resume state ({error})") from None
    if "history" in state:
        history = state["history"]
    elif (run_dir / HISTORY).is_file():  # checkpoints written before the state kept it
        history = json.loads((run_dir / HISTORY).read_text(encoding="utf-8"))
    else:
        history = []
    return state, [h for h in history if h["epoch"] <= epoch]


def check_resumed_optimizer(model, state: dict, path) -> None:
    """Raises `CheckpointError` when the loaded optimizer's step count is not the one the
    state recorded: the model and the state would come from different epochs."""
    expected = state.get("optimizer_iterations")
    found = int(model.optimizer.iterations.numpy())
    if expected is not None and found != int(expected):
        raise CheckpointError(f"{path}: optimizer has taken {found} steps but the resume state "
                              f"says {expected} (epoch {state['epoch']}); the checkpoint is "
                              f"inconsistent")
