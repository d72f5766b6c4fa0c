"""Train a lifting model, every mode from one entry point and one config schema.

    python -m vp3dkeras.train --config experiments/configs/STUDY/NAME.yaml [--out RUN_DIR]
    python -m vp3dkeras.train --dataset DIR --split NAME --out RUN_DIR
        [--keypoints-in coco17] [--keypoints-out h36m17]
        [--model temporal|refiner] [--filter-widths 3,3,3] [--channels 1024] [--dropout 0.25]
        [--causal] [--training-mode single-frame|chunked] [--chunk-length 64]
        [--kernel-size 3] [--num-layers 3] [--dilated] [--max-frames 256]
        [--supervision supervised|semi-supervised] [--labeled-actors bd]
        [--unlabeled-dataset DIR] [--unlabeled-split SPLIT] [--unlabeled-vp3d-name NAME]
        [--unlabeled-keypoints gt]
        [--labeled-fraction 0.1] [--warmup-epochs 2] [--pose-weight 1] [--trajectory-weight 1]
        [--projection-weight 1] [--bone-length-weight 1] [--unlabeled-weight 1]
        [--epochs 20] [--batch-size N] [--lr 1e-3] [--lr-decay 0.95] [--seed 0]
        [--bn-momentum-start 0.1] [--bn-momentum-end 0.001] [--no-flip-augment]
        [--max-windows-per-epoch N] [--val-windows 4096] [--jit-compile auto|on|off]
        [--distribute auto|mirrored|none|multiworker] [--time-budget-minutes M]
        [--vp3d-name NAME] [--keypoints gt] [--layout NAME]
        [--image-size WxH] [--estimate-cameras] [--joints LAYOUT] [--noise-2d off|on]
        [--noise-2d-level 1.0]
    KERAS_BACKEND=jax python -m vp3dkeras.train ... --distribute multiworker
        --coordinator HOST:PORT --num-workers N --worker-id I      (one command per worker)
    python -m vp3dkeras.train --resume RUN_DIR [--epochs N] [--time-budget-minutes M]

Settings are one `vp3dkeras.config.TrainConfig`: an experiment is a JSON or YAML file of it
(`--config`; options on the command line override it), and every run writes it as its
`config.json`. Without `--out` the run goes to `runs/<name>`, the name encoding the setup.

Temporal model (VideoPose3D): trained with single-frame batching through its strided twin
(one receptive field of 2D per target frame), or layer by layer on chunks of frames. Refiner:
the sequence-to-sequence baseline on whole sequences (random crops of `--max-frames`) with a
frame mask. Both use MPJPE on root-relative camera-space poses (metres), AMSGrad, lr decayed
by `--lr-decay` each epoch and a batch-norm momentum decayed from 0.1 to `--bn-momentum-end`
(PyTorch convention; 0.001 for the temporal model, 0.01 for the refiner, whose epochs are
a few dozen steps) over the run. Semi-supervised (`--supervision semi-supervised`, or the
labeled-only baseline: `--labeled-actors` with supervision "supervised"): see
`vp3dkeras.semi_training`.

`--keypoints-in` / `--keypoints-out` choose a synth dataset's keypoint conventions for the 2D
input and the 3D output (`posecontract.conventions`; default h36m17 for both when the dataset
has it, else the canonical joints acclaim17); COCO-17 in, Human3.6M-17 out trains a lifter
for 2D detectors' output. The resolved names are stored in config.json, so
`vp3dkeras.evaluate` and `vp3dkeras.infer` use the same conventions.

The run directory holds `config.json`, `checkpoint/` (the training model with its optimizer
state and the resume state, rewritten after each epoch), `history.json`, TensorBoard logs
under `logs/` (supervised), `summary.json` and the final inference model `model.keras` (the
full-sequence model: for the temporal model its weights are those the single-frame twin
trained; semi-supervised runs add `trajectory_model.keras`). `--resume` continues any mode
from the checkpoint with the same batches, schedules, optimizer state and dropout RNG as an
uninterrupted run. Evaluate with `python -m vp3dkeras.evaluate RUN_DIR`.
`--joints LAYOUT` trains on that layout's joints, picked by name from the data (e.g.
`humaneva15` from Human3.6M-layout synthetic records). `--noise-2d on` adds detector-like
errors to the 2D of every training batch (`vp3dkeras.data.detector_noise`; `--noise-2d-level`
scales them, 1 = the calibrated default).

Several devices or workers (`vp3dkeras.distributed`): `--distribute mirrored` is
`MirroredStrategy` on the TensorFlow backend and `keras.distribution.DataParallel` over the
local devices on JAX; `--distribute multiworker` (JAX backend) trains one model over every
worker's devices, each worker cutting its own rows of every global batch, the chief (worker 0)
writing the run folder. Under `DataParallel` every batch is full (the stream runs on across
epoch ends) and `--batch-size` must split evenly over the devices.
"""
from __future__ import annotations

