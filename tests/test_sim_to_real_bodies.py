"""experiments/sim_to_real_bodies.py: real motion re-proportioned and filmed by our cameras."""
import importlib.util
import json

import numpy as np

from conftest import REPO_ROOT, shared_dir
from posecontract.layouts import HUMANEVA_15

_SPEC = importlib.util.spec_from_file_location(
    "sim_to_real_bodies", REPO_ROOT / "experiments" / "sim_to_real_bodies.py")
bodies = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bodies)

REAL = {"dataset": str(shared_dir() / "real" / "humaneva"), "vp3d_name": "humaneva15",
        "split": "subjects:train=Train/S1;test=Validate/S2"}


def test_repose_keeps_directions_and_root_and_sets_every_length():
    rng = np.random.default_rng(0)
    poses = rng.normal(0, 0.3, (20, 15, 3))
    lengths = np.r_[0.0, rng.uniform(0.05, 0.5, 14)]
    moved = bodies.repose(poses, HUMANEVA_15.parents, lengths)
    np.testing.assert_allclose(moved[:, 0], poses[:, 0])
    np.testing.assert_allclose(bodies.mean_lengths(moved, HUMANEVA_15.parents), lengths)
    for k, parent in enumerate(HUMANEVA_15.parents[1:], start=1):
        a, b = poses[:, k] - poses[:, parent], moved[:, k] - moved[:, parent]
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        np.testing.assert_allclose(cos, 1.0, atol=1e-9)


def test_a_jittered_set_keeps_the_test_subjects_and_films_new_bodies(tmp_path):
    from vp3dkeras.data.vp3d_format import restricted_load_npz
    out = tmp_path / "jittered"
    subjects = bodies.build("jitter", REAL, out, 2)
    assert subjects == "Train/S1j0,Train/S1j1"
    assert (out / "train_subjects.txt").read_text() == subjects
    src = restricted_load_npz(shared_dir() / "real" / "humaneva" / "data_3d_humaneva15.npz")
    made = restricted_load_npz(out / "data_3d_humaneva15.npz")["positions_3d"]
    made_2d = restricted_load_npz(out / "data_2d_humaneva15_gt.npz")["positions_2d"]
    assert set(made) == {"Validate/S2", "Train/S1j0", "Train/S1j1"}
    for action, poses in made["Validate/S2"].items():
        np.testing.assert_array_equal(poses, src["positions_3d"]["Validate/S2"][action])
    own = bodies.mean_lengths(np.concatenate(
        [np.asarray(v, float) for v in src["positions_3d"]["Train/S1"].values()]),
        HUMANEVA_15.parents)
    replica = np.concatenate([np.asarray(v, float) for v in made["Train/S1j0"].values()])
    ratio = bodies.mean_lengths(replica, HUMANEVA_15.parents)[1:] / own[1:]
    assert 0.8 < ratio.min() and ratio.max() < 1.2 and np.ptp(ratio) > 0.01
    # The 2D is the 3D seen through the cameras written beside it.
    from synth.cameras import Camera
    camera = json.loads((out / "data_cameras_humaneva15.json").read_text())["Train/S1j1"][2]
    fx, fy, cx, cy, k1, k2, k3, p1, p2 = camera["intrinsics"]
    rig = Camera(*camera["image_size"], fx, fy, cx, cy, (k1, k2, k3), (p1, p2),
                 np.asarray(camera["rotation"]), np.asarray(camera["translation"]))
    action = next(iter(made["Train/S1j1"]))
    np.testing.assert_allclose(made_2d["Train/S1j1"][action][2],
                               rig.project_world(np.asarray(made["Train/S1j1"][action], float)),
                               atol=0.05)
