"""Semi-supervised back-projection: loss terms, gradients, fit (XLA on and off), saving, the
labeled/unlabeled choice and the command line, on synthetic poses and a tiny real dataset."""
import json
import os
import shutil
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from model_helpers import randomize_batch_norm
from synth.dataset import read_manifest
from synth.export_vp3d import export_videopose3d
from synth.render import RenderSettings, render_dataset
from vp3dkeras import losses
from vp3dkeras.camera import project_to_2d_np
from vp3dkeras.cli_errors import EXIT_BAD_INPUT, run_main
from vp3dkeras.data import restricted_load_npz
from vp3dkeras.data.bone_jitter import BoneJitter
from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.data.semi_supervised import (ReprojectionWindowSampler,
                                            semi_supervised_batches, split_labeled_unlabeled)
from vp3dkeras.data.synth_source import SynthSource
from posecontract.layouts import H36M_17
from vp3dkeras.models import TemporalModel, TrajectoryModel
from vp3dkeras.models.semi_supervised_model import SemiSupervisedModel, SemiSupervisedWarmup
from vp3dkeras.evaluate import main as evaluate_main
from vp3dkeras.train import main as train_main

WIDTHS = (3, 3)
RF = 9
PAD = (4, 4)


def make_model(channels=16, **kwargs):
    pose = TemporalModel(17, 2, 17, WIDTHS, channels=channels)
    trajectory = TrajectoryModel(17, 2, WIDTHS, channels=channels)
    return SemiSupervisedModel(pose, trajectory, **kwargs)


def to_float(x):
    return float(keras.ops.convert_to_numpy(x))


@pytest.fixture(scope="module")
def synthetic_batch():
    """8 windows (4 labeled, 4 unlabeled) whose centre-frame 2D is the exact projection of
    their pose + trajectory through distorted cameras (normalised intrinsics)."""
    rng = np.random.default_rng(0)
    batch = 8
    poses = rng.normal(scale=0.3, size=(batch, 1, 17, 3)).astype("float32")
    poses[..., 0, :] = 0.0
    trajectory = np.stack([rng.uniform(-0.5, 0.5, batch), rng.uniform(-0.3, 0.3, batch),
                           rng.uniform(3.0, 6.0, batch)], -1).reshape(batch, 1, 1, 3)
    trajectory = trajectory.astype("float32")
    width, height = 1000.0, 800.0
    pixel = np.array([900.0, 910.0, 510.0, 390.0, -0.05, 0.02, 0.001, 0.001, -0.002])
    intrinsics = PoseCodec.normalize_intrinsics(np.tile(pixel, (batch, 1)), (width, height))
    centre = project_to_2d_np(poses + trajectory, intrinsics).astype("float32")
    keypoints = rng.normal(scale=0.2, size=(batch, RF, 17, 2)).astype("float32")
    keypoints[:, PAD[0]] = centre[:, 0]
    x = {"keypoints": keypoints, "intrinsics": intrinsics}
    y = {"pose": poses, "trajectory": trajectory}
    return x, y


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, hdm05_dir):
    """Real HDM05 clips of three actors (bd: 4 clips, bk: 2, mm: 1, held out by a split), one
    avatar, one camera, 25 fps."""
    mocap = tmp_path_factory.mktemp("mocap")
    clips = {"bd": ["HDM_bd_squat1Reps_00%d_120" % i for i in (1, 2, 3, 4)],
             "bk": ["HDM_bk_squat1Reps_013_120", "HDM_bk_squat1Reps_014_120"],
             "mm": ["HDM_mm_squat1Reps_037_120"]}
    for actor, names in clips.items():
        shutil.copy(hdm05_dir / f"HDM_{actor}.asf", mocap)
        for name in names:
            shutil.copy(hdm05_dir / f"{name}.amc", mocap)
    out = tmp_path_factory.mktemp("dataset")
    render_dataset(mocap, out, RenderSettings(fps=25.0, avatars=("ava",), num_cameras=1,
                                              seed=1), progress=False)
    return out


def test_projection_loss_vanishes_for_the_truth(synthetic_batch):
    x, y = synthetic_batch
    model = make_model()
    terms = model.loss_terms(x, y, y_pred=y)
    assert to_float(terms["projection_loss"]) < 1e-5
    assert to_float(terms["pose_loss"]) == 0.0
    assert to_float(terms["trajectory_loss"]) == 0.0
    moved = {"pose": y["pose"], "trajectory": y["trajectory"] + np.float32([0.1, 0.0, 0.0])}
    assert to_float(model.loss_terms(x, y, y_pred=moved)["projection_loss"]) > 1e-2