import json
import dataclasses
import pathlib
import shutil
import sys
import tempfile
import time
import warnings
from typing import Optional, Sequence

if __name__ == "__main__":  # --help and option errors answer before TensorFlow loads
    from vp3dkeras.train_config import build_parser as _early_parser

    _early_parser().parse_args()

from vp3dkeras import quiet_tf  # noqa: F401,E402  (first: TensorFlow without start-up noise)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vp3dkeras import callbacks as cb
from vp3dkeras import distributed
from vp3dkeras.data import SequenceBatcher, WindowSampler, open_split
from vp3dkeras.data.bone_jitter import bone_jitter_from_config
from vp3dkeras.data.detector_noise import noise_from_config
from vp3dkeras.data.tf_dataset import (array_dataset, sequence_dataset, sequence_eval_dataset,
                                       window_dataset)
from vp3dkeras.losses import MPJPELoss
from vp3dkeras.models import RefinerBaseline, TemporalModel
from vp3dkeras.padding import model_padding
from vp3dkeras.cli_errors import EXIT_UNUSABLE, UsageError, run_main
from vp3dkeras.config import CONFIG, write_config
from vp3dkeras.train_config import TrainConfig, build_parser, config_from_args  # noqa: F401

SUMMARY = "summary.json"
#: The run's copy of its `--skeletons` file (what a resumed run reads).
SKELETONS = "skeletons.json"
FINAL_MODEL = "model.keras"


def gpus_available() -> int:
    return len(tf.config.list_physical_devices("GPU"))


def resolve_jit(setting: str) -> bool:
    """XLA on GPU, off on CPU (it gave no speed-up there); "on"/"off" force it. On the JAX
    backend "auto" is on: JAX without jit runs op by op."""
    if setting == "auto":
        return gpus_available() > 0 or distributed.backend_is_jax()
    if setting not in ("on", "off"):
        raise ValueError(f"jit_compile must be auto, on or off, got {setting!r}")
    return setting == "on"


def make_strategy(setting: str) -> tf.distribute.Strategy:
    """MirroredStrategy over all GPUs when there are several ("auto") or when asked
    ("mirrored": on a machine without GPUs it mirrors the CPU); else the default strategy."""
    if setting == "mirrored" or (setting == "auto" and gpus_available() > 1):
        return tf.distribute.MirroredStrategy()
    if setting not in ("auto", "none", "mirrored"):
        raise ValueError(f"distribute must be auto, mirrored or none, got {setting!r}")
    return tf.distribute.get_strategy()


@dataclasses.dataclass
class Placement:
    """Where a run trains. strategy: the TF strategy whose scope builds the model (the
    default one on JAX); rows: this worker's rows of each global batch, or None (all);
    worker / workers: this process's index and the process count; replicas: devices in
    the data-parallel group; chief: whether this process writes the run folder."""

    strategy: tf.distribute.Strategy
    rows: Optional[slice] = None
    worker: int = 0
    workers: int = 1
    replicas: int = 1

    @property
    def chief(self) -> bool:
        return self.worker == 0


