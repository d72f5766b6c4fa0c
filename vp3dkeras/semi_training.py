"""The semi-supervised mode of `python -m vp3dkeras.train` (and its labeled-only baseline).

A run whose `TrainConfig.uses_labeled_subset` (supervision "semi-supervised", or
"supervised" with `labeled_actors`) divides the split's training clips into labeled and
unlabeled ones (`vp3dkeras.data.semi_supervised.split_labeled_unlabeled`; the unlabeled side
uses only 2D keypoints and intrinsics). With `unlabeled_dataset` the unlabeled side is another
data set instead, e.g. a real set's 2D with no 3D used (`unlabeled_source`), and every
training clip of the split is labeled (or those of `labeled_actors`): synthetic 3D supervision
adapted to the 2D of the people it is meant for. `bone_jitter` re-proportions the labeled
windows (`vp3dkeras.data.bone_jitter`). A pose model and a trajectory model (the temporal
architecture, separate weights) train through their single-frame twins on batches of labeled
windows followed by as many unlabeled ones (`SemiSupervisedModel`, VideoPose3D's
back-projection objective, Pavllo et al. CVPR 2019 Sec. 4); the baseline trains the same
models on the labeled windows alone.

The run directory is that of a supervised run: config.json, checkpoint/ (the
`SemiSupervisedModel` with its optimizer and resume state, after every epoch), history.json,
summary.json, model.keras (the pose model, a plain `TemporalModel`) and
trajectory_model.keras. `resume=True` continues with the same batches, schedules, warm-up,
optimizer state and dropout RNG as an uninterrupted run.
"""
from __future__ import annotations

import json
import time
from typing import Dict, Optional

from vp3dkeras import quiet_tf  # noqa: F401  (first: TensorFlow without start-up noise)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from posecontract.dataset_format import read_manifest
from vp3dkeras import callbacks as cb
from vp3dkeras.cli_errors import one_line
from vp3dkeras.config import CONFIG, TrainConfig, write_config
from vp3dkeras.data.bone_jitter import bone_jitter_from_config
from vp3dkeras.data.semi_supervised import (ReprojectionWindowSampler,
                                            semi_supervised_batches, split_labeled_unlabeled)
from vp3dkeras.data.sequences import SequenceSource
from vp3dkeras.data.sources import open_source, split_source
from vp3dkeras.data.synth_source import SynthSource
from vp3dkeras.inference import keras_lifter
from vp3dkeras.models import TemporalModel, TrajectoryModel
from vp3dkeras.models.semi_supervised_model import SemiSupervisedModel, SemiSupervisedWarmup
from vp3dkeras.padding import model_padding

POSE_MODEL = "model.keras"
TRAJECTORY_MODEL = "trajectory_model.keras"
CLIPS = "labeled_clips.json"


def trajectory_errors(trajectory_model, source: SequenceSource) -> Dict[str, float]:
    """Root-position errors of whole-sequence trajectory predictions on `source`.

    Returns "trajectory_mm" (mean Euclidean error of the camera-space root, mm) and
    "trajectory_rel" (that error over the true depth, the training loss's 1/z weighting).
    """
    lift = keras_lifter(trajectory_model)
    errors, relative = [], []
    for index in range(len(source)):
        seq = source.load(index)
        root = lift(seq.keypoints_2d[None])[0, :, 0]
        error = np.linalg.norm(root - seq.trajectory, axis=-1)
        errors.append(error)
        relative.append(error / seq.trajectory[:, 2])
    return {"trajectory_mm": float(np.mean(np.concatenate(errors))) * 1000.0,
            "trajectory_rel": float(np.mean(np.concatenate(relative)))}