def test_projection_loss_vanishes_for_the_truth_on_real_flipped_windows(tiny_dataset):
    # Joint centres: every bone is rigid, so the bone-length term of the truth is exactly 0
    # (Human3.6M's hips, fixed to the pelvis, are not the thighs' centres of rotation).
    source = SynthSource(tiny_dataset, keypoints_in="acclaim17", keypoints_out="acclaim17")
    sampler = ReprojectionWindowSampler(source, PAD, batch_size=64, augment=True)
    x, y = sampler.batch(0)
    model = make_model()
    terms = model.loss_terms(x, y, y_pred=y)
    assert to_float(terms["projection_loss"]) < 1e-5
    assert to_float(terms["bone_length_loss"]) < 1e-6  # labeled and unlabeled: same avatar


def test_unlabeled_half_trains_both_models_without_its_3d(synthetic_batch):
    x, y = synthetic_batch
    model = make_model()
    model(x["keypoints"])
    with tf.GradientTape(persistent=True) as tape:
        terms = model.loss_terms(x, y, model(x["keypoints"], training=True))
    for sub in (model.pose_model, model.trajectory_model):
        grads = tape.gradient(terms["projection_loss"], sub.trainable_variables)
        assert all(g is not None for g in grads)
        assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0, sub.name

    scrambled = {k: v.copy() for k, v in y.items()}
    for value in scrambled.values():
        value[4:] = np.random.default_rng(1).normal(size=value[4:].shape)
    y_pred = model(x["keypoints"], training=False)
    before = model.loss_terms(x, y, y_pred)
    after = model.loss_terms(x, scrambled, y_pred)
    for name in before:
        assert to_float(after[name]) == pytest.approx(to_float(before[name]))


def test_bone_length_term_is_zero_only_for_matching_lengths(synthetic_batch):
    _, y = synthetic_batch
    poses = y["pose"][:, 0]
    bones = H36M_17.bones()
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                         [0, 0, 1]], "float32")
    rotated = poses @ rotation.T + np.float32([0.3, -0.1, 2.0])
    assert to_float(losses.bone_length_loss(poses, rotated, bones)) < 1e-10
    # Same mean bone lengths from another set of poses: the batch order does not matter.
    assert to_float(losses.bone_length_loss(poses, rotated[::-1], bones)) < 1e-10
    assert to_float(losses.bone_length_loss(poses, 1.1 * poses, bones)) > 1e-4
    lengths = keras.ops.convert_to_numpy(losses.bone_lengths(poses, bones))
    expected = np.mean((0.1 * lengths.mean(0)) ** 2)
    assert to_float(losses.bone_length_loss(poses, 1.1 * poses, bones)) == pytest.approx(
        expected, rel=1e-4)


def test_warmup_and_weights_shape_the_total_loss(synthetic_batch):
    x, y = synthetic_batch
    model = make_model(pose_weight=2.0, trajectory_weight=3.0, projection_weight=5.0,
                       bone_length_weight=7.0)
    y_pred = model(x["keypoints"], training=False)
    terms = {k: to_float(v) for k, v in model.loss_terms(x, y, y_pred).items()}
    supervised = 2 * terms["pose_loss"] + 3 * terms["trajectory_loss"]
    unlabeled = 5 * terms["projection_loss"] + 7 * terms["bone_length_loss"]
    assert to_float(model.compute_loss(x, y, y_pred)) == pytest.approx(supervised + unlabeled,
                                                                       rel=1e-5)
    model.unlabeled_weight = 0.0
    assert to_float(model.compute_loss(x, y, y_pred)) == pytest.approx(supervised, rel=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_on_real_windows(tiny_dataset, jit_compile):
    source = SynthSource(tiny_dataset)
    split = source.split("actor_out_hdm05_mm")
    labeled_keys, unlabeled_keys = split_labeled_unlabeled(
        read_manifest(tiny_dataset)["records"], split.train, ["bd"], 0.5)
    labeled = ReprojectionWindowSampler(source.select(labeled_keys), PAD, batch_size=16)
    unlabeled = ReprojectionWindowSampler(source.select(unlabeled_keys), PAD, batch_size=16,
                                          with_3d=False, seed=1)
    x, y = unlabeled.batch(0)
    assert not y["pose"].any() and not y["trajectory"].any()
    model = make_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3, amsgrad=True), jit_compile=jit_compile)
    history = model.fit(semi_supervised_batches(labeled, unlabeled), epochs=2,
                        steps_per_epoch=3, verbose=0, shuffle=False,
                        callbacks=[SemiSupervisedWarmup(1)])
    logs = history.history
    assert logs["unlabeled_weight"] == [0.0, 1.0]
    for name in ("loss", "pose_loss", "trajectory_loss", "projection_loss",
                 "bone_length_loss"):
        assert len(logs[name]) == 2 and np.all(np.isfinite(logs[name])), name
    assert logs["loss"][0] == pytest.approx(logs["pose_loss"][0] + logs["trajectory_loss"][0],
                                            rel=1e-4)
    results = model.evaluate(semi_supervised_batches(labeled, unlabeled), steps=2, verbose=0,
                             return_dict=True)
    assert np.isfinite(results["projection_loss"])