def make_placement(config: TrainConfig, cluster: Optional[dict] = None) -> Placement:
    """The run's placement from `config.distribute`; `cluster` ({"coordinator", "num_workers",
    "worker_id"}) for "multiworker". Sets the Keras distribution on JAX. ValueError for a
    setting the backend cannot do."""
    setting = config.distribute
    if setting not in ("auto", "none", "mirrored", "multiworker"):
        raise ValueError(f"distribute must be auto, mirrored, none or multiworker, got "
                         f"{setting!r}")
    if not distributed.backend_is_jax():
        if setting == "multiworker":
            distributed.initialize_workers(None, None, None)  # raises: needs JAX
        strategy = make_strategy(setting)
        return Placement(strategy, replicas=strategy.num_replicas_in_sync)
    import jax

    default = tf.distribute.get_strategy()
    if setting == "multiworker":
        cluster = cluster or {}
        worker, workers = distributed.initialize_workers(
            cluster.get("coordinator"), cluster.get("num_workers"), cluster.get("worker_id"))
        devices = len(jax.devices())
    elif setting == "mirrored" or (setting == "auto" and len(jax.local_devices()) > 1):
        worker, workers, devices = 0, 1, len(jax.local_devices())
    else:
        return Placement(default)
    keras.distribution.set_distribution(distributed.data_parallel(setting == "multiworker"))
    rows = distributed.worker_rows(config.batch_size, worker, workers, devices)
    return Placement(default, rows=rows, worker=worker, workers=workers, replicas=devices)


def build_models(config: TrainConfig, num_joints: int, num_joints_out: Optional[int] = None):
    """(inference model, model to fit): the full-sequence model and, for single-frame
    training, its strided twin (which shares its weights); otherwise the same model twice.
    `num_joints` 2D input keypoints, `num_joints_out` 3D output joints (default the same)."""
    keras_momentum = 1.0 - config.bn_momentum_start
    num_joints_out = num_joints if num_joints_out is None else num_joints_out
    if config.model == "refiner":
        model = RefinerBaseline(num_joints, num_joints_out, 2, channels=config.channels,
                                kernel_size=config.kernel_size, num_layers=config.num_layers,
                                dropout=config.dropout, dilated=config.dilated)
        model.build((None, None, num_joints, 2))
        return model, model
    model = TemporalModel(num_joints, 2, num_joints_out, config.filter_widths,
                          causal=config.causal, dropout=config.dropout,
                          channels=config.channels, dense=config.dense,
                          momentum=keras_momentum)
    model.build((None, None, num_joints, 2))
    if config.training_mode == "single-frame":
        twin = model.single_frame_twin()
        twin.build((None, model.receptive_field(), num_joints, 2))
        return model, twin
    return model, model


def compile_model(model, config: TrainConfig, optimizer=None) -> None:
    optimizer = optimizer or keras.optimizers.Adam(config.lr, amsgrad=True)
    model.compile(optimizer=optimizer, loss=MPJPELoss(), jit_compile=resolve_jit(
        config.jit_compile))


def inference_model_of(training_model):
    """The full-sequence model inside a training model (the twin's temporal model)."""
    return getattr(training_model, "temporal_model", training_model)


