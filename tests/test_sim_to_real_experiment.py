"""The sim-to-real experiment script: which clips it links, which rows it can run, and the
table it writes from evaluation results."""
import importlib.util
import json
import pathlib

import numpy as np
import pytest

from conftest import REPO_ROOT

_SPEC = importlib.util.spec_from_file_location("sim_to_real",
                                               REPO_ROOT / "experiments" / "sim_to_real.py")
sim_to_real = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(sim_to_real)
CONFIG = json.loads((REPO_ROOT / "experiments" / "configs" / "sim_to_real_humaneva.json")
                    .read_text())


def test_mocap_subset_spreads_over_actors_and_links_skeletons(mocap_dir, tmp_path):
    selection = {"hdm05_classes": ["throwBasketball"], "hdm05_per_class": 5,
                 "cmu_pattern": "walk", "cmu_max": 4}
    count = sim_to_real.link_mocap_subset(selection, mocap_dir, tmp_path)
    clips = sorted(tmp_path.rglob("*.amc"))
    assert count == len(clips) == 9
    hdm05 = [c.name for c in clips if c.name.startswith("HDM_")]
    assert len({name.split("_")[1] for name in hdm05}) >= 3  # not all from one actor
    for clip in clips:
        skeleton = (f"{clip.name.split('_')[0]}.asf" if clip.parent.parent.name == "cmu"
                    else "_".join(clip.name.split("_")[:2]) + ".asf")
        assert (clip.parent / skeleton).is_file()
    assert (tmp_path / "cmu" / "trials.csv").is_file()
    # Linking again changes nothing (the render resumes on the same folder).
    assert sim_to_real.link_mocap_subset(selection, mocap_dir, tmp_path) == 9


def test_rows_needing_missing_features_are_skipped(monkeypatch):
    rows = {row["name"]: row for row in CONFIG["rows"]}
    monkeypatch.setitem(sim_to_real.FEATURES, "bodies", lambda: False)
    monkeypatch.setitem(sim_to_real.FEATURES, "conventions", lambda: True)
    needs = {name: sim_to_real.missing_feature(row, CONFIG) for name, row in rows.items()}
    assert needs["real-trained (HumanEva-I Train/S1-S3)"] is None
    assert needs["synthetic: humaneva15 convention, capsule bodies"] is None
    assert needs["synthetic: humaneva15 convention, Anny bodies"] == "bodies"
    given = dict(CONFIG, synthetic=dict(CONFIG["synthetic"], anny_all={"dataset": "/some/dir"}))
    anny = rows["synthetic: humaneva15 convention, Anny bodies"]
    assert sim_to_real.missing_feature(anny, given) is None


def test_a_synthetic_set_of_all_mocap_renders_the_whole_folder(monkeypatch, tmp_path):
    calls = []

    def render(command, log):  # stands in for the render process: records what it was given
        calls.append(command)
        (tmp_path / "every").mkdir()

    monkeypatch.setattr(sim_to_real, "_run", render)
    spec = {"mocap": "all", "render": ["--cameras", "1"]}
    dataset = sim_to_real.prepare_synthetic("every", spec, tmp_path, tmp_path / "mocap",
                                            tmp_path)
    assert dataset == tmp_path / "every" and (dataset / "render.done").is_file()
    assert calls[0][3:6] == [tmp_path / "mocap", "--out", dataset]  # the whole folder
    assert calls[0][-2:] == ["--cameras", "1"]
    assert not list(tmp_path.glob("mocap_*"))  # no subset linked


def test_a_skeleton_row_measures_the_real_training_subjects_once(monkeypatch, tmp_path):
    calls = []

    def step(command, log):  # stands in for the processes: records what they were given
        calls.append([str(c) for c in command])
        if "vp3dkeras.skeletons" in calls[-1]:
            pathlib.Path(command[command.index("--out") + 1]).write_text("{}")

    monkeypatch.setattr(sim_to_real, "_run", step)
    row = next(r for r in CONFIG["rows"] if r.get("skeletons") == "real_train")
    for run in ("a", "b"):
        sim_to_real.train_row(row, CONFIG, {row["train_on"]: "/synthetic"}, tmp_path / run,
                              tmp_path, tmp_path)
    measure, first, second = calls
    assert measure[2:4] == ["vp3dkeras.skeletons", CONFIG["real"]["dataset"]]
    assert measure[measure.index("--split") + 1] == CONFIG["real"]["split"]
    assert measure[measure.index("--side") + 1] == "train"
    path = measure[measure.index("--out") + 1]
    for train in (first, second):
        assert train[2] == "vp3dkeras.train" and train[train.index("--skeletons") + 1] == path
    with pytest.raises(SystemExit, match="only \"real_train\""):
        sim_to_real.train_row(dict(row, skeletons="test"), CONFIG, {row["train_on"]: "/s"},
                              tmp_path / "c", tmp_path, tmp_path)