def test_supervised_only_uses_every_row(synthetic_batch):
    x, y = synthetic_batch
    model = make_model(labeled_only=True)
    model.compile(optimizer="adam")
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    assert set(history) == {"loss", "pose_loss", "trajectory_loss"}
    y_pred = model(x["keypoints"], training=False)
    pose = keras.ops.convert_to_numpy(y_pred["pose"])
    assert to_float(model.loss_terms(x, y, y_pred)["pose_loss"]) == pytest.approx(
        np.linalg.norm(pose - y["pose"], axis=-1).mean(), rel=1e-5)


def test_keras_file_round_trip(synthetic_batch, tmp_path):
    x, _ = synthetic_batch
    model = make_model(bone_length_weight=0.5, projection_weight=2.0, max_slope=0.8)
    model.unlabeled_weight = 0.25
    model(x["keypoints"])
    randomize_batch_norm(model.pose_model)
    randomize_batch_norm(model.trajectory_model, seed=1)
    path = tmp_path / "semi.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(reloaded, SemiSupervisedModel)
    config = json.loads(json.dumps(reloaded.get_config()))
    assert config == json.loads(json.dumps(model.get_config()))
    assert config["bone_length_weight"] == 0.5 and config["unlabeled_weight"] == 0.25
    assert reloaded.unlabeled_weight == 0.25
    expected, actual = model(x["keypoints"]), reloaded(x["keypoints"])
    for key in ("pose", "trajectory"):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(actual[key]),
                                      keras.ops.convert_to_numpy(expected[key]))
    rebuilt = SemiSupervisedModel.from_config(model.get_config())
    assert rebuilt.pose_model.receptive_field() == RF


def test_labeled_unlabeled_choice_is_disjoint_and_seeded():
    records = [{"clip_key": f"c{actor}{i}", "dataset": "hdm05", "actor": actor}
               for actor in ("bd", "bk", "mm") for i in range(20)]
    records += [dict(r, avatar="second") for r in records]  # several records per clip
    train = [r["clip_key"] for r in records if r["actor"] != "mm"]
    labeled, unlabeled = split_labeled_unlabeled(records, train, ["bd"], 0.25, seed=3)
    assert len(labeled) == 5 and all(k.startswith("cbd") for k in labeled)
    assert not set(labeled) & set(unlabeled)
    assert set(labeled) | set(unlabeled) == set(train)
    assert split_labeled_unlabeled(records, train, ["hdm05_bd"], 0.25, seed=3) == (
        labeled, unlabeled)
    other = split_labeled_unlabeled(records, train, ["bd"], 0.25, seed=4)[0]
    assert other != labeled
    _, only_bk = split_labeled_unlabeled(records, train, ["bd"], 0.25, unlabeled_actors=["bk"])
    assert all(k.startswith("cbk") for k in only_bk) and len(only_bk) == 20
    with pytest.raises(ValueError, match="no training clips"):
        split_labeled_unlabeled(records, train, ["mm"], 0.5)
    with pytest.raises(ValueError, match="labeled_fraction"):
        split_labeled_unlabeled(records, train, ["bd"], 0.0)


