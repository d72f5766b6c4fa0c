"""One typed training config for every mode of `python -m vp3dkeras.train`; no TensorFlow.

A run (one experiment, one row of a study) is a `TrainConfig`: data, model (the temporal
model of VideoPose3D or the refiner baseline), supervision (supervised, or semi-supervised by
back-projection), every loss weight and every optimisation setting. It is written to the
run's `config.json` in one schema, read back by `--resume`, `vp3dkeras.evaluate` and
`experiments/`, and read from a per-experiment JSON or YAML file with `--config` (in the
style of MotionBERT's per-experiment YAML files).

    config = read_config("experiments/configs/vp3d_receptive_field/tcn27-....yaml")
    config.run_name()   # "tcn27-c1024-supv-gt2d-hdm05-actorout-mm-tr"

Errors are one line naming the file and the key: `ConfigError` (a `ValueError`).

Defaults are the papers': AMSGrad, lr 1e-3 decayed by 0.95 per epoch, batch-norm momentum
0.1 -> 0.001 (PyTorch convention), dropout 0.25, 1024 channels, flip augmentation
(Pavllo et al., CVPR 2019, Sec. 5 and A.4); semi-supervised loss weights 1 and a warm-up
with the unlabeled terms off (its Sec. 4).
"""
from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import re
import typing
from typing import Any, Dict, List, Mapping, Optional

CONFIG = "config.json"
#: Bumped when a key changes meaning; `from_dict` accepts older runs without the key.
SCHEMA_VERSION = 2

MODELS = ("temporal", "refiner")
SUPERVISIONS = ("supervised", "semi-supervised")
TRAINING_MODES = ("single-frame", "chunked")
BONE_TARGETS = ("trained", "fixed")
SWITCHES = ("auto", "on", "off")
DISTRIBUTE = ("auto", "mirrored", "none", "multiworker")
NOISE = ("off", "on")


class ConfigError(ValueError):
    """A config that cannot be used; its message is one line naming the file and key."""


