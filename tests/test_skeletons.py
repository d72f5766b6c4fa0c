"""Target skeletons: measured from real 3D, written as JSON, refused with one line when broken,
and trained towards (every window rigidly set to one of them and re-projected)."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, shared_dir
from test_bone_jitter import assert_inputs_are_projections
from posecontract.layouts import H36M_17, HUMANEVA_15
from vp3dkeras.config import ConfigError
from vp3dkeras.data import WindowSampler, open_split
from vp3dkeras.data.bone_jitter import BoneJitter, bone_jitter_from_config
from vp3dkeras.data.skeletons import (bone_names, load_skeletons, measure_skeletons,
                                      save_skeletons)
from vp3dkeras.data.sources import open_source, split_source
from vp3dkeras.data.vp3d_format import restricted_load_npz
from vp3dkeras.train_config import TrainConfig

HUMANEVA = shared_dir() / "real" / "humaneva"
SPLIT = "subjects:train=Train/S1,Train/S2,Train/S3;test=Validate/S1,Validate/S2,Validate/S3"


def _lengths(poses, layout):
    return np.stack([np.linalg.norm(poses[..., c, :] - poses[..., p, :], axis=-1)
                     for p, c in layout.bones()], axis=-1)


def test_humaneva_training_subjects_measure_as_their_raw_3d_says(tmp_path):
    if not HUMANEVA.is_dir():
        pytest.fail(f"HumanEva-I not found at {HUMANEVA}; set VP3D_SHARED_DIR")
    train, _ = split_source(open_source(HUMANEVA, vp3d_name="humaneva15"), HUMANEVA, SPLIT)
    measured = measure_skeletons(train)
    assert sorted(measured) == ["Train/S1", "Train/S2", "Train/S3"]
    # Independently: the raw world-frame 3D of every action of a subject, frame-weighted.
    raw = restricted_load_npz(HUMANEVA / "data_3d_humaneva15.npz")["positions_3d"]
    for subject in measured:
        frames = np.concatenate([np.asarray(p, np.float64)
                                 for p in raw[subject].values()])
        # Every camera of an action films the same frames: the weights do not change.
        expected = _lengths(frames, HUMANEVA_15).mean(0)
        child = [c for _, c in HUMANEVA_15.bones()]
        np.testing.assert_allclose(measured[subject][child], expected, rtol=2e-3)
        assert measured[subject][0] == 0
    # HumanEva-I's subjects differ: S3's upper arms are 40-60 mm longer than S1's.
    upper = HUMANEVA_15.names.index("l_elbow")
    assert 0.04 < measured["Train/S3"][upper] - measured["Train/S1"][upper] < 0.07

    path = tmp_path / "he.json"
    save_skeletons(path, HUMANEVA_15, measured, "test")
    subjects, table = load_skeletons(path, HUMANEVA_15)
    assert subjects == ["Train/S1", "Train/S2", "Train/S3"]
    np.testing.assert_allclose(table, np.stack([measured[s] for s in subjects]), atol=1e-5)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


@pytest.mark.parametrize("edit, message", [
    (lambda d: None, "no such skeletons file"),
    (lambda d: "{not json", "not a readable JSON skeletons file"),
    (lambda d: {**d, "format": "other/1"}, "not a skeletons file"),
    (lambda d: {**d, "unit": "mm"}, "skeletons are in metres"),
    (lambda d: {**d, "skeletons": {}}, "at least one entry"),
    (lambda d: {**d, "bones": d["bones"][:-1]}, "lack humaneva15's bones"),
    (lambda d: {**d, "skeletons": {"S1": d["skeletons"]["S1"][:-1]}}, "has 13 lengths"),
    (lambda d: {**d, "skeletons": {"S1": [float("nan")] + d["skeletons"]["S1"][1:]}},
     "'hip-thorax' is nan"),
    (lambda d: {**d, "skeletons": {"S1": [480.0] + d["skeletons"]["S1"][1:]}},
     "'hip-thorax' is 480.0"),
    (lambda d: {**d, "skeletons": {"S1": [True] + d["skeletons"]["S1"][1:]}},
     "'hip-thorax' is True"),
    (lambda d: json.dumps(d).replace("0.3", "1" + "0" * 400, 1), "is 1000"),
])
def test_a_broken_skeletons_file_is_refused_in_one_line(tmp_path, edit, message):
    good = tmp_path / "good.json"
    save_skeletons(good, HUMANEVA_15, {"S1": np.r_[0, np.full(14, 0.3)]}, "test")
    document = json.loads(good.read_text())
    bad = tmp_path / "bad.json"
    changed = edit(document)
    if changed is not None:
        bad.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(ValueError, match=message) as error:
        load_skeletons(bad, HUMANEVA_15)
    assert str(bad) in str(error.value) and "\n" not in str(error.value)


def test_windows_take_one_target_skeleton_each_and_are_its_projection(tiny_synth_dataset,
                                                                      tmp_path):
    train, _ = open_split(tiny_synth_dataset, "actor_out_hdm05_mm")
    layout = train.codec.layout
    own = np.mean(list(measure_skeletons(train).values()), axis=0)
    targets = {"small": own * 0.85, "tall": own * 1.2}
    path = tmp_path / "targets.json"
    save_skeletons(path, layout, targets, "test")
    bones = bone_jitter_from_config(layout, layout, 0.0, train.lens_model, str(path))
    pad = (4, 4)
    sampler = WindowSampler(train, pad, batch_size=64, chunk=3, seed=2, augment=False,
                            bones=bones)
    x, y = sampler.batch(0)
    child = [c for _, c in layout.bones()]
    lengths = _lengths(y, layout)  # (64, 3, bones)
    # Rigid: every frame of every example has exactly one target's lengths.
    distance = np.stack([np.abs(lengths - t[child]).max(axis=(1, 2))
                         for t in targets.values()], axis=1)
    assert np.all(distance.min(axis=1) < 1e-5)
    chosen = distance.argmin(axis=1)
    assert 10 < np.sum(chosen == 0) < 54  # both are used
    assert_inputs_are_projections(sampler, x, y, step=9)
    # With jitter, each window's lengths are its skeleton's times one factor per bone.
    jittered = WindowSampler(train, pad, batch_size=64, chunk=3, seed=2, augment=False,
                             bones=bone_jitter_from_config(layout, layout, 0.05,
                                                           train.lens_model, str(path)))
    ratio = _lengths(jittered.batch(0)[1], layout) / lengths
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-4)
    assert 0.03 < np.log(ratio[:, 0]).std() < 0.07


def test_skeleton_options_are_checked():
    with pytest.raises(ValueError, match="positive number"):
        BoneJitter(H36M_17, 0.0)
    with pytest.raises(ValueError, match=r"\(S, 17\)"):
        BoneJitter(H36M_17, 0.0, skeletons=np.ones((2, 15)))
    with pytest.raises(ValueError, match="--skeletons needs the 2D input"):
        bone_jitter_from_config(H36M_17, HUMANEVA_15, 0.0, "opencv", "x.json")
    with pytest.raises(ValueError, match="x.json: no such skeletons file"):
        bone_jitter_from_config(H36M_17, H36M_17, 0.0, "opencv", "x.json")
    config = TrainConfig(dataset="d", split="s", skeletons="work/he_train.json")
    assert "skel-he-train" in config.run_name()
    assert TrainConfig.from_json(config.to_json()).skeletons == "work/he_train.json"
    with pytest.raises(ConfigError, match=r"skeletons \(--skeletons\) needs the temporal"):
        TrainConfig(dataset="d", split="s", skeletons="x.json", model="refiner")
    assert bone_names(HUMANEVA_15)[0] == "hip-thorax"


def test_the_command_measures_a_dataset_and_refuses_a_bad_one(tiny_synth_dataset, tmp_path):
    out = tmp_path / "skeletons.json"
    done = subprocess.run([sys.executable, "-m", "vp3dkeras.skeletons", str(tiny_synth_dataset),
                           "--split", "actor_out_hdm05_mm", "--side", "test",
                           "--keypoints-out", "h36m17", "--out", str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    subjects, table = load_skeletons(out, H36M_17)
    assert subjects == ["hdm05_mm"] and np.all(table[0, 1:] > 0.05)
    assert "1 skeletons (h36m17; above in mm, written in metres)" in done.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = subprocess.run([sys.executable, "-m", "vp3dkeras.skeletons", str(empty),
                          "--out", str(tmp_path / "x.json")],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith(f"error: {empty}")
    assert not (tmp_path / "x.json").exists()


def test_a_run_keeps_its_skeletons_and_resumes_on_them_exactly(tiny_synth_dataset, tmp_path):
    """The run copies its skeletons file: resumed from elsewhere after the original is gone,
    it repeats the uninterrupted run; a bad file stops training before a run folder exists."""
    from vp3dkeras.train import main

    train, _ = open_split(tiny_synth_dataset, "actor_out_hdm05_mm")
    own = np.mean(list(measure_skeletons(train).values()), axis=0)
    original = tmp_path / "people.json"
    save_skeletons(original, train.codec.layout, {"a": own * 0.9, "b": own * 1.1}, "test")
    args = ["--dataset", str(tiny_synth_dataset), "--split", "actor_out_hdm05_mm",
            "--filter-widths", "3,3", "--channels", "8", "--epochs", "2", "--lr", "1e-2",
            "--max-windows-per-epoch", "32", "--val-windows", "16", "--quiet",
            "--skeletons", str(original)]
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert main([*args, "--out", str(tmp_path / "cut"), "--stop-after-epochs", "1"]) == 0
    assert (tmp_path / "cut" / "skeletons.json").read_text() == original.read_text()
    original.unlink()
    assert main(["--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    whole, cut = (json.loads((tmp_path / r / "history.json").read_text())
                  for r in ("whole", "cut"))
    assert [h["loss"] for h in cut] == pytest.approx([h["loss"] for h in whole], rel=1e-4)

    broken = tmp_path / "broken.json"
    broken.write_text("{")
    bad = [*args[:-1], str(broken), "--out", str(tmp_path / "bad")]
    with pytest.raises(ValueError, match="broken.json: not a readable JSON skeletons file"):
        main(bad)
    assert not (tmp_path / "bad").exists()
