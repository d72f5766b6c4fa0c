"""Training callbacks: the paper's per-epoch schedules, resumable checkpoints, time limits.

Every schedule is a pure function of the epoch number, so a resumed run sets exactly the
values an uninterrupted one would have.
"""
from __future__ import annotations

import json
import math
import os
import pathlib
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


def _write_atomic(path: pathlib.Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


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


class RunCheckpoint(keras.callbacks.Callback):
    """After each epoch writes, atomically and in this order: the training model with its
    optimizer (`checkpoint/model.keras`), the per-epoch history (`history.json`) and the
    resume state (`checkpoint/state.json`: epochs done, dropout RNG states).

    An epoch whose loss is not finite is not saved (the run stops on NaN).
    """

    def __init__(self, run_dir, history: Optional[list] = None):
        super().__init__()
        self.run_dir = pathlib.Path(run_dir)
        self.history = list(history or [])
        self._started = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if not math.isfinite(float(logs.get("loss", 0.0))):
            return
        folder = self.run_dir / CHECKPOINT_DIR
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{CHECKPOINT_MODEL}"
        self.model.save(tmp)
        os.replace(tmp, folder / CHECKPOINT_MODEL)
        entry = {"epoch": epoch + 1, "seconds": time.perf_counter() - self._started}
        entry.update({k: float(v) for k, v in logs.items()})
        self.history.append(entry)
        _write_atomic(self.run_dir / HISTORY, json.dumps(self.history, indent=1) + "\n")
        state = {"epoch": epoch + 1, "seed_states": get_seed_states(self.model),
                 "optimizer_iterations": int(self.model.optimizer.iterations.numpy())}
        _write_atomic(folder / CHECKPOINT_STATE, json.dumps(state) + "\n")


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


def read_resume_state(run_dir):
    """(state dict, history list) of a run directory's last checkpoint, or (None, [])."""
    run_dir = pathlib.Path(run_dir)
    state_path = run_dir / CHECKPOINT_DIR / CHECKPOINT_STATE
    if not state_path.is_file():
        return None, []
    state = json.loads(state_path.read_text(encoding="utf-8"))
    history = []
    if (run_dir / HISTORY).is_file():
        history = json.loads((run_dir / HISTORY).read_text(encoding="utf-8"))
    return state, [h for h in history if h["epoch"] <= state["epoch"]]