@dataclasses.dataclass
class TrainConfig:
    """One experiment's settings; a run's `config.json`.

    Data
      dataset: synth dataset folder or folder of VideoPose3D-format files.
      split: split name (synth) or `subjects:TRAIN,..:TEST,..` (VideoPose3D files).
      vp3d_name, keypoints, layout, image_size: VideoPose3D-format files only
        (`data_2d_<vp3d_name>_<keypoints>.npz`; image W,H in pixels when there are no cameras).
      estimate_cameras: VideoPose3D data without cameras: estimate them from the 3D and the
        ground-truth 2D. joints: train on this layout's joints, picked by name from the data.
      noise_2d ("off"/"on"), noise_2d_level: detector-like 2D noise on the training input
        (`vp3dkeras.data.detector_noise`) and its scale.
      bone_jitter: standard deviation of the per-example log bone-length factor (0: off;
        e.g. 0.10): every training example re-proportioned and its 2D re-projected
        (`vp3dkeras.data.bone_jitter`; temporal model, 2D input in the 3D output's layout;
        semi-supervised runs jitter their labeled windows).
      skeletons: a skeletons file (`python -m vp3dkeras.skeletons`, JSON, metres) or None:
        every training window set to one of its subjects' bone lengths (jittered by
        bone_jitter when that is > 0) and re-projected; temporal model, supervised.
      keypoints_in, keypoints_out: a synth dataset's keypoint conventions of the 2D input and
        the 3D output (`posecontract.conventions`; None: h36m17 when the dataset has it, else
        acclaim17; a run stores the resolved names). Semi-supervised runs use one for both.
    Model
      model: "temporal" (VideoPose3D's dilated temporal convolutions) or "refiner" (the
        mocap-dataset paper's two-block 1D CNN, sequence to sequence).
      filter_widths: temporal model; receptive field = product (3,3,3 -> 27 frames).
      channels, dropout, causal, dense: temporal model (refiner: channels and dropout).
      kernel_size, num_layers, dilated, max_frames: refiner (max_frames: training crop).
    Supervision
      supervision: "supervised" (MPJPE on root-relative camera-space poses, metres), or
        "semi-supervised": VideoPose3D's back-projection objective with a trajectory model.
      labeled_actors, labeled_fraction, unlabeled_actors: which training clips are labeled
        (`vp3dkeras.data.semi_supervised.split_labeled_unlabeled`); with supervision
        "supervised" and labeled_actors set, the pose and trajectory models train on the
        labeled clips alone (the semi-supervised study's baseline).
      unlabeled_dataset: semi-supervised from another data set: a folder (VideoPose3D format
        or synth dataset) whose 2D keypoints and cameras are the unlabeled side (any 3D it
        holds is never used), e.g. a real set's detections with the lifter's labeled side synthetic.
        Every training clip of `dataset`'s split is then labeled (or those of
        labeled_actors). Its keypoints must be the labeled convention's, joint for joint.
      unlabeled_split: a split of unlabeled_dataset whose training side is used (None:
        every sequence); unlabeled_vp3d_name, unlabeled_keypoints: which VideoPose3D files
        (`data_2d_<name>_<keypoints>.npz`; defaults vp3d_name and "gt").
      warmup_epochs: epochs with the unlabeled terms off (semi-supervised).
      pose_weight, trajectory_weight, projection_weight, bone_length_weight,
      unlabeled_weight: loss weights (the last scales all unlabeled terms after warm-up).
      bone_target: "trained" (the bone-length term also moves the labeled prediction) or
        "fixed".
    Training
      training_mode: temporal model, "single-frame" (strided twin, one receptive field per
        target frame) or "chunked" (chunk_length output frames per example).
      epochs, batch_size (windows; refiner: sequences; semi-supervised: per half batch),
      lr, lr_decay (per epoch), bn_momentum_start/end (PyTorch convention, decayed
      exponentially over the run), flip_augment, seed, max_windows_per_epoch (cap, to size
      CPU runs), val_windows (0: no validation), jit_compile (XLA: auto = on GPU),
      distribute, cache_mb.
    name: the run's name; empty means `run_name()`, which encodes the setup.
    notes: free text (what the row is for); not used by training.
    """

    name: str = ""
    notes: str = ""
    # data
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
    bone_jitter: float = 0.0
    skeletons: Optional[str] = None
    # model
    model: str = "temporal"
    filter_widths: List[int] = dataclasses.field(default_factory=lambda: [3, 3, 3])
    channels: int = 1024
    dropout: float = 0.25
    causal: bool = False
    dense: bool = False
    kernel_size: int = 3
    num_layers: int = 3
    dilated: bool = False
    max_frames: int = 256
    # supervision and loss weights
    supervision: str = "supervised"
    labeled_actors: Optional[List[str]] = None
    labeled_fraction: float = 1.0
    unlabeled_actors: Optional[List[str]] = None
    unlabeled_dataset: Optional[str] = None
    unlabeled_split: Optional[str] = None
    unlabeled_vp3d_name: Optional[str] = None
    unlabeled_keypoints: str = "gt"
    warmup_epochs: int = 0
    pose_weight: float = 1.0
    trajectory_weight: float = 1.0
    projection_weight: float = 1.0
    bone_length_weight: float = 1.0
    unlabeled_weight: float = 1.0
    bone_target: str = "trained"
    # training
    training_mode: str = "single-frame"
    chunk_length: int = 64
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
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        _check_types(self)
        _choice("model", self.model, MODELS)
        _choice("supervision", self.supervision, SUPERVISIONS)
        _choice("training_mode", self.training_mode, TRAINING_MODES)
        _choice("bone_target", self.bone_target, BONE_TARGETS)
        _choice("jit_compile", self.jit_compile, SWITCHES)
        _choice("distribute", self.distribute, DISTRIBUTE)
        _choice("noise_2d", self.noise_2d, NOISE)
        if self.noise_2d_level < 0:
            raise ConfigError(f"noise_2d_level must be >= 0, got {self.noise_2d_level}")
        if not (0 <= self.bone_jitter < 1):
            raise ConfigError(f"bone_jitter must be in [0, 1), got {self.bone_jitter}")
        if self.bone_jitter and self.model != "temporal":
            raise ConfigError("bone_jitter (--bone-jitter) needs the temporal model")
        if self.skeletons and (self.model != "temporal" or self.uses_labeled_subset):
            raise ConfigError("skeletons (--skeletons) needs the temporal model with "
                              "supervised training")
        if self.unlabeled_dataset and self.supervision != "semi-supervised":
            raise ConfigError("unlabeled_dataset (--unlabeled-dataset) needs supervision "
                              "semi-supervised")
        for key in ("unlabeled_split", "unlabeled_vp3d_name"):
            if getattr(self, key) and not self.unlabeled_dataset:
                raise ConfigError(f"{key} (--{key.replace('_', '-')}) needs "
                                  f"unlabeled_dataset")
        if self.unlabeled_keypoints != "gt" and not self.unlabeled_dataset:
            raise ConfigError("unlabeled_keypoints (--unlabeled-keypoints) needs "
                              "unlabeled_dataset")
        if self.unlabeled_actors and self.unlabeled_dataset:
            raise ConfigError("unlabeled_actors picks the unlabeled clips of dataset; with "
                              "unlabeled_dataset the unlabeled side is that folder "
                              "(choose its part with unlabeled_split)")
        if not self.filter_widths or any(w < 1 for w in self.filter_widths):
            raise ConfigError(f"filter_widths must be positive integers, got "
                              f"{self.filter_widths}")
        for key in ("channels", "epochs", "kernel_size", "num_layers", "max_frames",
                    "chunk_length", "cache_mb"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 < self.labeled_fraction <= 1.0:
            raise ConfigError(f"labeled_fraction must lie in (0, 1], got "
                              f"{self.labeled_fraction}")
        if self.labeled_fraction != 1.0 and not self.labeled_actors:
            raise ConfigError("labeled_fraction (--labeled-fraction) applies to "
                              "labeled_actors' clips: give labeled_actors")
        for key in ("lr", "lr_decay", "bn_momentum_start"):
            if not 0.0 < getattr(self, key) <= (1.0 if key != "lr" else math.inf):
                raise ConfigError(f"{key} out of range: {getattr(self, key)}")
        for key in ("pose_weight", "trajectory_weight", "projection_weight",
                    "bone_length_weight", "unlabeled_weight", "warmup_epochs", "val_windows"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must not be negative, got {getattr(self, key)}")
        if self.dense and self.model == "temporal" and self.training_mode == "single-frame":
            raise ConfigError("a dense model has no single-frame twin: use training_mode "
                              "chunked")
        if self.name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise ConfigError(f"name must be a file name of letters, digits, '.', '_', '-', "
                              f"got {self.name!r}")
        if self.uses_labeled_subset:
            if self.model != "temporal" or self.training_mode != "single-frame":
                raise ConfigError("semi-supervised training (and its labeled-subset baseline) "
                                  "uses the temporal model in single-frame mode")
            if (self.keypoints_in and self.keypoints_out
                    and self.keypoints_in != self.keypoints_out):
                raise ConfigError("semi-supervised training projects its 3D onto its 2D: "
                                  "keypoints_in and keypoints_out must agree")
            if (self.supervision == "semi-supervised" and not self.labeled_actors
                    and not self.unlabeled_dataset):
                raise ConfigError("supervision semi-supervised needs labeled_actors or "
                                  "unlabeled_dataset")
        if self.batch_size is None:
            self.batch_size = (32 if self.model == "refiner" else
                               128 if self.uses_labeled_subset else 1024)
        if self.bn_momentum_end is None:
            # The paper's 0.001 averages the running statistics over ~1000 steps, about an
            # epoch of its single-frame batches. A refiner epoch (one crop per sequence) is a
            # few dozen steps: 0.001 would leave the statistics epochs behind the weights.
            self.bn_momentum_end = 0.001 if self.model == "temporal" else 0.01
        self.schema_version = SCHEMA_VERSION

    @property
    def uses_labeled_subset(self) -> bool:
        """Whether the run trains through `SemiSupervisedModel` (pose + trajectory models on
        labeled windows, and unlabeled ones when semi-supervised)."""
        return self.supervision == "semi-supervised" or bool(self.labeled_actors)

    def receptive_field(self) -> int:
        """Input frames that reach one output frame: the product of the filter widths
        (temporal model, Pavllo et al. Sec. 3) or the refiner's context
        (dilated: kernel_size ** num_layers per block, two blocks)."""
        if self.model == "temporal":
            return int(math.prod(self.filter_widths))
        if self.dilated:
            one_block = self.kernel_size ** self.num_layers
        else:
            one_block = self.num_layers * (self.kernel_size - 1) + 1
        return 2 * (one_block - 1) + 1

    def run_name(self) -> str:
        """`name`, or a name that encodes the setup, e.g.
        `tcn243-c1024-supv-gt2d-hdm05-actorout-mm`: model and receptive field, channels,
        supervision (labeled fraction), 2D source, dataset folder and split, then any
        2D convention when it differs from the 3D one, then any non-default switch (2D noise,
        chunked, noflip, seed)."""
        if self.name:
            return self.name
        if self.model == "temporal":
            arch = f"tcn{self.receptive_field()}" + ("causal" if self.causal else "")
        else:
            arch = f"refiner{self.receptive_field()}"
        if self.supervision == "semi-supervised" and self.unlabeled_dataset:
            supervision = "-".join(
                ["semi-unl", _slug(pathlib.Path(self.unlabeled_dataset).name)]
                + ([_slug(self.unlabeled_split)] if self.unlabeled_split else [])
                + ([_slug(self.unlabeled_keypoints)] if self.unlabeled_keypoints != "gt"
                   else [])
                + ([f"lab{_percent(self.labeled_fraction)}-"
                    + _slug(",".join(self.labeled_actors))] if self.labeled_actors else []))
        elif self.supervision == "semi-supervised":
            supervision = f"semi{_percent(self.labeled_fraction)}"
        elif self.labeled_actors:
            supervision = f"supv{_percent(self.labeled_fraction)}"
        else:
            supervision = "supv"
        parts = [arch, f"c{self.channels}", supervision, f"{_slug(self.keypoints)}2d"]
        if self.keypoints_in and self.keypoints_in != self.keypoints_out:
            parts.append(f"{_slug(self.keypoints_in)}in")
        if self.dataset:
            parts.append(_slug(pathlib.Path(self.dataset).name))
        if self.split:
            parts.append(_slug(self.split.replace("actor_out", "actorout")
                               .replace("class_out", "classout")))
        if self.noise_2d == "on":
            parts.append(f"noise{self.noise_2d_level:g}")
        if self.bone_jitter:
            parts.append(f"bones{self.bone_jitter:g}")
        if self.skeletons:
            parts.append(f"skel-{_slug(pathlib.Path(self.skeletons).stem)}")
        if self.training_mode == "chunked" and self.model == "temporal":
            parts.append(f"chunk{self.chunk_length}")
        if not self.flip_augment:
            parts.append("noflip")
        if self.seed:
            parts.append(f"seed{self.seed}")
        return "-".join(p for p in parts if p)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    to_json = to_dict

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> "TrainConfig":
        """A config from a mapping; unknown keys and bad values raise `ConfigError` naming
        `source` (the file)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a config is a mapping of keys to values")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown config keys {unknown}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: {error}") from None

    from_json = from_dict

    def replace(self, **changes) -> "TrainConfig":
        return self.from_dict({**self.to_dict(), **changes})


def _percent(fraction: float) -> str:
    return f"{round(100 * fraction):d}pct" if fraction < 1.0 else "100pct"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        listed = (" or ".join(choices) if len(choices) == 2
                  else "one of " + ", ".join(choices))
        raise ConfigError(f"{key} must be {listed}, got {value!r}")


def _check_types(config: TrainConfig) -> None:
    """Checks every field against its annotation (int, float, bool, str, Optional, List);
    converts ints to floats where a float is expected."""
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        converted = _coerce(value, hints[field.name])
        if converted is _BAD:
            raise ConfigError(f"{field.name} must be {_describe(hints[field.name])}, got "
                              f"{value!r}")
        setattr(config, field.name, converted)


_BAD = object()


def _coerce(value, hint):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        return _coerce(value, [a for a in args if a is not type(None)][0])
    if origin in (list, List):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return _BAD
        items = [_coerce(v, args[0]) for v in value]
        return _BAD if any(i is _BAD for i in items) else items
    if hint is bool:
        return value if isinstance(value, bool) else _BAD
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) if math.isfinite(value) else _BAD
        return _BAD
    if hint is str:
        return value if isinstance(value, str) else _BAD
    return value


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        return "null or " + _describe([a for a in args if a is not type(None)][0])
    if origin in (list, List):
        return f"a list of {_describe(args[0])}"
    return {bool: "true or false", int: "an integer", float: "a number",
            str: "a string"}.get(hint, str(hint))


def read_config(path) -> TrainConfig:
    """A `TrainConfig` from a .json, .yaml or .yml file (YAML read with `yaml.safe_load`).

    Raises ConfigError (one line: the path and the problem) for an unreadable file, bad
    syntax, unknown keys or bad values."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config ({error})") from None
    return TrainConfig.from_dict(parse_config_text(text, path), source=str(path))


def parse_config_text(text: str, path: pathlib.Path) -> dict:
    """The mapping in a JSON or YAML config file's text (by the file's suffix)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # PyYAML; only needed for YAML configs

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            where = getattr(error, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise ConfigError(f"{path}: not valid YAML{line}") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys to values")
    return data


def write_config(config: TrainConfig, path) -> None:
    """Writes `config` as JSON (or YAML by suffix) to a temporary name, then renames."""
    path = pathlib.Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        text = yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None)
    else:
        text = json.dumps(config.to_dict(), indent=1) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def read_run_config(run_dir) -> TrainConfig:
    """The `TrainConfig` of a run directory (its config.json, any schema version)."""
    path = pathlib.Path(run_dir) / CONFIG
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no {CONFIG})")
    return read_config(path)
