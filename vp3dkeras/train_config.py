"""Settings and command line of `vp3dkeras.train`, without TensorFlow.

`python -m vp3dkeras.train --help` and option errors are answered from here before
TensorFlow (seconds to import) is loaded.
"""
from __future__ import annotations

import argparse
import pathlib
from typing import List, Optional

from vp3dkeras.cli_errors import UsageError
from vp3dkeras.config import (CONFIG, ConfigError, TrainConfig,  # noqa: F401  (re-exported)
                              read_config)


def parse_image_size(text: str) -> List[float]:
    """"640x480" or "640,480" -> [640.0, 480.0]; argparse error otherwise."""
    parts = text.lower().replace("x", ",").split(",")
    try:
        width, height = (float(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size {text!r}: expected WxH, e.g. 640x480")
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"image size {text!r}: must be positive")
    return [width, height]


def _widths(text: str) -> List[int]:
    return [int(w) for w in text.split(",") if w]


def _names(text: str) -> List[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.train",
                                     description="Train a lifting model (every mode: supervised, "
                                     "semi-supervised, temporal, refiner) from one config.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainConfig()
    add = parser.add_argument
    add("--config", type=pathlib.Path, help="an experiment: JSON or YAML of settings (keys "
        "as in config.json, `vp3dkeras.config.TrainConfig`); command-line options override it")
    add("--dataset", help="synth dataset (folder or URL), its TFRecord shards (folder or URL "
        "holding shards.json) or a folder of VideoPose3D-format files")
    add("--split", help="split name (synth), or subjects:TRAIN,../TEST,.. (VideoPose3D)")
    add("--vp3d-name", help="VideoPose3D file name part (data_2d_<name>_<keypoints>.npz)")
    add("--keypoints", help="2D keypoint source of VideoPose3D files (default gt)")
    add("--keypoints-in", help="keypoint convention of the 2D input (synth datasets: h36m17, "
        "coco17, humaneva15, acclaim17; default: the output's)")
    add("--keypoints-out", help="keypoint convention of the 3D output (synth datasets; "
        "default h36m17 if the dataset has it, else acclaim17)")
    add("--layout", help="joint layout name or JSON (VideoPose3D files; default metadata)")
    add("--image-size", type=parse_image_size,
        help="WxH (or W,H) for VideoPose3D data without cameras")
    add("--estimate-cameras", action="store_true", default=None,
        help="VideoPose3D data without cameras: estimate them from the 3D and the "
        "ground-truth 2D")
    add("--joints", help="train on this layout's joints, picked by name from the data")
    add("--noise-2d", choices=["off", "on"], help="detector-like 2D noise (default off)")
    add("--noise-2d-level", type=float, help="scale of the 2D noise (default 1)")
    add("--bone-jitter", type=float, metavar="SD",
        help="per-example bone-length jitter, sd of the log factor (default 0: off; e.g. "
        "0.10); the 2D is re-projected through each sequence's camera")
    add("--skeletons", metavar="FILE", help="train on these people's bone lengths (JSON from "
        "python -m vp3dkeras.skeletons): every window re-proportioned to one of them")
    add("--model", choices=["temporal", "refiner"])
    add("--filter-widths", type=_widths, help="e.g. 3,3,3 (27 frames), 3,3,3,3,3 (243)")
    add("--channels", type=int)
    add("--dropout", type=float)
    add("--causal", action="store_true", default=None)
    add("--dense", action="store_true", default=None)
    add("--training-mode", choices=["single-frame", "chunked"])
    add("--chunk-length", type=int, help="output frames per example (chunked mode)")
    add("--kernel-size", type=int, help="refiner convolution width")
    add("--num-layers", type=int, help="refiner layers per block")
    add("--dilated", action="store_true", default=None,
        help="refiner dilations kernel-size ** layer (context kernel-size ** num-layers)")
    add("--max-frames", type=int, help="refiner training crop length")
    semi = parser.add_argument_group("supervision (semi-supervised: VideoPose3D Sec. 4)")
    semi.add_argument("--supervision", choices=["supervised", "semi-supervised"])
    semi.add_argument("--labeled-actors", type=_names,
                      help="comma-separated actors whose clips may be labeled (bd or hdm05_bd)")
    semi.add_argument("--labeled-fraction", type=float,
                      help="fraction of each labeled actor's training clips that is labeled")
    semi.add_argument("--unlabeled-actors", type=_names,
                      help="actors of the unlabeled side (default: every other training clip)")
    semi.add_argument("--unlabeled-dataset", metavar="DIR",
                      help="unlabeled side from another folder (VideoPose3D format or synth "
                      "dataset): its 2D and cameras only, e.g. a real set's; every training "
                      "clip of --dataset is then labeled (or --labeled-actors' clips)")
    semi.add_argument("--unlabeled-split", help="split of --unlabeled-dataset whose training "
                      "side is used (the test side is not), e.g. subjects:train=Train/S1,"
                      "Train/S2;test=Validate/S1 (default: every sequence)")
    semi.add_argument("--unlabeled-vp3d-name", help="its data_2d_<name>_*.npz (default "
                      "--vp3d-name)")
    semi.add_argument("--unlabeled-keypoints", help="its 2D source, data_2d_*_<keypoints>.npz "
                      "(default gt)")
    semi.add_argument("--warmup-epochs", type=int,
                      help="epochs with the unlabeled loss weight held at 0 (default 0)")
    for term in ("pose", "trajectory", "projection", "bone-length", "unlabeled"):
        semi.add_argument(f"--{term}-weight", type=float)
    semi.add_argument("--bone-target", choices=["trained", "fixed"])
    add("--epochs", type=int)
    add("--batch-size", type=int, help="windows (temporal, 1024), sequences (refiner, 32) or "
        "windows per half batch (semi-supervised, 128)")
    add("--name", help="run name (default: one that encodes the setup)")
    add("--lr", type=float)
    add("--lr-decay", type=float)
    add("--bn-momentum-start", type=float)
    add("--bn-momentum-end", type=float, help="default 0.001 (temporal), 0.01 (refiner)")
    add("--no-flip-augment", dest="flip_augment", action="store_false", default=None)
    add("--seed", type=int)
    add("--max-windows-per-epoch", type=int, help="cap an epoch (size CPU runs)")
    add("--val-windows", type=int, help="validation windows per epoch, 0 for none (the "
        "refiner validates on every test sequence unless 0)")
    add("--jit-compile", choices=["auto", "on", "off"], help="XLA (auto: on GPU only)")
    add("--distribute", choices=["auto", "mirrored", "none", "multiworker"],
        help="mirrored: MirroredStrategy (TF) or DataParallel over local devices (JAX); "
        "multiworker: JAX DataParallel over every worker's devices")
    add("--coordinator", metavar="HOST:PORT", help="multiworker: worker 0's address")
    add("--num-workers", type=int, help="multiworker: number of worker processes")
    add("--worker-id", type=int, help="multiworker: this worker's index (0 = chief)")
    add("--cache-mb", type=int, help="memory for loaded sequences")
    add("--out", type=pathlib.Path, help="run directory")
    add("--resume", type=pathlib.Path, metavar="RUN_DIR", help="continue a run")
    add("--stop-after-epochs", type=int, help="stop (resumably) after N epochs in this call")
    add("--time-budget-minutes", type=float,
        help="stop (resumably) at the first epoch end after this much training time")
    add("--quiet", action="store_true")
    parser.set_defaults(**{k: None for k in defaults.to_json()})
    return parser


def config_from_args(args) -> TrainConfig:
    """The run's config: `--resume`'s config.json or `--config`'s file, overridden by the
    options given; one-line `UsageError` for a bad file or value."""
    try:
        data = {}
        if args.resume is not None:
            path = args.resume / CONFIG
            if not path.is_file():
                raise UsageError(f"{args.resume} is not a run directory (no {CONFIG})")
            data = read_config(path).to_dict()
        elif args.config is not None:
            data = read_config(args.config).to_dict()
        given = {k: v for k, v in vars(args).items()
                 if k in TrainConfig.__dataclass_fields__ and v is not None}
        if args.resume is not None:
            changed = {k for k, v in given.items() if data.get(k) != v} - {"epochs"}
            if changed:
                raise UsageError(f"--resume keeps the run's config; only --epochs may change "
                                 f"(got {sorted(changed)})")
        data.update(given)
        config = TrainConfig.from_dict(data, source=str(args.config or "command line"))
    except ConfigError as error:
        raise UsageError(str(error)) from None
    if not config.dataset or not config.split:
        raise UsageError("--dataset and --split are required (or --config/--resume)")
    return config