@pytest.mark.parametrize("mode", ["semi", "supervised"])
def test_command_line_trains_saves_and_evaluates(tiny_dataset, tmp_path, mode):
    out = tmp_path / mode
    assert train_main([
        "--dataset", str(tiny_dataset), "--split", "actor_out_hdm05_mm",
        "--supervision", "semi-supervised" if mode == "semi" else "supervised",
        "--labeled-actors", "bd", "--labeled-fraction", "0.5", "--filter-widths", "3,3",
        "--channels", "16", "--epochs", "2", "--warmup-epochs", "1", "--batch-size", "8",
        "--max-windows-per-epoch", "16", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and np.isfinite(summary["trajectory_mm"])
    assert summary["labeled_clips"] == 2
    assert summary["unlabeled_clips"] == (0 if mode == "supervised" else 4)
    clips = json.loads((out / "labeled_clips.json").read_text())
    assert len(clips["labeled"]) == 2 and not set(clips["labeled"]) & set(clips["unlabeled"])
    config = json.loads((out / "config.json").read_text())
    assert config["supervision"] == ("semi-supervised" if mode == "semi" else "supervised")
    assert config["labeled_actors"] == ["bd"] and config["batch_size"] == 8
    pose_model = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert isinstance(pose_model, TemporalModel) and pose_model.receptive_field() == RF
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    if mode == "semi":
        assert [h["unlabeled_weight"] for h in history] == [0.0, 1.0]
    # The run directory is one `python -m vp3dkeras.evaluate` understands.
    assert evaluate_main([str(out), "--no-flip-tta", "--name", "check"]) == 0
    evaluated = json.loads((out / "eval_check.json").read_text())["metrics"]
    assert np.isfinite(evaluated["P1"]) and evaluated["P1"] > 0


JAX_SCRIPT = """
import keras, numpy as np
from vp3dkeras.models import TemporalModel, TrajectoryModel
from vp3dkeras.models.semi_supervised_model import SemiSupervisedModel, SemiSupervisedWarmup
assert keras.backend.backend() == "jax"
data = np.load(__import__("sys").argv[1])
x = {"keypoints": data["keypoints"], "intrinsics": data["intrinsics"]}
y = {"pose": data["pose"], "trajectory": data["trajectory"]}
for jit in (False, True):
    model = SemiSupervisedModel(TemporalModel(17, 2, 17, (3, 3), channels=16),
                                TrajectoryModel(17, 2, (3, 3), channels=16))
    model.compile(optimizer="adam", jit_compile=jit)
    logs = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False,
                     callbacks=[SemiSupervisedWarmup(1)]).history
    assert logs["unlabeled_weight"] == [0.0, 1.0], logs
    assert all(np.isfinite(v).all() for v in logs.values()), logs
    assert logs["projection_loss"][0] > 0
"""


def test_fit_on_the_jax_backend(synthetic_batch, tmp_path):
    pytest.importorskip("jax")
    x, y = synthetic_batch
    np.savez(tmp_path / "batch.npz", **x, **y)
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT, str(tmp_path / "batch.npz")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("trained", [True, False])
def test_bone_target_gradient_switch(synthetic_batch, trained):
    x, y = synthetic_batch
    model = make_model(bone_target_gradient=trained)
    pose = tf.constant(y["pose"] * np.linspace(0.8, 1.2, 8, dtype="float32")[:, None, None, None])
    with tf.GradientTape() as tape:
        tape.watch(pose)
        term = model.loss_terms(x, y, {"pose": pose, "trajectory": y["trajectory"]})[
            "bone_length_loss"]
    grad = tape.gradient(term, pose).numpy()
    assert np.abs(grad[4:]).sum() > 0  # the unlabeled half always moves
    assert (np.abs(grad[:4]).sum() > 0) == trained


def test_bone_jitter_reproportions_the_labeled_windows(tiny_dataset):
    """Labeled windows get new bone lengths with their 2D re-projected through the same camera
    from the same root; unlabeled ones, which have no 3D to re-proportion, refuse it."""
    source = SynthSource(tiny_dataset)
    plain = ReprojectionWindowSampler(source, PAD, 16, augment=False)
    jittered = ReprojectionWindowSampler(source, PAD, 16, augment=False,
                                         bones=BoneJitter(H36M_17, 0.1))
    (x0, y0), (x1, y1) = plain.batch(0), jittered.batch(0)
    np.testing.assert_array_equal(y1["trajectory"], y0["trajectory"])
    np.testing.assert_array_equal(x1["intrinsics"], x0["intrinsics"])
    assert np.abs(y1["pose"] - y0["pose"]).max() > 0.01
    centre = project_to_2d_np(y1["pose"].astype(np.float64) + y1["trajectory"],
                              x1["intrinsics"].astype(np.float64), source.lens_model)
    np.testing.assert_allclose(x1["keypoints"][:, PAD[0]], centre[:, 0], atol=1e-5)
    with pytest.raises(ValueError, match="cannot jitter bone lengths"):
        ReprojectionWindowSampler(source, PAD, 16, with_3d=False,
                                  bones=BoneJitter(H36M_17, 0.1))


def _two_d_only_export(dataset, folder, keypoints=None):
    """The dataset as VideoPose3D files without their 3D: detections and cameras only, what a
    real set without 3D (or a user's own 2D) gives."""
    export_videopose3d(dataset, folder, "real", keypoints)
    (folder / "data_3d_real.npz").unlink()
    return folder


def test_the_unlabeled_side_can_be_another_folders_2d(tiny_dataset, tmp_path, capsys):
    real = _two_d_only_export(tiny_dataset, tmp_path / "real")
    out = tmp_path / "run"
    split = "subjects:train=hdm05_bd_ava,hdm05_bk_ava;test=hdm05_mm_ava"
    assert train_main([
        "--dataset", str(tiny_dataset), "--split", "actor_out_hdm05_mm",
        "--supervision", "semi-supervised", "--unlabeled-dataset", str(real),
        "--unlabeled-vp3d-name", "real", "--unlabeled-split", split, "--bone-jitter", "0.05",
        "--filter-widths", "3,3", "--channels", "16", "--epochs", "2", "--batch-size", "8",
        "--max-windows-per-epoch", "16", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    records = read_manifest(tiny_dataset)["records"]
    assert summary["finished"] and summary["labeled_clips"] == 6  # every bd and bk clip
    frames = sum(r["num_frames"] for r in records if r["actor"] in ("bd", "bk"))
    assert summary["unlabeled_windows"] == frames  # the other folder's bd and bk sequences
    assert summary["train_frames"] == 2 * frames  # the same clips labeled, as synthetic 3D
    clips = json.loads((out / "labeled_clips.json").read_text())
    assert clips["unlabeled_dataset"] == str(real) and len(clips["unlabeled"]) == 6
    config = json.loads((out / "config.json").read_text())
    assert config["unlabeled_split"] == split and config["bone_jitter"] == 0.05
    assert evaluate_main([str(out), "--no-flip-tta", "--name", "check"]) == 0

    # 2D of another convention cannot be compared with the projected 3D: refused in one line
    # that names the folder, before any run folder is made.
    coco = _two_d_only_export(tiny_dataset, tmp_path / "coco", "coco17")
    capsys.readouterr()
    assert run_main(train_main, [
        "--dataset", str(tiny_dataset), "--split", "actor_out_hdm05_mm",
        "--supervision", "semi-supervised", "--unlabeled-dataset", str(coco),
        "--unlabeled-vp3d-name", "real", "--channels", "16", "--epochs", "1",
        "--quiet", "--out", str(tmp_path / "refused")]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and str(coco) in error and "coco17" in error, error
    assert not (tmp_path / "refused").exists()


def test_unusable_unlabeled_folders_are_refused_in_one_line(tiny_dataset, tmp_path, capsys):
    good = _two_d_only_export(tiny_dataset, tmp_path / "good")
    data_2d = "data_2d_real_gt.npz"
    folders = {}
    for case in ("truncated", "no cameras", "NaN"):
        folders[case] = tmp_path / case.replace(" ", "_")
        shutil.copytree(good, folders[case])
    (folders["truncated"] / data_2d).write_bytes((good / data_2d).read_bytes()[:200])
    (folders["no cameras"] / "data_cameras_real.json").unlink()
    arrays = restricted_load_npz(good / data_2d)
    positions = arrays["positions_2d"]
    subject = sorted(positions)[0]
    action = sorted(positions[subject])[0]
    positions[subject][action][0][3, 2] = np.nan
    np.savez(folders["NaN"] / data_2d, **arrays)
    expected = {"truncated": "not a readable .npz",
                "no cameras": "each sequence's camera is needed",
                "NaN": "non-finite", "unknown subject": "--unlabeled-split"}
    folders["unknown subject"] = good
    for case, folder in folders.items():
        split = ("subjects:train=nobody;test=hdm05_mm_ava" if case == "unknown subject"
                 else "subjects:train=hdm05_bd_ava;test=hdm05_mm_ava")
        out = tmp_path / f"run_{case.replace(' ', '_')}"
        capsys.readouterr()
        assert run_main(train_main, [
            "--dataset", str(tiny_dataset), "--split", "actor_out_hdm05_mm",
            "--supervision", "semi-supervised", "--unlabeled-dataset", str(folder),
            "--unlabeled-vp3d-name", "real", "--unlabeled-split", split,
            "--channels", "16", "--epochs", "1", "--quiet", "--out", str(out)]) == EXIT_BAD_INPUT
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and str(folder) in error and expected[case] in error, \
            (case, error)
        assert not out.exists(), case
