"""Semi-supervised training by back-projection on a synth dataset, then evaluation.

    python -m vp3dkeras.train_semi --dataset DIR --split NAME --labeled-actors bd
        --labeled-fraction 0.1 [--warmup-epochs 2] [--epochs 8] [--bone-length-weight 1]
        [--supervised-only] --out RUN_DIR

The split's training clips are divided into labeled and unlabeled ones
(`vp3dkeras.data.semi_supervised.split_labeled_unlabeled`); the unlabeled side uses only 2D
keypoints and intrinsics. A pose model and a trajectory model (the temporal architecture,
separate weights) train through their single-frame twins on batches of labeled windows
followed by as many unlabeled ones (`SemiSupervisedModel`); `--supervised-only` trains the same
models on the labeled windows alone, the baseline. Afterwards both models are evaluated on
whole test sequences (edge-padded, one prediction per frame) by `vp3dkeras.evaluate`'s
`evaluate_source`, without flip test-time augmentation unless `--flip-tta`.

RUN_DIR receives model.keras (the pose model, a plain `TemporalModel`, named as
`vp3dkeras.train` names its inference model), trajectory_model.keras (`TrajectoryModel`),
config.json (arguments and the labeled/unlabeled clip keys),
history.json (per-epoch loss terms) and metrics.json (P1, P2, P3 = N-MPJPE, MPJVE in mm, PCK,
AUC, per joint group and class mean, trajectory errors, timings). `python -m vp3dkeras.evaluate
RUN_DIR` evaluates the run like any supervised one.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import time
from typing import Dict, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vp3dkeras import quiet_tf  # noqa: F401,E402  (TensorFlow without start-up noise)
import keras
import numpy as np

from posecontract.dataset_format import read_manifest
from vp3dkeras.callbacks import TrainingSchedule
from vp3dkeras.data.semi_supervised import (ReprojectionWindowSampler,
                                            semi_supervised_batches, split_labeled_unlabeled)
from vp3dkeras.data.sequences import SequenceSource
from vp3dkeras.data.synth_source import SynthSource
from vp3dkeras.evaluate import evaluate_source
from vp3dkeras.inference import keras_lifter
from vp3dkeras.models import TemporalModel, TrajectoryModel
from vp3dkeras.models.semi_supervised_model import SemiSupervisedModel, SemiSupervisedWarmup
from vp3dkeras.padding import model_padding


POSE_MODEL = "model.keras"  # the name `vp3dkeras.train` gives its inference model


def _widths(text: str):
    return tuple(int(w) for w in text.split(","))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vp3dkeras.train_semi", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", type=pathlib.Path, required=True, help="synth dataset folder")
    p.add_argument("--split", required=True, help="split name under DATASET/splits")
    p.add_argument("--out", type=pathlib.Path, required=True, help="run folder")
    p.add_argument("--keypoints", default=None,
                   help="keypoint convention of 2D and 3D (default h36m17 if the dataset has "
                        "it, else acclaim17)")
    data = p.add_argument_group("labeled / unlabeled data")
    data.add_argument("--labeled-actors", required=True,
                      help="comma-separated actors whose clips may be labeled (bd or hdm05_bd)")
    data.add_argument("--labeled-fraction", type=float, default=1.0,
                      help="fraction of each labeled actor's training clips that is labeled")
    data.add_argument("--unlabeled-actors", default=None,
                      help="comma-separated actors for the unlabeled side (default: every "
                           "other training clip)")
    data.add_argument("--supervised-only", action="store_true",
                      help="baseline: train on the labeled windows alone")
    data.add_argument("--no-augment", dest="augment", action="store_false",
                      help="no horizontal-flip augmentation")
    model = p.add_argument_group("models")
    model.add_argument("--filter-widths", type=_widths, default=(3, 3, 3),
                       help="e.g. 3,3,3 (27 frames)")
    model.add_argument("--channels", type=int, default=256)
    model.add_argument("--dropout", type=float, default=0.25)
    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=8)
    train.add_argument("--warmup-epochs", type=int, default=2,
                       help="epochs with the unlabeled loss weight held at 0")
    train.add_argument("--batch-size", type=int, default=128,
                       help="windows per half batch (labeled and unlabeled each)")
    train.add_argument("--windows-per-epoch", type=int, default=None,
                       help="unlabeled (supervised-only: labeled) windows per epoch; sets the "
                            "steps per epoch, the same for both modes at equal values")
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--lr-decay", type=float, default=0.95, help="per epoch")
    train.add_argument("--bn-momentum", default="0.1,0.001",
                       help="PyTorch-style batch-norm momentum at the first and last epoch, "
                            "decayed exponentially")
    train.add_argument("--pose-weight", type=float, default=1.0)
    train.add_argument("--trajectory-weight", type=float, default=1.0)
    train.add_argument("--projection-weight", type=float, default=1.0)
    train.add_argument("--bone-length-weight", type=float, default=1.0)
    train.add_argument("--bone-target", choices=("trained", "fixed"), default="trained",
                       help="whether the bone-length term also trains the labeled side's "
                            "prediction (trained) or treats it as a fixed target (fixed)")
    train.add_argument("--unlabeled-weight", type=float, default=1.0,
                       help="weight of all unlabeled terms after the warm-up")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--jit-compile", action="store_true",
                       help="XLA (pays on GPU; slower on this CPU)")
    p.add_argument("--flip-tta", action="store_true",
                   help="evaluate with horizontal-flip test-time augmentation")
    p.add_argument("--verbose", type=int, default=2)
    return p


def _csv(text: Optional[str]):
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


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


def run(args) -> Dict[str, object]:
    args.out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    # The projection term compares projected 3D with the 2D input: one convention for both.
    source = SynthSource(args.dataset, keypoints_in=args.keypoints, keypoints_out=args.keypoints)
    split = source.split(args.split)
    manifest = read_manifest(args.dataset)
    labeled_keys, unlabeled_keys = split_labeled_unlabeled(
        manifest["records"], split.train, _csv(args.labeled_actors), args.labeled_fraction,
        seed=args.seed, unlabeled_actors=_csv(args.unlabeled_actors))
    if not args.supervised_only and not unlabeled_keys:
        raise SystemExit("no unlabeled clips left: use --supervised-only")

    joints = source.codec.num_joints
    pose_model = TemporalModel(joints, 2, joints, args.filter_widths, channels=args.channels,
                               dropout=args.dropout, name="pose_model")
    trajectory_model = TrajectoryModel(joints, 2, args.filter_widths, channels=args.channels,
                                       dropout=args.dropout, name="trajectory_model")
    model = SemiSupervisedModel(
        pose_model, trajectory_model, layout=source.codec.layout.name,
        pose_weight=args.pose_weight, trajectory_weight=args.trajectory_weight,
        projection_weight=args.projection_weight, bone_length_weight=args.bone_length_weight,
        unlabeled_weight=args.unlabeled_weight, labeled_only=args.supervised_only,
        bone_target_gradient=args.bone_target == "trained", lens_model=source.lens_model)
    pad = model_padding(pose_model)
    sampler_args = dict(pad=pad, batch_size=args.batch_size, augment=args.augment)
    labeled = ReprojectionWindowSampler(source.select(labeled_keys), seed=args.seed,
                                        **sampler_args)
    unlabeled = None
    if not args.supervised_only:
        unlabeled = ReprojectionWindowSampler(source.select(unlabeled_keys), with_3d=False,
                                              seed=args.seed + 1, **sampler_args)
    epoch_sampler = labeled if unlabeled is None else unlabeled
    windows = args.windows_per_epoch or epoch_sampler.num_windows
    steps_per_epoch = max(1, -(-windows // args.batch_size))

    optimizer = keras.optimizers.Adam(args.learning_rate, amsgrad=True)
    model.compile(optimizer=optimizer, jit_compile=args.jit_compile)
    bn_start, bn_end = (float(v) for v in args.bn_momentum.split(","))
    callbacks = [TrainingSchedule(args.epochs, args.learning_rate, args.lr_decay, bn_start,
                                  bn_end)]
    if not args.supervised_only:
        callbacks.append(SemiSupervisedWarmup(args.warmup_epochs, args.unlabeled_weight))

    config = {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()}
    config.update(labeled_clips=labeled_keys,
                  unlabeled_clips=[] if args.supervised_only else unlabeled_keys,
                  labeled_windows=labeled.num_windows,
                  unlabeled_windows=0 if unlabeled is None else unlabeled.num_windows,
                  steps_per_epoch=steps_per_epoch, receptive_field=pose_model.receptive_field(),
                  keypoints=source.keypoints_out)
    (args.out / "config.json").write_text(json.dumps(config, indent=1))
    print(f"labeled: {len(labeled_keys)} clips, {labeled.num_windows} windows; unlabeled: "
          f"{config['unlabeled_windows']} windows from {len(config['unlabeled_clips'])} clips; "
          f"{steps_per_epoch} steps of {args.batch_size}"
          f"{'' if args.supervised_only else ' + ' + str(args.batch_size)} windows per epoch",
          flush=True)

    start = time.perf_counter()
    history = model.fit(semi_supervised_batches(labeled, unlabeled), epochs=args.epochs,
                        steps_per_epoch=steps_per_epoch, callbacks=callbacks, shuffle=False,
                        verbose=args.verbose)
    train_seconds = time.perf_counter() - start
    pose_model.save(args.out / POSE_MODEL)
    trajectory_model.save(args.out / "trajectory_model.keras")
    (args.out / "history.json").write_text(json.dumps(history.history, indent=1))

    start = time.perf_counter()
    test = source.select(split.test)
    evaluation = evaluate_source(keras_lifter(pose_model), test, flip_tta=args.flip_tta)
    results = {**evaluation["metrics"], "class_mean": evaluation["class_mean"],
               "num_sequences": evaluation["num_sequences"],
               "num_frames": evaluation["num_frames"], "flip_tta": args.flip_tta,
               **trajectory_errors(trajectory_model, test)}
    results["train_seconds"] = train_seconds
    results["eval_seconds"] = time.perf_counter() - start
    (args.out / "metrics.json").write_text(json.dumps(results, indent=1))
    print(f"test: P1 {results['P1']:.1f} mm, P2 {results['P2']:.1f} mm, "
          f"N-MPJPE {results['P3']:.1f} mm, trajectory {results['trajectory_mm']:.1f} mm; "
          f"train {train_seconds:.0f} s", flush=True)
    return results


def main(argv=None):
    run(build_parser().parse_args(argv))


if __name__ == "__main__":
    main()