def make_data(config: TrainConfig, inference_model, train_source, test_source,
              start_epoch: int, placement: Optional[Placement] = None, bones=None):
    """(train dataset, steps per epoch, validation dataset or None, sampler); under a data-
    parallel `placement`, batches are full and each worker gets its rows. bones: the
    temporal sampler's `BoneJitter` (`train` builds it from the run's copy of the skeletons
    file); None: built here from the config."""
    placement = placement or Placement(tf.distribute.get_strategy())
    noise = noise_from_config(train_source.codec.input_layout, config.noise_2d,
                              config.noise_2d_level)
    if config.model == "refiner":
        sampler = SequenceBatcher(train_source, config.batch_size, seed=config.seed,
                                  augment=config.flip_augment, max_frames=config.max_frames,
                                  noise=noise)
        train = sequence_dataset(sampler, start_epoch * sampler.steps_per_epoch)
        val = None
        if config.val_windows and len(test_source):
            val = sequence_eval_dataset(SequenceBatcher(
                test_source, config.batch_size, augment=False, max_frames=None, shuffle=False))
        return train, sampler.steps_per_epoch, val, sampler
    chunk = 1 if config.training_mode == "single-frame" else config.chunk_length
    pad = model_padding(inference_model)
    if bones is None:
        bones = bone_jitter_from_config(train_source.codec.layout,
                                        train_source.codec.input_layout, config.bone_jitter,
                                        train_source.lens_model, config.skeletons)
    sampler = WindowSampler(train_source, pad, config.batch_size, chunk=chunk,
                            seed=config.seed, augment=config.flip_augment,
                            max_windows_per_epoch=config.max_windows_per_epoch, noise=noise,
                            bones=bones)
    batch_size = config.batch_size
    if placement.rows is not None:
        sampler.full_batches, sampler.rows = True, placement.rows
        batch_size //= placement.workers
    train = window_dataset(sampler, start_epoch * sampler.steps_per_epoch)
    val = None
    if config.val_windows and len(test_source):
        val_sampler = WindowSampler(test_source, pad, config.batch_size, chunk=chunk,
                                    augment=False)
        inputs, targets = val_sampler.fixed_subset(config.val_windows)
        if placement.rows is not None:
            # Every worker a contiguous part of a subset that splits over all devices.
            keep = len(inputs) - len(inputs) % placement.replicas
            part = keep // placement.workers
            mine = slice(placement.worker * part, (placement.worker + 1) * part)
            inputs, targets = inputs[:keep][mine], targets[:keep][mine]
        val = array_dataset(inputs, targets, batch_size) if len(inputs) else None
    return train, sampler.steps_per_epoch, val, sampler


def _receptive_field(model) -> Optional[int]:
    """Input frames that reach one output frame (the refiner's `context_frames()`)."""
    for name in ("receptive_field", "context_frames"):
        if hasattr(model, name):
            return int(getattr(model, name)())
    return None