def unlabeled_source(config: TrainConfig, labeled: SequenceSource) -> SequenceSource:
    """The unlabeled side read from `config.unlabeled_dataset` (its `unlabeled_split`'s
    training side, or every sequence), checked: 2D keypoints and cameras in the labeled
    side's keypoint layout and lens model, every value finite.

    ValueError, one line naming the folder, for anything that makes it unusable: no such
    folder or file, a corrupt file, no cameras (back-projection needs each sequence's camera),
    keypoints other than the labeled convention's joints, another lens model, a split that
    leaves nothing, a NaN.
    """
    path = config.unlabeled_dataset
    layout = labeled.codec.layout
    name = config.unlabeled_vp3d_name or config.vp3d_name
    try:
        source = open_source(path, vp3d_name=name, keypoints=config.unlabeled_keypoints,
                             keypoints_in=layout.name, keypoints_out=layout.name,
                             require_cameras=True)
        if config.unlabeled_split:
            source = split_source(source, path, config.unlabeled_split,
                                  "--unlabeled-split")[0]
        if tuple(source.codec.input_layout.names) != tuple(layout.names):
            raise ValueError(f"its 2D keypoints ({source.codec.input_layout.name}) are not the "
                             f"labeled side's joints ({layout.name}), which the projection "
                             f"term compares them with")
        if source.lens_model != labeled.lens_model:
            raise ValueError(f"lens model {source.lens_model!r}, the labeled side's is "
                             f"{labeled.lens_model!r}")
        if not len(source):
            raise ValueError(f"--unlabeled-split {config.unlabeled_split} leaves no sequences")
        source.validate()
    except ValueError as error:
        text = one_line(error)
        if str(path) not in text:
            text = f"{path} (--unlabeled-dataset): {text}"
        raise ValueError(text) from None
    return source


def _build(config: TrainConfig, source: SynthSource) -> SemiSupervisedModel:
    joints = source.codec.num_joints
    pose_model = TemporalModel(joints, 2, joints, config.filter_widths,
                               channels=config.channels, dropout=config.dropout,
                               causal=config.causal, name="pose_model")
    trajectory_model = TrajectoryModel(joints, 2, config.filter_widths,
                                       channels=config.channels, dropout=config.dropout,
                                       name="trajectory_model")
    return SemiSupervisedModel(
        pose_model, trajectory_model, layout=source.codec.layout.name,
        pose_weight=config.pose_weight, trajectory_weight=config.trajectory_weight,
        projection_weight=config.projection_weight,
        bone_length_weight=config.bone_length_weight,
        unlabeled_weight=config.unlabeled_weight,
        labeled_only=config.supervision == "supervised",
        bone_target_gradient=config.bone_target == "trained", lens_model=source.lens_model)


