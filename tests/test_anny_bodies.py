"""Anny bodies: population, building (in a child process), the checksummed cache, and a
real clip retargeted, skinned, recorded and rendered on them."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from render_helpers import REPO, run_child
from synth.avatars import CANONICAL_JOINTS, SEGMENTS
from synth.bodies import cache
from synth.bodies.body import ANNY_LANDMARKS, AnnyBody, bind_transforms
from synth.bodies.population import BodySpec, sample_bodies
from synth.mocap_io import load_motion
from synth.record import build_record, validate_record
from synth.render import canonical_indices
from synth.retarget import Retargeter
from synth.skinning import Skinner, rest_positions

J = {name: i for i, name in enumerate(CANONICAL_JOINTS)}
CLIP = "HDM_bd_jogLeftCircle4StepsRstart_001_120"
TWO_BODIES = [  # a short woman and a tall man, built once for the whole module
    {"sex": "female", "age": 34.0, "stature": 1.55, "bmi": 21.0},
    {"sex": "male", "age": 51.0, "stature": 1.88, "bmi": 27.0, "muscle": 0.7},
]


@pytest.fixture(scope="module")
def body_cache(tmp_path_factory) -> pathlib.Path:
    """Two bodies built by `python -m synth.bodies build` in a child process (PyTorch and
    Warp must not enter the test process, which may hold TensorFlow)."""
    folder = tmp_path_factory.mktemp("bodies")
    specs = folder / "specs.json"
    specs.write_text(json.dumps(TWO_BODIES))
    result = run_child("-m", "synth.bodies", "build", "--cache", folder / "cache",
                       "--specs", specs)
    files = [pathlib.Path(line) for line in result.stdout.split()]
    assert len(files) == 2 and all(f.is_file() for f in files)
    return folder / "cache"


@pytest.fixture(scope="module")
def bodies(body_cache):
    files = sorted(body_cache.glob("anny-*.npz"))
    loaded = [AnnyBody(f) for f in files]
    return sorted(loaded, key=lambda b: b.height)


def test_population_follows_nhanes_statures_and_is_seeded():
    specs = sample_bodies(4000, seed=7)
    for sex, mean in (("male", 1.753), ("female", 1.613)):
        statures = np.array([s.stature for s in specs if s.sex == sex])
        assert abs(statures.mean() - mean) < 0.006
        assert 0.06 < statures.std() < 0.08
    assert all(18 <= s.age <= 70 for s in specs)
    assert sample_bodies(5, seed=7) == specs[:5]
    assert sample_bodies(5, seed=8) != specs[:5]
    with_children = sample_bodies(400, seed=7, children=True)
    kids = [s for s in with_children if s.age < 18]
    assert 60 < len(kids) < 140 and all(0.95 < s.stature < 1.95 for s in kids)


def test_built_bodies_have_the_stature_asked_and_human_proportions(bodies):
    short, tall = bodies
    assert short.spec["sex"] == "female" and tall.spec["sex"] == "male"
    for body, asked in ((short, 1.55), (tall, 1.88)):
        assert abs(body.height - asked) < 0.003
        rest = body.rest_positions()
        assert abs(rest[:, 2].min()) < 0.1 and rest[J["head"], 2] < body.height
        mesh = body.mesh()
        assert mesh.vertices.shape == (13718, 3) and mesh.faces.shape == (27420, 3)
        assert np.allclose(mesh.weights.sum(axis=1), 1.0, atol=1e-5)
        assert abs(mesh.vertices[:, 2].min()) < 1e-6
        assert abs(mesh.vertices[:, 2].max() - body.height) < 1e-4
        h = body.height
        for parent, child, low, high in (("l_hip", "l_knee", 0.20, 0.27),
                                         ("l_knee", "l_ankle", 0.22, 0.29),
                                         ("l_shoulder", "l_elbow", 0.13, 0.20),
                                         ("l_elbow", "l_wrist", 0.11, 0.17)):
            assert low * h < body.segment_length(parent, child) < high * h, (parent, child)
            mirrored = body.segment_length(parent.replace("l_", "r_"), child.replace("l_", "r_"))
            assert abs(mirrored - body.segment_length(parent, child)) < 1e-6
        # The hip joints sit at about half the stature (Drillis & Contini: 0.53 H).
        assert 0.49 * h < rest[J["l_hip"], 2] < 0.56 * h
    assert tall.measures["bmi"] > short.measures["bmi"]
    assert tall.leg_length() > short.leg_length() + 0.1


def test_landmarks_sit_where_anatomy_puts_them(bodies):
    for body in bodies:
        lm, rest = body.landmarks(), body.rest_positions()
        assert tuple(sorted(lm)) == ANNY_LANDMARKS
        assert all(lm[name].shape == (3,) for name in lm)
        # Facing -Y with the person's left at +X, Z up.
        assert lm["nose"][1] < lm["l_ear"][1] - 0.05
        assert lm["l_eye"][0] > 0 > lm["r_eye"][0] and lm["l_ear"][0] > lm["l_eye"][0]
        assert lm["chin"][2] < lm["nose"][2] < lm["l_eye"][2] < lm["head_top"][2]
        assert abs(lm["head_top"][2] - body.height) < 1e-4
        assert lm["l_heel"][1] > lm["l_big_toe"][1] + 0.15  # foot about 0.15 H long
        assert lm["l_acromion"][2] > rest[J["l_shoulder"], 2]
        np.testing.assert_allclose(lm["l_hip_centre"], rest[J["l_hip"]])
        assert 0.05 < np.linalg.norm(lm["l_eye"] - lm["r_eye"]) < 0.075  # adults 54-74 mm


def test_corrupt_or_truncated_body_files_are_refused_naming_the_file(body_cache, tmp_path):
    source = sorted(body_cache.glob("anny-*.npz"))[0]
    arrays = cache.read_body(source)
    altered = dict(arrays)
    altered["joints"] = arrays["joints"] + 0.01  # a changed value under the old checksum
    bad = tmp_path / source.name
    np.savez(bad, **altered)
    with pytest.raises(cache.BodyCacheError, match=f"{bad}: corrupt body file: checksum"):
        AnnyBody(bad)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(source.read_bytes()[:5000])
    with pytest.raises(cache.BodyCacheError, match=f"{truncated}: corrupt body file"):
        cache.read_body(truncated)
    with pytest.raises(cache.BodyCacheError, match="not found"):
        cache.read_body(tmp_path / "missing.npz")


def test_unbuildable_or_invalid_bodies_give_one_line_errors(tmp_path):
    for spec, expected in (
            ({"sex": "male", "age": 30, "stature": 2.58, "bmi": 24}, "cannot be built"),
            ({"sex": "male", "age": 30, "stature": 3.2, "bmi": 24}, "invalid body: stature"),
            ({"sex": "robot", "age": 30, "stature": 1.7, "bmi": 24}, "invalid body: sex")):
        result = subprocess.run(
            [sys.executable, "-m", "synth.bodies", "build", "--cache", str(tmp_path),
             "--spec", json.dumps(spec)], cwd=REPO, capture_output=True, text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=600)
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and expected in lines[0], result.stderr
        assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.npz"))
    with pytest.raises(ValueError, match="invalid body: BMI"):
        BodySpec("female", 30.0, 1.6, 5.0)


def test_bind_transforms_carry_the_rest_pose_onto_another(bodies):
    body = bodies[0]
    source = body.rest_positions()
    # Another rest pose: arms out sideways (a T-pose), the whole body turned 90 degrees.
    target = source.copy()
    for side, sign in (("l", 1), ("r", -1)):
        shoulder = target[J[f"{side}_shoulder"]]
        for k, joint in enumerate(("elbow", "wrist")):
            length = sum(body.segment_length(*pair) for pair in (
                (f"{side}_shoulder", f"{side}_elbow"), (f"{side}_elbow", f"{side}_wrist"))[:k + 1])
            target[J[f"{side}_{joint}"]] = shoulder + [sign * length, 0.0, 0.0]
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    target = target @ turn.T
    bind = bind_transforms(source, target)
    for parent, child in SEGMENTS:
        p, c = J[parent], J[child]
        moved = bind[c, :, :3] @ source[[p, c]].T + bind[c, :, 3:]
        np.testing.assert_allclose(moved.T[0], target[p], atol=1e-9)
        if child.endswith(("elbow", "wrist", "knee", "ankle", "toe")):
            np.testing.assert_allclose(moved.T[1], target[c], atol=1e-9)
        np.testing.assert_allclose(bind[c, :, :3] @ bind[c, :, :3].T, np.eye(3), atol=1e-9)
    # The bound mesh's hands now reach sideways.
    bound = body.mesh(target).bound()
    wrist = bound.weights[:, J["l_wrist"]] > 0.9
    assert np.abs(bound.vertices[wrist, 2] - target[J["l_shoulder"], 2]).max() < 0.15


@pytest.mark.parametrize("source", ["hdm05 amc", "cmu bvh"])
def test_real_clip_retargeted_skinned_and_recorded_on_anny_bodies(bodies, hdm05_dir, bvh_dir,
                                                                   source):
    from synth.cameras import place_cameras
    path = hdm05_dir / f"{CLIP}.amc" if source == "hdm05 amc" else bvh_dir / "01_01.bvh"
    motion = load_motion(path)
    retargeter = Retargeter(motion, canonical_indices(motion))
    for body in bodies:
        clip = retargeter(body)
        canonical = clip.canonical_positions
        rest = rest_positions(clip)
        for parent, child in SEGMENTS:  # the retargeted skeleton has the body's lengths
            np.testing.assert_allclose(np.linalg.norm(rest[J[child]] - rest[J[parent]]),
                                       body.segment_length(parent, child), atol=1e-6)
            if child.endswith(("knee", "ankle", "elbow", "wrist")):  # one bone: every frame
                lengths = np.linalg.norm(canonical[:, J[child]] - canonical[:, J[parent]], axis=-1)
                np.testing.assert_allclose(lengths, body.segment_length(parent, child), atol=1e-6)
        # The trunk takes the body's own layout (turned to the clip's facing); the limbs
        # keep the source rig's rest directions, to which its rotations are relative.
        trunk = [J[n] for n in ("hip", "l_hip", "r_hip", "spine", "thorax", "neck_nose",
                                "head", "l_shoulder", "r_shoulder")]
        a = body.rest_positions()[trunk] - body.rest_positions()[trunk].mean(axis=0)
        b = rest[trunk] - rest[trunk].mean(axis=0)
        u, _, vt = np.linalg.svd(b.T @ a)
        assert np.abs(b - a @ (u @ vt).T).max() < 1e-6
        source_rest = retargeter.motion.skeleton.rest_positions()[clip.canonical_indices]
        for parent, child in (("l_shoulder", "l_elbow"), ("r_knee", "r_ankle")):
            d_new, d_src = rest[J[child]] - rest[J[parent]], (source_rest[J[child]]
                                                              - source_rest[J[parent]])
            assert np.dot(d_new, d_src) / np.linalg.norm(d_new) / np.linalg.norm(d_src) > 0.9999
        # The soles meet the floor: the lowest foot joint stands at its rest height.
        feet = canonical[:, [J["l_toe"], J["r_toe"], J["l_ankle"], J["r_ankle"]], 2]
        toe_height = body.rest_positions()[[J["l_toe"], J["r_toe"]], 2].min()
        assert 0.01 < toe_height < 0.05
        assert abs(np.percentile(feet.min(axis=1), 5) - toe_height) < 1e-6
        cameras = place_cameras(clip.positions, 2, rng=np.random.default_rng(0))
        record = build_record(motion, clip, cameras, "hdm05_test")
        assert validate_record(record) == []
        assert str(record["avatar"]) == body.name
        # The skinned mesh follows the skeleton: every joint lies within the body's reach of
        # the posed surface in every frame, and the mesh keeps its size.
        skinner = Skinner(clip)
        frames = np.arange(0, clip.positions.shape[0], 25)
        vertices, _ = skinner.pose(frames)
        for i, frame in enumerate(frames):
            joints = canonical[frame]
            nearest = np.min(np.linalg.norm(vertices[i][::7, None] - joints[None], axis=-1),
                             axis=0)
            assert nearest.max() < 0.12, (body.name, frame, CANONICAL_JOINTS[nearest.argmax()])
            extent = vertices[i].max(axis=0) - vertices[i].min(axis=0)
            assert 0.7 * body.height < np.linalg.norm(extent) < 1.6 * body.height


def test_render_command_puts_clips_on_seeded_anny_bodies(body_cache, hdm05_dir, tmp_path):
    mocap = tmp_path / "mocap"
    mocap.mkdir()
    shutil.copy(hdm05_dir / "HDM_bd.asf", mocap)
    shutil.copy(hdm05_dir / f"{CLIP}.amc", mocap)
    cache_dir = tmp_path / "cache"
    shutil.copytree(body_cache, cache_dir)
    out = tmp_path / "out"
    command = ["-m", "synth.render", mocap, "--out", out, "--bodies-per-clip", "2",
               "--body-pool", "3", "--body-cache", cache_dir, "--cameras", "1", "--fps", "25",
               "--images", "--image-scale", "0.25", "--frame-step", "20", "--mask",
               "--no-preview", "--quiet"]
    run_child(*command)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["bodies"] == "anny" and "avatars" not in manifest["settings"]
    assert manifest["settings"]["body_builder"] == cache.builder_version()
    names = sorted(e["avatar"] for e in manifest["records"])
    for entry in manifest["records"]:
        # The default keypoint conventions are evaluated on the Anny body's own landmarks.
        assert {"h36m17", "coco17"} <= set(entry["keypoint_conventions"])
        record = np.load(out / entry["file"], allow_pickle=False)
        coco = record["joints3d_world__coco17"]
        nose, l_ear = coco[:, 0], coco[:, 3]
        assert 0.05 < np.median(np.linalg.norm(nose - l_ear, axis=-1)) < 0.15
        body = AnnyBody(cache_dir / f"{entry['avatar']}.npz")
        assert entry["body"]["sex"] == body.spec["sex"]
        assert abs(entry["body"]["stature"] - body.height) < 1e-3
    assert len(names) == 2 and len(set(names)) == 2 and all(n.startswith("anny-") for n in names)
    assert len(list(cache_dir.glob("anny-*.npz"))) == 3 + 2  # the pool was built beside
    for entry in manifest["records"]:
        folder = out / entry["images"]["dir"]
        mask = np.asarray(Image.open(folder / entry["images"]["mask"].format(camera=0, frame=0)))
        assert 0.002 < mask.mean() < 0.5  # a person, not nothing and not everything
    # Resume: the same bodies are drawn, nothing is redone.
    again = run_child(*command)
    assert "1 already finished" in again.stdout
    # A corrupt body in the cache: one line naming the file, no traceback.
    victim = cache_dir / f"{names[0]}.npz"
    victim.write_bytes(victim.read_bytes()[:-100])
    result = subprocess.run([sys.executable, *map(str, command), "--no-resume"], cwd=REPO,
                            capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=600)
    assert "Traceback" not in result.stderr + result.stdout
    assert f"{victim}: corrupt body file" in result.stdout + result.stderr


def test_missing_anny_is_one_line_pointing_to_capsule_bodies(monkeypatch, tmp_path, capsys):
    import importlib.metadata

    from synth.render import main

    real_version = importlib.metadata.version

    def version(name):
        if name == "anny":
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)

    assert main([str(tmp_path), "--out", str(tmp_path / "out"), "--bodies", "anny",
                 "--avatars", "ava"]) == 2
    assert "use it with --bodies capsule" in capsys.readouterr().err
    monkeypatch.setattr(importlib.metadata, "version", version)
    assert main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install anny" in err[0] and "--bodies capsule" in err[0]
    assert not (tmp_path / "out").exists()


def test_reading_and_skinning_bodies_never_loads_pytorch_or_warp(body_cache):
    """Rendering and training processes read bodies: PyTorch/Warp must stay out of them."""
    body = sorted(body_cache.glob("anny-*.npz"))[0]
    result = run_child("-c", "import sys, synth.render, synth.bodies.pool as p\n"
                       "from synth.bodies.body import AnnyBody\n"
                       f"b = AnnyBody({str(body)!r}); b.mesh(b.rest_positions()).bound()\n"
                       "print(sorted(m for m in ('torch', 'warp', 'anny', 'tensorflow')"
                       " if m in sys.modules))")
    assert result.stdout.strip() == "[]"


def test_humaneva_thorax_and_head_sit_by_the_shoulders_on_anny_bodies(bodies, hdm05_dir):
    """HumanEva-I's thorax lies 19 mm above and 35 mm in front of the shoulder joints' mean
    and its head 317 mm from the thorax (Train/, `posecontract.conventions`). Anny's neck
    base (neck01) sits about 90 mm above its shoulder joints, so the old neck-base-based
    thorax came out over 100 mm above them and the trunk 596 mm (HumanEva-I: 480)."""
    from synth.keypoints import ConventionEvaluator, pelvis_frame
    from posecontract.layouts import HUMANEVA_15 as L
    motion = load_motion(hdm05_dir / f"{CLIP}.amc")
    retargeter = Retargeter(motion, canonical_indices(motion))
    for body in bodies:
        lm = body.landmarks()
        np.testing.assert_allclose(lm["mid_shoulder"],
                                   0.5 * (lm["l_shoulder_centre"] + lm["r_shoulder_centre"]))
        p = ConventionEvaluator(retargeter(body)).positions("humaneva15")
        f = pelvis_frame(p, 0, L.index("r_hip"), L.index("l_hip"), L.index("thorax")).mean(0)
        shoulders = 0.5 * (f[L.index("l_shoulder")] + f[L.index("r_shoulder")])
        scale = 1.75 / body.height
        above, ahead = (f[L.index("thorax")] - shoulders)[[2, 1]] * scale
        assert abs(above - 0.019) < 0.015 and abs(ahead - 0.035) < 0.03, (body.name, above, ahead)
        head = np.linalg.norm(p[:, L.index("head")] - p[:, L.index("thorax")], axis=-1) * scale
        assert abs(head.mean() - 0.317) < 0.015 and head.std() < 0.004, body.name