def _write_json(path: pathlib.Path, data) -> None:
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def train(config: TrainConfig, run_dir, resume: bool = False,
          stop_after_epochs: Optional[int] = None, time_budget_s: Optional[float] = None,
          verbose: int = 2, cluster: Optional[dict] = None) -> dict:
    """Trains (or resumes) a run of any mode; returns its summary (also written to
    summary.json by the chief). cluster: {"coordinator", "num_workers", "worker_id"} for
    multiworker runs (supervised only)."""
    if config.uses_labeled_subset:
        if config.distribute == "multiworker":
            raise UsageError("semi-supervised training runs in one process (distribute "
                             "multiworker is for supervised runs)")
        from vp3dkeras.semi_training import train_semi

        summary = train_semi(config, run_dir, resume=resume,
                             stop_after_epochs=stop_after_epochs, time_budget_s=time_budget_s,
                             verbose=verbose)
        summary["device"] = "GPU" if gpus_available() else "CPU"
        _write_json(pathlib.Path(run_dir) / SUMMARY, summary)
        return summary
    placement = make_placement(config, cluster)
    verbose = verbose if placement.chief else 0

    keras.utils.set_random_seed(config.seed)
    train_source, test_source = open_split(
        config.dataset, config.split, vp3d_name=config.vp3d_name, keypoints=config.keypoints,
        layout=config.layout, image_size=config.image_size,
        cache_bytes=config.cache_mb * (1 << 20), keypoints_in=config.keypoints_in,
        keypoints_out=config.keypoints_out, joints=config.joints,
        estimate_cameras=config.estimate_cameras)
    # The conventions actually used (defaults resolved), for evaluate and infer; with
    # --joints, the data's conventions the joints were picked from.
    base_codec = getattr(train_source, "base_codec", train_source.codec)
    config.keypoints_in = base_codec.input_layout.name
    config.keypoints_out = base_codec.layout.name
    num_joints_in = train_source.codec.num_joints_in
    # Every record is read and checked once, here, so a corrupt file or a NaN stops the run
    # with its name before training instead of deep inside tf.data, and before the run
    # folder is made: a dataset that cannot be used leaves no half-made run behind.
    train_source.validate()
    test_source.validate()
    # The run keeps its own copy of a skeletons file: a resumed run trains on the same
    # skeletons wherever it is resumed from and whatever happened to the original.
    skeletons = None
    if config.skeletons:
        skeletons = pathlib.Path(run_dir) / SKELETONS
        if not (resume and skeletons.is_file()):
            skeletons = pathlib.Path(config.skeletons)
    bones = None
    if config.model == "temporal":  # a bad skeletons file or layout stops here, no run made
        bones = bone_jitter_from_config(train_source.codec.layout,
                                        train_source.codec.input_layout, config.bone_jitter,
                                        train_source.lens_model, skeletons)
    run_dir, state, history, start_epoch = cb.open_run(run_dir, resume)
    if not resume and placement.chief:
        write_config(config, run_dir / CONFIG)
        if skeletons is not None:
            shutil.copyfile(skeletons, run_dir / SKELETONS)
    num_joints = train_source.codec.num_joints
    strategy = placement.strategy
    with strategy.scope():
        if state:
            checkpoint = run_dir / cb.CHECKPOINT_DIR / cb.CHECKPOINT_MODEL
            loaded = keras.saving.load_model(checkpoint)
            cb.check_resumed_optimizer(loaded, state, checkpoint)
            training_model = loaded
            compile_model(training_model, config, optimizer=loaded.optimizer)
            cb.set_seed_states(training_model, state["seed_states"])
            inference_model = inference_model_of(training_model)
        else:
            inference_model, training_model = build_models(config, num_joints_in, num_joints)
            compile_model(training_model, config)
    train_data, steps, val_data, sampler = make_data(config, inference_model, train_source,
                                                     test_source, start_epoch, placement,
                                                     bones)
    stopper = cb.StopAfter(stop_after_epochs, time_budget_s)
    nan_guard = cb.StopOnNonFinite()
    seconds_before = float(state.get("train_seconds", 0.0)) if state else 0.0
    callbacks = [
        cb.TrainingSchedule(config.epochs, config.lr, config.lr_decay,
                            config.bn_momentum_start, config.bn_momentum_end),
        nan_guard,
    ]
    # Saving a model is a collective operation under a multi-process JAX distribution: every
    # worker saves, the others into a scratch folder deleted at the end.
    write_dir = run_dir if placement.chief else pathlib.Path(
        tempfile.mkdtemp(prefix=f"vp3d-worker{placement.worker}-"))
    callbacks += [
        keras.callbacks.TensorBoard(log_dir=str(write_dir / "logs"), write_graph=False),
        cb.RunCheckpoint(write_dir, history, seconds_before), stopper]
    if verbose:
        print(f"train: {train_source.describe()}\ntest:  {test_source.describe()}\n"
              f"{type(training_model).__name__}: {training_model.count_params()} parameters, "
              f"receptive field {_receptive_field(inference_model) or '-'}, "
              f"{steps} steps of {config.batch_size} per epoch, epochs {start_epoch}.."
              f"{config.epochs}", flush=True)
    # The refiner hands its frame mask to its layers explicitly; Keras warns that they do not
    # propagate it, which is intended.
    warnings.filterwarnings("ignore", message=".*does not support masking.*")
    started = time.perf_counter()
    fit = training_model.fit(train_data, epochs=config.epochs, initial_epoch=start_epoch,
                             steps_per_epoch=steps, validation_data=val_data,
                             callbacks=callbacks, verbose=verbose, shuffle=False)
    seconds = time.perf_counter() - started
    if not placement.chief:
        inference_model.save(write_dir / FINAL_MODEL)
        shutil.rmtree(write_dir, ignore_errors=True)
        return {"worker": placement.worker, "workers": placement.workers,
                "epochs_done": start_epoch + len(fit.history.get("loss", [])),
                "train_seconds_this_run": seconds, "stopped": stopper.reason,
                "nan": bool(nan_guard.reason)}
    state, history = cb.read_resume_state(run_dir)
    epochs_done = state["epoch"] if state else 0
    nan = nan_guard.reason or next(
        (f"loss became {v}" for v in fit.history.get("loss", []) if not np.isfinite(v)), None)
    if nan:  # the weights are spoilt: keep no final model; the checkpoint holds the last
        # finite epoch
        (run_dir / FINAL_MODEL).unlink(missing_ok=True)
    else:
        inference_model.save(run_dir / FINAL_MODEL)
    summary = {
        "epochs_done": epochs_done, "epochs": config.epochs,
        "finished": epochs_done >= config.epochs and not nan,
        "stopped": nan or stopper.reason,
        "nan": bool(nan),
        "train_seconds": state.get("train_seconds", seconds) if state else seconds,
        "train_seconds_this_run": seconds,
        "steps_per_epoch": steps, "batch_size": config.batch_size,
        "windows_per_epoch": sampler.examples_per_epoch,
        "parameters": int(inference_model.count_params()),
        "receptive_field": _receptive_field(inference_model),
        "train_sequences": len(train_source), "train_frames": train_source.num_frames,
        "test_sequences": len(test_source),
        "layout": train_source.codec.layout.name,
        "joint_names": list(train_source.codec.layout.names),
        "device": "GPU" if gpus_available() else "CPU",
        "replicas": placement.replicas, "workers": placement.workers,
        "backend": keras.backend.backend(),
        "final_loss_mm": history[-1]["loss"] * 1000 if history else None,
        "final_val_loss_mm": (history[-1].get("val_loss", float("nan")) * 1000
                              if history else None),
    }
    _write_json(run_dir / SUMMARY, summary)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    # An experiment config names its run: runs/<name> unless --out says otherwise.
    run_dir = args.resume or args.out or pathlib.Path("runs") / config.run_name()
    if args.resume is not None and args.epochs is not None and not args.worker_id:
        write_config(config, run_dir / CONFIG)
    if args.resume is None and (run_dir / cb.CHECKPOINT_DIR).exists() and not args.worker_id:
        raise UsageError(f"{run_dir} already holds a run: --resume it or pick a new --out")
    budget = args.time_budget_minutes * 60 if args.time_budget_minutes else None
    summary = train(config, run_dir, resume=args.resume is not None,
                    stop_after_epochs=args.stop_after_epochs, time_budget_s=budget,
                    verbose=0 if args.quiet else 2,
                    cluster={"coordinator": args.coordinator, "num_workers": args.num_workers,
                             "worker_id": args.worker_id})
    if "worker" in summary:
        if summary["nan"]:
            return EXIT_UNUSABLE
        print(f"worker {summary['worker']}/{summary['workers']}: {summary['epochs_done']} "
              f"epochs in {summary['train_seconds_this_run']:.0f} s")
        return 0
    loss = summary["final_loss_mm"]
    if summary["nan"]:
        print(f"error: training stopped: {summary['stopped']}; no model written (the "
              f"checkpoint holds epoch {summary['epochs_done']}); check the data and --lr",
              file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"{summary['epochs_done']}/{summary['epochs']} epochs in "
          f"{summary['train_seconds']:.0f} s; final loss "
          + (f"{loss:.1f} mm" if loss is not None else "-")
          + (f" ({summary['stopped']})" if summary["stopped"] else "")
          + f"; model: {run_dir / FINAL_MODEL}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
