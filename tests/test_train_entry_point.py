"""One entry point, one config: the typed schema, experiment files, and resume in every mode."""
import json
import pathlib
import re

import numpy as np
import pytest

from vp3dkeras.config import ConfigError, TrainConfig, read_config, write_config

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = REPO / "experiments" / "configs"


def test_json_and_yaml_experiments_read_alike(tmp_path):
    settings = {"dataset": "data/hdm05", "split": "actor_out_hdm05_mm", "channels": 256,
                "filter_widths": [3, 3, 3, 3, 3], "lr": 1, "supervision": "semi-supervised",
                "labeled_actors": ["bd"], "labeled_fraction": 0.1, "bone_length_weight": 0.5}
    (tmp_path / "a.json").write_text(json.dumps(settings))
    (tmp_path / "a.yaml").write_text("".join(
        f"{k}: {json.dumps(v)}\n" for k, v in settings.items()))
    from_json, from_yaml = read_config(tmp_path / "a.json"), read_config(tmp_path / "a.yaml")
    assert from_json == from_yaml
    assert from_json.lr == 1.0 and isinstance(from_json.lr, float)
    assert from_json.batch_size == 128  # per half batch, the semi-supervised default
    assert from_json.run_name() == "tcn243-c256-semi10pct-gt2d-hdm05-actorout-hdm05-mm"
    write_config(from_json, tmp_path / "back.json")
    assert read_config(tmp_path / "back.json") == from_json