def test_a_motion_class_row_trains_on_a_split_of_those_classes(tiny_synth_dataset, tmp_path):
    import shutil
    dataset = tmp_path / "dataset"  # the manifest and splits only: all a split needs
    (dataset / "splits").mkdir(parents=True)
    shutil.copy(tiny_synth_dataset / "manifest.json", dataset)
    shutil.copy(tiny_synth_dataset / "splits" / "random.json", dataset / "splits")
    records = json.loads((dataset / "manifest.json").read_text())["records"]
    random = json.loads((dataset / "splits" / "random.json").read_text())
    classes = sorted({r["motion_class"] for r in records})
    wanted = [c for c in classes
              if any(r["motion_class"] == c and r["clip_key"] in random["test"] for r in records)]
    name = sim_to_real.classes_split(dataset, wanted[:1])
    split = json.loads((dataset / "splits" / f"{name}.json").read_text())
    of_class = {r["clip_key"] for r in records if r["motion_class"] == wanted[0]}
    assert set(split["train"]) == set(random["train"]) & of_class
    assert set(split["test"]) == set(random["test"]) & of_class and split["test"]
    assert sim_to_real.classes_split(dataset, wanted[:1]) == name  # written once, reused


def _result(p1, bone_scale):
    bones = {"hip-thorax": {"pred": 480 * bone_scale, "true": 480.0,
                            "error": abs(480 * bone_scale - 480)}}
    return {"metrics": {"P1": p1, "P2": p1 * 0.8, "P3": p1 * 0.9, "MPJVE": 4.0,
                        "PCK150": 0.9, "per_group": {"hip": 10.0, "wrist": p1 * 2}},
            "per_class": {"Walking": {"P1": p1}, "Jog": {"P1": p1 + 5}},
            "class_mean": {"P1": p1 + 2.5}, "bones": {"error": bones["hip-thorax"]["error"],
                                                      "per_bone": bones}}


def test_table_reports_the_ratio_to_the_real_trained_model(tmp_path):
    summary = {"train_seconds": 120.0, "train_sequences": 10, "train_frames": 1000,
               "epochs_done": 2, "steps_per_epoch": 5, "batch_size": 8, "parameters": 99,
               "receptive_field": 27}
    real = {"name": "real", "train_on": "real"}
    synthetic = {"name": "synthetic", "train_on": "capsule_acclaim", "note": "names only"}
    results = [{"row": real, "evaluation": "gt 2D", "summary": summary,
                "result": _result(40.0, 1.0)},
               {"row": synthetic, "evaluation": "gt 2D", "summary": summary,
                "result": _result(60.0, 0.9)},
               # A variant of the real row further down is not the baseline of the ratio.
               {"row": dict(real, name="real, more channels"), "evaluation": "gt 2D",
                "summary": summary, "result": _result(30.0, 1.0)}]
    sim_to_real.write_tables(results, CONFIG, tmp_path, ["anny: not run, needs bodies"])
    table = (tmp_path / "results.md").read_text()
    assert ("| synthetic | gt 2D | 2.0 | 60.0 | 48.0 | 54.0 | 4.0 | 90.0 | 48.0 | 48.0 | 1.50 |"
            in table)
    assert "| real | gt 2D | 2.0 | 40.0 |" in table and "| 1.00 |" in table
    assert "| real, more channels | gt 2D | 2.0 | 30.0 |" in table and "| 0.75 |" in table
    assert "- synthetic: names only" in table and "- anny: not run, needs bodies" in table
    assert "| synthetic | 432 (480) |" in table
    assert "| real | 10 | 1000 | 10 x 8 | 99 | 27 | 2.0 |" in table
    assert json.loads((tmp_path / "results.json").read_text())[1]["result"]["metrics"]["P1"] \
        == 60.0
    assert (tmp_path / "bone_lengths.png").stat().st_size > 1000


def test_an_unlabeled_real_row_trains_semi_supervised_on_the_real_2d(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(sim_to_real, "_run", lambda command, log: calls.append(
        [str(c) for c in command]))
    row = next(r for r in CONFIG["rows"] if r.get("unlabeled_real"))
    sim_to_real.train_row(row, CONFIG, {row["train_on"]: "/synthetic"}, tmp_path / "a",
                          tmp_path, tmp_path)
    (train,) = calls
    option = lambda name: train[train.index(name) + 1]  # noqa: E731
    real = CONFIG["real"]
    assert option("--dataset") == "/synthetic" and option("--split") == "random"
    assert option("--supervision") == "semi-supervised"
    assert option("--unlabeled-dataset") == real["dataset"]
    assert option("--unlabeled-split") == real["split"]
    assert option("--unlabeled-vp3d-name") == real["vp3d_name"]
    assert option("--unlabeled-keypoints") == real["keypoints"]
    with pytest.raises(SystemExit, match="needs a synthetic set"):
        sim_to_real.train_row(dict(row, train_on="real"), CONFIG, {}, tmp_path / "b",
                              tmp_path, tmp_path)