def train_semi(config: TrainConfig, run_dir, resume: bool = False,
               stop_after_epochs: Optional[int] = None, time_budget_s: Optional[float] = None,
               verbose: int = 2) -> dict:
    """Trains (or resumes) a semi-supervised or labeled-only run; returns its summary."""
    # The projection term compares projected 3D with the 2D input: one convention for both.
    convention = config.keypoints_out or config.keypoints_in
    source = SynthSource(config.dataset, keypoints_in=convention, keypoints_out=convention)
    config.keypoints_in = config.keypoints_out = source.codec.layout.name
    split = source.split(config.split)
    semi = config.supervision == "semi-supervised"
    other = None  # the unlabeled side when it is another data set
    if config.unlabeled_dataset:
        labeled_keys = sorted(split.train)
        if config.labeled_actors:
            labeled_keys = split_labeled_unlabeled(
                read_manifest(config.dataset)["records"], split.train, config.labeled_actors,
                config.labeled_fraction, seed=config.seed)[0]
        other = unlabeled_source(config, source)
        unlabeled_keys = sorted({ref.clip_key for ref in other.refs})
    else:
        labeled_keys, unlabeled_keys = split_labeled_unlabeled(
            read_manifest(config.dataset)["records"], split.train,
            config.labeled_actors or None, config.labeled_fraction, seed=config.seed,
            unlabeled_actors=config.unlabeled_actors)
    if semi and not unlabeled_keys:
        raise ValueError(f"{config.dataset}: split {config.split} leaves no unlabeled clips")
    if not labeled_keys:
        raise ValueError(f"{config.dataset}: split {config.split} leaves no labeled clips")
    labeled_side = source.select(labeled_keys)
    unlabeled_side = other if other is not None else source.select(unlabeled_keys)
    test = source.select(split.test)
    bones = bone_jitter_from_config(source.codec.layout, source.codec.input_layout,
                                    config.bone_jitter, source.lens_model)
    # Data that cannot be used stop the run above, before its folder is made.
    run_dir, state, history, start_epoch = cb.open_run(run_dir, resume)
    keras.utils.set_random_seed(config.seed)
    if not resume:
        write_config(config, run_dir / CONFIG)

    if state:
        checkpoint = run_dir / cb.CHECKPOINT_DIR / cb.CHECKPOINT_MODEL
        model = keras.saving.load_model(checkpoint, safe_mode=True)
        cb.check_resumed_optimizer(model, state, checkpoint)
        optimizer = model.optimizer
        cb.set_seed_states(model, state["seed_states"])
    else:
        model = _build(config, source)
        optimizer = keras.optimizers.Adam(config.lr, amsgrad=True)
    model.compile(optimizer=optimizer, jit_compile=config.jit_compile == "on")
    pose_model = model.pose_model

    pad = model_padding(pose_model)
    common = dict(pad=pad, batch_size=config.batch_size, augment=config.flip_augment)
    labeled = ReprojectionWindowSampler(labeled_side, seed=config.seed, bones=bones, **common)
    unlabeled = (ReprojectionWindowSampler(unlabeled_side, with_3d=False,
                                           seed=config.seed + 1, **common) if semi else None)
    epoch_sampler = unlabeled or labeled
    windows = config.max_windows_per_epoch or epoch_sampler.num_windows
    steps = max(1, -(-windows // config.batch_size))
    (run_dir / CLIPS).write_text(json.dumps({
        "labeled": labeled_keys, "unlabeled": unlabeled_keys if semi else [],
        "unlabeled_dataset": config.unlabeled_dataset,
        "labeled_windows": labeled.num_windows,
        "unlabeled_windows": unlabeled.num_windows if semi else 0}, indent=1) + "\n")

    stopper = cb.StopAfter(stop_after_epochs, time_budget_s)
    nan_guard = cb.StopOnNonFinite()
    seconds_before = float(state.get("train_seconds", 0.0)) if state else 0.0
    callbacks = [cb.TrainingSchedule(config.epochs, config.lr, config.lr_decay,
                                     config.bn_momentum_start, config.bn_momentum_end)]
    if semi:
        callbacks.append(SemiSupervisedWarmup(config.warmup_epochs, config.unlabeled_weight))
    callbacks += [nan_guard, cb.RunCheckpoint(run_dir, history, seconds_before), stopper]
    if verbose:
        print(f"labeled: {len(labeled_keys)} clips, {labeled.num_windows} windows; "
              f"unlabeled: {unlabeled.num_windows if semi else 0} windows; {steps} steps of "
              f"{config.batch_size}{' + ' + str(config.batch_size) if semi else ''} windows "
              f"per epoch, epochs {start_epoch}..{config.epochs}", flush=True)
    started = time.perf_counter()
    fit = model.fit(semi_supervised_batches(labeled, unlabeled, start=start_epoch * steps),
                    epochs=config.epochs, initial_epoch=start_epoch, steps_per_epoch=steps,
                    callbacks=callbacks, shuffle=False, verbose=verbose)
    seconds = time.perf_counter() - started
    state, history = cb.read_resume_state(run_dir)
    epochs_done = state["epoch"] if state else 0
    nan = nan_guard.reason or next(
        (f"loss became {v}" for v in fit.history.get("loss", []) if not np.isfinite(v)), None)
    if nan:  # spoilt weights: no final models; the checkpoint holds the last finite epoch
        (run_dir / POSE_MODEL).unlink(missing_ok=True)
        (run_dir / TRAJECTORY_MODEL).unlink(missing_ok=True)
    else:
        pose_model.save(run_dir / POSE_MODEL)
        model.trajectory_model.save(run_dir / TRAJECTORY_MODEL)
    summary = {
        "epochs_done": epochs_done, "epochs": config.epochs,
        "finished": epochs_done >= config.epochs and not nan,
        "stopped": nan or stopper.reason, "nan": bool(nan),
        "train_seconds": state.get("train_seconds", seconds) if state else seconds,
        "train_seconds_this_run": seconds,
        "steps_per_epoch": steps, "batch_size": config.batch_size,
        "windows_per_epoch": steps * config.batch_size * (2 if semi else 1),
        "parameters": int(pose_model.count_params()),
        "receptive_field": pose_model.receptive_field(),
        "labeled_clips": len(labeled_keys),
        "unlabeled_clips": len(unlabeled_keys) if semi else 0,
        "labeled_windows": labeled.num_windows,
        "unlabeled_windows": unlabeled.num_windows if semi else 0,
        "train_sequences": len(labeled_side) + (len(unlabeled_side) if semi else 0),
        "train_frames": labeled_side.num_frames + (unlabeled_side.num_frames if semi else 0),
        "test_sequences": len(test),
        "final_loss_mm": history[-1]["pose_loss"] * 1000 if history else None,
        **({} if nan else trajectory_errors(model.trajectory_model, test)),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