@pytest.mark.parametrize("text, message", [
    ('{"chanels": 64}', "unknown config keys ['chanels']"),
    ('{"channels": "64"}', "channels must be an integer, got '64'"),
    ('{"filter_widths": 3}', "filter_widths must be a list of an integer"),
    ('{"causal": 1}', "causal must be true or false"),
    ('{"model": "lstm"}', "model must be temporal or refiner, got 'lstm'"),
    ('{"distribute": "ring"}', "distribute must be one of auto, mirrored, none, multiworker"),
    ('{"labeled_fraction": 0}', "labeled_fraction must lie in (0, 1]"),
    ('{"supervision": "semi-supervised"}', "needs labeled_actors or unlabeled_dataset"),
    ('{"unlabeled_dataset": "real"}', "needs supervision semi-supervised"),
    ('{"dense": true}', "no single-frame twin"),
    ('{"name": "../escape"}', "name must be a file name"),
    ('[1, 2]', "a config is a mapping"),
    ('{"channels": 64', "not valid JSON"),
])
def test_bad_configs_are_one_line_errors_naming_the_file(tmp_path, text, message):
    path = tmp_path / "experiment.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        read_config(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_bad_yaml_names_the_line(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text("channels: 64\nfilter_widths: [3, 3\n")
    with pytest.raises(ConfigError, match=r"experiment.yaml: not valid YAML at line"):
        read_config(path)


def test_names_encode_the_setup():
    base = dict(dataset="/x/hdm05_ava", split="class_out_hopBothLegs1hops")
    assert TrainConfig(**base).run_name() == "tcn27-c1024-supv-gt2d-hdm05-ava-classout-hopbothlegs1hops"
    assert TrainConfig(**base, causal=True, filter_widths=[3] * 5, channels=128,
                       flip_augment=False).run_name().startswith("tcn243causal-c128-supv")
    assert TrainConfig(**base, model="refiner", dilated=True).run_name().startswith(
        "refiner53-c1024")
    assert TrainConfig(**base, training_mode="chunked", chunk_length=32).run_name().endswith(
        "chunk32")
    assert TrainConfig(**base, labeled_actors=["bd"], labeled_fraction=0.5).run_name() \
        .startswith("tcn27-c1024-supv50pct")
    assert TrainConfig(**base, name="mine").run_name() == "mine"


def test_every_experiment_config_is_valid_and_named_as_its_file():
    files = sorted(CONFIGS.rglob("*.yaml"))
    assert len(files) >= 20
    for path in files:
        config = read_config(path)
        assert config.run_name() == path.stem, path


def test_the_entry_point_reads_an_experiment_file(tiny_synth_dataset, tmp_path):
    from vp3dkeras.train import main

    experiment = tmp_path / "tiny.yaml"
    experiment.write_text(f"dataset: {tiny_synth_dataset}\nsplit: actor_out_hdm05_mm\n"
                          "filter_widths: [3, 3]\nchannels: 8\nepochs: 1\nbatch_size: 32\n"
                          "max_windows_per_epoch: 64\nval_windows: 32\n")
    assert main(["--config", str(experiment), "--out", str(tmp_path / "run"), "--quiet",
                 "--lr", "0.01"]) == 0
    written = read_config(tmp_path / "run" / "config.json")
    # The run stores every setting, with the keypoint conventions resolved.
    assert written.keypoints_in == written.keypoints_out == "h36m17"
    assert written == read_config(experiment).replace(lr=0.01, keypoints_in="h36m17",
                                                      keypoints_out="h36m17")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: many\n")
    with pytest.raises(SystemExit, match=r"bad.yaml: epochs must be an integer"):
        main(["--config", str(bad)])


MODES = {
    "chunked": ["--training-mode", "chunked", "--chunk-length", "8", "--batch-size", "8"],
    "refiner": ["--model", "refiner", "--num-layers", "2", "--batch-size", "2",
                "--max-frames", "32"],
    "semi-supervised": ["--supervision", "semi-supervised", "--labeled-actors", "bd",
                        "--labeled-fraction", "0.5", "--warmup-epochs", "1",
                        "--batch-size", "8"],
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_resume_continues_exactly_in_every_mode(tiny_synth_dataset, tmp_path, mode):
    """Stopped after one of three epochs and resumed, a run repeats the uninterrupted one
    (the single-frame temporal mode: test_training_runs)."""
    from vp3dkeras.train import main

    args = ["--dataset", str(tiny_synth_dataset), "--split", "actor_out_hdm05_mm",
            "--filter-widths", "3,3", "--channels", "8", "--epochs", "3", "--lr", "1e-2",
            "--max-windows-per-epoch", "32", "--val-windows", "16", "--quiet", *MODES[mode]]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert main([*args, "--out", str(tmp_path / "cut"), "--stop-after-epochs", "1"]) == 0
    assert json.loads((tmp_path / "cut" / "summary.json").read_text())["epochs_done"] == 1
    assert main(["--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    whole, cut = (json.loads((tmp_path / r / "history.json").read_text())
                  for r in ("whole", "cut"))
    assert [h["epoch"] for h in cut] == [1, 2, 3]
    for a, b in zip(whole, cut):
        assert a["lr"] == b["lr"] and a["bn_momentum"] == b["bn_momentum"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert summary["finished"] and summary["epochs_done"] == 3
    assert np.isfinite(summary["final_loss_mm"])


@pytest.mark.parametrize("settings, message", [
    ({"supervision": "semi-supervised", "unlabeled_dataset": "real",
      "unlabeled_actors": ["bd"]}, "unlabeled side is that folder"),
    ({"supervision": "semi-supervised", "labeled_actors": ["bd"],
      "unlabeled_keypoints": "detectron"}, "unlabeled_keypoints (--unlabeled-keypoints) needs"),
    ({"supervision": "semi-supervised", "unlabeled_dataset": "real",
      "labeled_fraction": 0.5}, "give labeled_actors"),
    ({"unlabeled_split": "subjects:train=A;test=B"}, "needs unlabeled_dataset"),
])
def test_unlabeled_options_that_would_be_ignored_are_refused(settings, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig(dataset="d", split="s", **settings)


def test_names_of_runs_with_another_folders_2d_encode_which_2d():
    base = dict(dataset="synth", split="random", supervision="semi-supervised",
                unlabeled_dataset="/data/humaneva")
    names = {TrainConfig(**base).run_name(),
             TrainConfig(**base, unlabeled_split="subjects:train=S1;test=S2").run_name(),
             TrainConfig(**base, unlabeled_keypoints="detectron").run_name(),
             TrainConfig(**base, labeled_actors=["bd"], labeled_fraction=0.5).run_name()}
    assert len(names) == 4 and all("semi-unl-humaneva" in n for n in names)
