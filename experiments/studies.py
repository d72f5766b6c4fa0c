"""The studies of the two papers the project is built on, as experiment configs.

Each study is a list of rows; each row is one `vp3dkeras.config.TrainConfig` at full scale
(the papers' settings, written to `experiments/configs/<study>/<run name>.yaml`) plus the
evaluations it gets. `reduced(config)` shrinks a config for the 2-core CPU the committed
results were measured on: fewer channels, epochs and windows per epoch (every table says so).

Seed paper 1, the mocap-dataset paper (a two-block 1D CNN, our `RefinerBaseline`, on an
HDM05-derived set): `mocap_models` (its models A, B and C: random 80/20, one actor out, the
motion class hopping out; train/test MPJPE per epoch, its Figs 3-5) and `cross_dataset`
(train on HDM05, test on CMU; per category and per joint group, its Tables 1 and 2).

Seed paper 2, VideoPose3D (Pavllo et al., CVPR 2019), ablations: `vp3d_receptive_field`
(Fig. 8b; its rows also give single-frame against temporal, Table 2), `vp3d_channels`
(Fig. 8a), `vp3d_causal`, `vp3d_flip` (augmentation at train and test time), `vp3d_chunked`
(A.5) and `vp3d_semi_supervised` (Fig. 5).
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Dict, List, Optional

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "experiments" / "configs"
RESULTS_DIR = REPO / "experiments" / "results"

#: Datasets (relative to the repository root; rendered by `run_study.py` when missing):
#: real HDM05 clips (and CMU clips for cross-dataset) on avatar "ava", one virtual camera
#: per clip, 25 fps, ground-truth 2D.
HDM05 = "runs/studies/hdm05_ava_c1_25fps"
HDM05_CMU = "runs/studies/hdm05_cmu_ava_c1_25fps"
DATASETS = {HDM05: ("hdm05",), HDM05_CMU: ("hdm05", "cmu")}
RENDER = ["--avatars", "ava", "--cameras", "1", "--fps", "25", "--seed", "0", "--no-preview"]

# The temporal model at the paper's settings (Sec. 5, A.4): 1024 channels, dropout 0.25,
# AMSGrad lr 1e-3 decayed 0.95 per epoch, batch 1024, 80 epochs, BN momentum 0.1 -> 0.001.
TCN = dict(model="temporal", channels=1024, epochs=80, batch_size=1024, val_windows=4096)
# The refiner baseline as in experiments/hdm05_actor_out.sh: two blocks of 3 dilated layers
# (53 frames of context), 64-frame crops, 150 short epochs, lr decayed 0.98.
REFINER = dict(model="refiner", channels=256, num_layers=3, dilated=True, epochs=150,
               batch_size=32, max_frames=64, lr_decay=0.98)
WIDTHS = {1: [1], 9: [3, 3], 27: [3, 3, 3], 81: [3, 3, 3, 3], 243: [3, 3, 3, 3, 3]}


@dataclasses.dataclass
class Row:
    """One run of a study: its full-scale settings and evaluations (name -> evaluate
    options; "": the run's own split with flip TTA)."""

    settings: Dict[str, object]
    evaluations: Dict[str, List[str]] = dataclasses.field(
        default_factory=lambda: {"": []})
    label: str = ""


@dataclasses.dataclass
class Study:
    name: str
    title: str
    paper: str
    rows: List[Row]
    #: settings changed for the CPU run of the committed results
    reduced: Dict[str, object]
    reduced_refiner: Dict[str, object] = dataclasses.field(default_factory=dict)
    #: minutes of training per run at the reduced scale (resumable: a run over budget stops
    #: at an epoch end and continues on the next call)
    minutes_per_run: float = 4.0


# The CPU scale: 128 channels, 10 epochs of 8192 windows (32 steps of 256). With ~300 steps
# in all, the paper's final BN momentum 0.001 (statistics over ~1000 steps) would leave the
# running statistics behind the weights, so it ends at 0.01.
REDUCED_TCN = dict(channels=128, epochs=10, batch_size=256, max_windows_per_epoch=8192,
                   val_windows=1024, bn_momentum_end=0.01)
REDUCED_REFINER = dict(channels=128, epochs=40)
# The studies whose temporal rows were still far from converged at that scale: 30 epochs of
# every window (about 1500 steps).
REDUCED_TCN_LONG = {**REDUCED_TCN, "epochs": 30, "max_windows_per_epoch": None}


def _tcn(rf=27, **changes) -> Dict[str, object]:
    return {**TCN, "filter_widths": WIDTHS[rf], **changes}


def _study_list() -> List[Study]:
    hdm = dict(dataset=HDM05)
    models = []
    for split in ("random_hdm05", "actor_out_hdm05_mm", "class_out_hopBothLegs1hops"):
        models.append(Row({**hdm, **REFINER, "split": split}, label=f"refiner, {split}"))
        models.append(Row({**hdm, **_tcn(27), "split": split}, label=f"tcn27, {split}"))
    cross = [Row({"dataset": HDM05_CMU, "split": "cross_dataset_hdm05_to_cmu", **s}, label=l)
             for s, l in ((REFINER, "refiner"), (_tcn(27), "tcn27"))]
    actor = dict(dataset=HDM05, split="actor_out_hdm05_mm")
    rf_rows = [Row({**actor, **_tcn(rf)}, label=f"rf {rf}") for rf in WIDTHS]
    channels = [Row({**actor, **_tcn(27, channels=c)}, label="{channels} channels")
                for c in (128, 256, 512, 1024)]
    causal = [Row({**actor, **_tcn(rf, causal=c)}, label=f"rf {rf} {'causal' if c else 'symmetric'}")
              for rf in (27, 81) for c in (False, True)]
    flip = [Row({**actor, **_tcn(27, flip_augment=a)},
                evaluations={"": [], "noflip": ["--no-flip-tta"]},
                label=f"train flip {'on' if a else 'off'}") for a in (True, False)]
    # Our clips average 52 frames at 25 fps: 32-frame chunks rather than longer ones.
    # A chunked batch holds batch_size chunks of chunk_length target frames: 1024 / 32
    # chunks give the single-frame batch's 1024 target frames (and as many steps per epoch).
    chunked = [Row({**actor, **_tcn(81, training_mode="single-frame")}, label="single-frame"),
               Row({**actor, **_tcn(81, training_mode="chunked", chunk_length=32,
                                    batch_size=32)},
                   label="chunked (32 frames)")]
    semi_split = "actor_out_hdm05_mm_hdm05_tr"
    semi = []
    for fraction in (0.1, 0.5, 1.0):
        for supervision in ("supervised", "semi-supervised"):
            semi.append(Row({"dataset": HDM05, "split": semi_split, **_tcn(27),
                             "supervision": supervision, "labeled_actors": ["bd"],
                             "labeled_fraction": fraction, "warmup_epochs": 3,
                             "batch_size": 128, "epochs": 10},
                            label=f"{supervision}, {fraction:.0%} of bd labeled"))
    semi_reduced = dict(channels=128, epochs=8, warmup_epochs=2, batch_size=128,
                        max_windows_per_epoch=4096, bn_momentum_end=0.01)
    return [
        Study("mocap_models", "Mocap-dataset paper, models A, B, C: train and test MPJPE "
              "per epoch", "seed paper 1, Figs 3-5 (about 200 mm)", models, REDUCED_TCN_LONG,
              REDUCED_REFINER),
        Study("cross_dataset", "Mocap-dataset paper, cross-dataset: train on HDM05, test on "
              "CMU", "seed paper 1, Tables 1 and 2", cross, REDUCED_TCN_LONG, REDUCED_REFINER),
        # Longer than the other studies (30 epochs of every window): at 10 epochs of 8192
        # windows the wider models were still far from converged and ranked last.
        Study("vp3d_receptive_field", "VideoPose3D: receptive field (and single-frame "
              "against temporal)", "seed paper 2, Fig. 8b and Table 2", rf_rows,
              REDUCED_TCN_LONG, minutes_per_run=8.0),
        Study("vp3d_channels", "VideoPose3D: channels", "seed paper 2, Fig. 8a", channels,
              {**REDUCED_TCN, "channels": None}),
        Study("vp3d_causal", "VideoPose3D: causal against symmetric convolutions",
              "seed paper 2, Sec. 3 and Table 1 (causal 49.0 against 46.8 mm at 243 frames)",
              causal, REDUCED_TCN),
        Study("vp3d_flip", "VideoPose3D: flip augmentation at train and test time",
              "seed paper 2, Sec. 5", flip, REDUCED_TCN),
        Study("vp3d_chunked", "VideoPose3D: chunked against single-frame-twin training",
              "seed paper 2, A.5", chunked, REDUCED_TCN),
        Study("vp3d_semi_supervised", "VideoPose3D: semi-supervised against supervised",
              "seed paper 2, Fig. 5", semi, semi_reduced),
    ]


STUDIES: Dict[str, Study] = {s.name: s for s in _study_list()}


def full_config(row: Row):
    from vp3dkeras.config import TrainConfig

    return TrainConfig.from_dict(row.settings, source="experiments/studies.py")


def reduced(study: Study, row: Row):
    """The row at the CPU scale of the committed results (None in `reduced` keeps a key)."""
    config = full_config(row)
    changes = study.reduced_refiner if config.model == "refiner" else study.reduced
    changes = {k: v for k, v in changes.items() if v is not None}
    if study.name == "vp3d_channels":
        changes["channels"] = config.channels // 8  # 16 .. 128
    if config.training_mode == "chunked" and "batch_size" in changes:
        # as many target frames per batch as the single-frame rows
        changes["batch_size"] = max(1, changes["batch_size"] // config.chunk_length)
    return config.replace(**changes)


def config_path(study: Study, row: Row) -> pathlib.Path:
    return CONFIG_DIR / study.name / f"{full_config(row).run_name()}.yaml"


def write_configs() -> List[pathlib.Path]:
    """Writes every study's full-scale configs; returns their paths."""
    from vp3dkeras.config import write_config

    paths = []
    for study in STUDIES.values():
        folder = CONFIG_DIR / study.name
        folder.mkdir(parents=True, exist_ok=True)
        for row in study.rows:
            path = config_path(study, row)
            write_config(full_config(row).replace(notes=f"{study.title}: {row.label}"), path)
            paths.append(path)
    return paths


def label_of(study: Optional[Study], config) -> str:
    for row in (study.rows if study else []):
        if full_config(row).run_name() == config.run_name():
            return row.label
    return config.run_name()
