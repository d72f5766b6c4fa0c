"""Settings and command line of `vp3dkeras.train`, without TensorFlow.

`python -m vp3dkeras.train --help` and option errors are answered from here before
TensorFlow (seconds to import) is loaded.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
from typing import List, Optional

from vp3dkeras.cli_errors import UsageError

CONFIG = "config.json"


@dataclasses.dataclass
class TrainConfig:
    """One experiment's settings; saved as the run's config.json."""

    dataset: str = ""
    split: str = ""
    vp3d_name: Optional[str] = None
    keypoints: str = "gt"
    keypoints_in: Optional[str] = None
    keypoints_out: Optional[str] = None
    layout: Optional[str] = None
    image_size: Optional[List[float]] = None
    estimate_cameras: bool = False
    joints: Optional[str] = None
    noise_2d: str = "off"
    noise_2d_level: float = 1.0
    model: str = "temporal"
    filter_widths: List[int] = dataclasses.field(default_factory=lambda: [3, 3, 3])
    channels: int = 1024
    dropout: float = 0.25
    causal: bool = False
    dense: bool = False
    training_mode: str = "single-frame"
    chunk_length: int = 64
    kernel_size: int = 3
    num_layers: int = 3
    dilated: bool = False
    max_frames: int = 256
    epochs: int = 20
    batch_size: Optional[int] = None
    lr: float = 1e-3
    lr_decay: float = 0.95
    bn_momentum_start: float = 0.1
    bn_momentum_end: Optional[float] = None
    flip_augment: bool = True
    seed: int = 0
    max_windows_per_epoch: Optional[int] = None
    val_windows: int = 4096
    jit_compile: str = "auto"
    distribute: str = "auto"
    cache_mb: int = 1024

    def __post_init__(self):
        if self.noise_2d not in ("off", "on"):
            raise ValueError(f"noise_2d must be off or on, got {self.noise_2d!r}")
        if self.noise_2d_level < 0:
            raise ValueError(f"noise_2d_level must be >= 0, got {self.noise_2d_level}")
        if self.model not in ("temporal", "refiner"):
            raise ValueError(f"model must be temporal or refiner, got {self.model!r}")
        if self.training_mode not in ("single-frame", "chunked"):
            raise ValueError(f"training_mode must be single-frame or chunked, got "
                             f"{self.training_mode!r}")
        if self.dense and self.model == "temporal" and self.training_mode == "single-frame":
            raise ValueError("a dense model has no single-frame twin: use --training-mode "
                             "chunked")
        if self.batch_size is None:
            self.batch_size = 1024 if self.model == "temporal" else 32
        if self.bn_momentum_end is None:
            # The paper's 0.001 averages the running statistics over ~1000 steps, about an
            # epoch of its single-frame batches. A refiner epoch (one crop per sequence) is a
            # few dozen steps: 0.001 would leave the statistics epochs behind the weights.
            self.bn_momentum_end = 0.001 if self.model == "temporal" else 0.01
        self.filter_widths = [int(w) for w in self.filter_widths]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**data)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.train",
                                     description="Train a lifting model on a synth dataset or VideoPose3D-format data.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainConfig()
    add = parser.add_argument
    add("--config", type=pathlib.Path, help="JSON of settings (keys as in config.json); "
        "command-line options override it")
    add("--dataset", help="synth dataset folder or folder of VideoPose3D-format files")
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
    add("--epochs", type=int)
    add("--batch-size", type=int, help="windows (temporal, 1024) or sequences (refiner, 32)")
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


def _read_config(path: pathlib.Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"{path}: cannot read the config ({error})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a config is a JSON object")
    return data


def config_from_args(args) -> TrainConfig:
    data = {}
    if args.resume is not None:
        path = args.resume / CONFIG
        if not path.is_file():
            raise UsageError(f"{args.resume} is not a run directory (no {CONFIG})")
        data = _read_config(path)
    elif args.config is not None:
        data = _read_config(args.config)
    given = {k: v for k, v in vars(args).items()
             if k in TrainConfig.__dataclass_fields__ and v is not None}
    if args.resume is not None:
        changed = {k for k, v in given.items() if data.get(k) != v} - {"epochs"}
        if changed:
            raise UsageError(f"--resume keeps the run's config; only --epochs may change "
                             f"(got {sorted(changed)})")
    data.update(given)
    try:
        config = TrainConfig.from_json(data)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{error}") from None
    if not config.dataset or not config.split:
        raise UsageError("--dataset and --split are required (or --config/--resume)")
    return config


