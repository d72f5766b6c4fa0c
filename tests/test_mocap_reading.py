"""Real HDM05 / CMU clips come out as plausible people in the Z-up metre world."""
import json
import shutil

import numpy as np
import pytest

from synth import acclaim, bvh, joint_maps, mocap_io
from synth.kinematics import motion_positions
from posecontract.layouts import H36M_17

HDM05_CLIPS = ("HDM_bd_sneak2StepsLStart_001_120.amc", "HDM_mm_sneak2StepsLStart_011_120.amc")
FOOT_KEYS = ("l_ankle", "r_ankle", "l_toe", "r_toe")


@pytest.fixture(scope="module")
def hdm05_walks(hdm05_dir):
    return [mocap_io.load_motion(hdm05_dir / name) for name in HDM05_CLIPS]


@pytest.fixture(scope="module")
def cmu_walk(cmu_dir):
    return mocap_io.load_motion(cmu_dir / "02" / "02_01.amc")


@pytest.fixture(scope="module")
def bvh_clip(bvh_dir):
    return mocap_io.load_motion(bvh_dir / "01_01.bvh")


@pytest.fixture(scope="module")
def walks(hdm05_walks, cmu_walk):
    return hdm05_walks + [cmu_walk]


def _joints(motion, keys=H36M_17.names + ("l_toe", "r_toe"), joint_map=None):
    """{key: (T, 3) world positions} for layout keys through the motion's joint map."""
    joint_map = joint_map or joint_maps.get_joint_map(motion.rig)
    positions = motion_positions(motion)
    index = joint_maps.joint_indices(motion.skeleton, joint_map, keys)
    return {key: positions[:, i] for key, i in zip(keys, index)}


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _facing(joints):
    """(T, 3) horizontal facing direction from the hips: forward = left x up."""
    return _unit(np.cross(joints["l_hip"] - joints["r_hip"], [0.0, 0.0, 1.0]))


def test_metadata_and_frame_rates(hdm05_walks, cmu_walk, bvh_clip):
    bd = hdm05_walks[0]
    assert bd.source["dataset"] == "hdm05" and bd.source["actor"] == "bd"
    assert bd.source["motion_class"] == "sneak2StepsLStart"
    assert bd.source["clip_id"] == "HDM_bd_sneak2StepsLStart_001_120"
    assert bd.fps == 120.0 and bd.rig == "acclaim"
    assert cmu_walk.source["dataset"] == "cmu" and cmu_walk.source["actor"] == "02"
    assert cmu_walk.source["motion_class"] == cmu_walk.source["description"] == "walk"
    assert cmu_walk.fps == 120.0
    assert bvh_clip.source["dataset"] == "cmu" and bvh_clip.source["actor"] == "01"
    assert bvh_clip.fps == 120.0 and bvh_clip.rig == "cmu_bvh"
    assert set(bvh_clip.source) >= {"path", "dataset", "actor", "motion_class", "clip_id",
                                    "description"}


def test_acclaim_skeleton_conventions(hdm05_dir):
    asf = acclaim.read_asf(hdm05_dir / "HDM_bd.asf")
    skeleton = asf.skeleton
    assert skeleton.names[0] == "root"
    assert "head_end" in skeleton.names and "ltoes_end" in skeleton.names
    # A bone hanging off the root starts at the root; a child starts at its parent's tip.
    np.testing.assert_allclose(skeleton.offsets[skeleton.index("lhipjoint")], 0.0)
    femur = asf.bones["lfemur"]
    np.testing.assert_allclose(
        np.linalg.norm(skeleton.offsets[skeleton.index("ltibia")]),
        femur.length * 0.0254 / 0.45)


@pytest.mark.parametrize("which", ["hdm05", "cmu", "bvh"])
def test_rest_skeleton_is_an_upright_person(which, hdm05_walks, cmu_walk, bvh_clip):
    motion = {"hdm05": hdm05_walks[0], "cmu": cmu_walk, "bvh": bvh_clip}[which]
    rest = motion.skeleton.rest_positions()
    height = np.ptp(rest[:, 2])
    assert 1.4 < height < 1.95, height
    joint_map = joint_maps.get_joint_map(motion.rig)
    idx = dict(zip(H36M_17.names + ("l_toe", "r_toe"), joint_maps.joint_indices(
        motion.skeleton, joint_map, H36M_17.names + ("l_toe", "r_toe"))))
    assert rest[idx["head"], 2] > rest[idx["thorax"], 2] > rest[idx["hip"], 2] \
        > rest[idx["l_knee"], 2] > rest[idx["l_ankle"], 2]
    # Toes point forward, and the left hip is on the left of that forward direction.
    forward = (rest[idx["l_toe"]] - rest[idx["l_ankle"]]) * [1.0, 1.0, 0.0]
    left = _unit(np.cross([0.0, 0.0, 1.0], forward))
    assert np.dot(rest[idx["l_hip"]] - rest[idx["r_hip"]], left) > 0.1
    assert np.dot(rest[idx["l_shoulder"]] - rest[idx["r_shoulder"]], left) > 0.2


def test_walks_head_above_hips_and_feet_on_floor(walks):
    for motion in walks:
        joints = _joints(motion)
        assert np.all(joints["head"][:, 2] > joints["hip"][:, 2] + 0.3)
        positions = motion_positions(motion)
        feet = np.stack([joints[k][:, 2] for k in FOOT_KEYS], axis=1)
        lowest = positions[..., 2].min()
        assert -0.05 < lowest < 0.1, (motion.clip_name(), lowest)
        # Some foot joint is always on the floor (within a few cm of the clip's lowest point).
        assert np.median(feet.min(axis=1) - lowest) < 0.06, motion.clip_name()
        assert np.all(feet.min(axis=1) - lowest < 0.12), motion.clip_name()


def test_walks_left_right_and_bending_directions(walks):
    for motion in walks:
        joints = _joints(motion)
        forward = _facing(joints)
        name = motion.clip_name()
        # The person walks the way the hips face, toes point that way too.
        travel = joints["hip"][-1] - joints["hip"][0]
        travel[2] = 0
        assert np.dot(_unit(travel), forward.mean(axis=0)) > 0.7, name
        for side in "lr":
            toes = np.sum((joints[f"{side}_toe"] - joints[f"{side}_ankle"]) * forward, axis=1)
            assert np.mean(toes > 0) > 0.9, name
            # Knees bend backwards, elbows forwards (catches wrong axis/dof composition).
            for top, middle, end, sign in (("hip", "knee", "ankle", -1),
                                           ("shoulder", "elbow", "wrist", 1)):
                a, b, c = (joints[f"{side}_{k}"] for k in (top, middle, end))
                straight = b + _unit(b - a) * np.linalg.norm(c - b, axis=1, keepdims=True)
                assert sign * np.mean(np.sum((c - straight) * forward, axis=1)) > 0.03, name


@pytest.mark.parametrize("which", ["hdm05", "bvh"])
def test_bone_lengths_constant_over_time(which, hdm05_walks, bvh_clip):
    motion = {"hdm05": hdm05_walks[1], "bvh": bvh_clip}[which]
    positions = motion_positions(motion)
    parents = motion.skeleton.parents
    lengths = np.linalg.norm(positions[:, 1:] - positions[:, parents[1:]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(
        np.linalg.norm(motion.skeleton.offsets[1:], axis=-1), lengths.shape), atol=1e-9)


def test_cmu_bvh_compatible_with_cmu_asf(cmu_dir, bvh_clip):
    """cgspeed's BVH of subject 01 keeps the ASF rest pose: bones point the same way, sizes
    agree, and the 17 mapped joints sit at the same places (up to the person's size)."""
    asf = acclaim.read_asf(cmu_dir / "02" / "02.asf").skeleton
    bvh_skeleton = bvh_clip.skeleton
    for bvh_name, asf_name in (("LeftLeg", "ltibia"), ("RightFoot", "rfoot"),
                               ("LeftForeArm", "lradius"), ("RightHand", "rwrist"),
                               ("Head_end", "head_end")):
        a = asf.offsets[asf.index(asf_name)]
        b = bvh_skeleton.offsets[bvh_skeleton.index(bvh_name)]
        assert np.dot(_unit(a), _unit(b)) > np.cos(np.radians(5)), bvh_name
        assert 0.8 < np.linalg.norm(b) / np.linalg.norm(a) < 1.25, bvh_name
    rest = {}
    for name, skeleton in (("acclaim", asf), ("cmu_bvh", bvh_skeleton)):
        positions = skeleton.rest_positions()[joint_maps.joint_indices(
            skeleton, joint_maps.get_joint_map(name))]
        rest[name] = positions / np.ptp(positions[:, 2])
    assert np.max(np.linalg.norm(rest["acclaim"] - rest["cmu_bvh"], axis=1)) < 0.1


def test_boxing_rig_with_json_joint_map(bvh_dir, tmp_path):
    side = {"hip": "Hip", "knee": "Knee", "ankle": "Ankle", "shoulder": "Shoulder",
            "elbow": "Elbow", "wrist": "Wrist", "toe": "Toes"}
    joints = {"hip": "Hips", "spine": "Ab", "thorax": "Neck", "neck_nose": "Head",
              "head": "Head_end"}
    for key, name in side.items():
        joints[f"l_{key}"] = "Left" + name
        joints[f"r_{key}"] = "Right" + name
    map_path = tmp_path / "boxing.json"
    map_path.write_text(json.dumps({"name": "boxing", "joints": joints}))
    motion = mocap_io.load_motion(bvh_dir / "Boxing_Toes.bvh", joint_map=map_path)
    assert motion.rig == "boxing" and motion.fps == 100.0
    assert motion.source["dataset"] == "bvh" and motion.source["actor"] == "Boxing_Toes"
    # Centimetres, detected: a 1.7 m person.
    assert 1.6 < np.ptp(motion.skeleton.rest_positions()[:, 2]) < 1.85
    joints_t = _joints(motion.with_(local_rotations=motion.local_rotations[::50],
                                    root_translation=motion.root_translation[::50]),
                       joint_map=joint_maps.load_joint_map(map_path))
    assert np.all(joints_t["head"][:, 2] > joints_t["hip"][:, 2] + 0.3)
    with pytest.raises(mocap_io.MocapError, match="fits no built-in joint map"):
        mocap_io.load_motion(bvh_dir / "Boxing_Toes.bvh")


def _same_motion(a, b):
    assert a.skeleton.names == b.skeleton.names
    np.testing.assert_array_equal(a.skeleton.offsets, b.skeleton.offsets)
    np.testing.assert_array_equal(a.local_rotations, b.local_rotations)
    np.testing.assert_array_equal(a.root_translation, b.root_translation)
    assert a.fps == b.fps and a.rig == b.rig
    for key in ("dataset", "actor", "motion_class", "clip_id", "description"):
        assert a.source[key] == b.source[key]


def test_crlf_uppercase_latin1_copies_parse_identically(cmu_dir, cmu_walk, tmp_path):
    subject = tmp_path / "cmu" / "02"
    subject.mkdir(parents=True)
    shutil.copy(cmu_dir / "trials.csv", tmp_path / "cmu" / "trials.csv")
    asf_text = (cmu_dir / "02" / "02.asf").read_bytes()
    amc_lines = (cmu_dir / "02" / "02_01.amc").read_bytes().splitlines()
    amc_lines.insert(1, "# caf\xe9 \xfcber \xa9".encode("latin-1"))
    (subject / "02.ASF").write_bytes(asf_text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    (subject / "02_01.AMC").write_bytes(b"\r\n".join(amc_lines) + b"\r\n")
    copy = mocap_io.load_motion(subject / "02_01.AMC")
    _same_motion(copy, cmu_walk)


def test_bvh_copy_with_crlf_and_uppercase_extension(bvh_dir, tmp_path):
    lines = (bvh_dir / "01_01.bvh").read_bytes().splitlines()
    header_end = next(i for i, line in enumerate(lines) if line.startswith(b"Frame Time"))
    lines = [b"Frames: 40" if line.startswith(b"Frames:") else line
             for line in lines[:header_end + 41]]
    (tmp_path / "short.bvh").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "01_01.BVH").write_bytes(b"\r\n".join(lines) + b"\r\n")
    short = bvh.read_bvh(tmp_path / "short.bvh")
    copy = mocap_io.load_motion(tmp_path / "01_01.BVH", drop_breaks=False)  # frame 0 too
    assert copy.num_frames == 40 and copy.source["dataset"] == "cmu"
    np.testing.assert_array_equal(copy.local_rotations, short.local_rotations)
    np.testing.assert_array_equal(copy.root_translation, short.root_translation)


def test_find_clips(hdm05_dir, cmu_dir, tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/b/z.AMC", "a/x.bvh", "y.Bvh", "notes.txt", "a/skel.asf"):
        (tmp_path / name).write_text("")
    assert [p.relative_to(tmp_path).as_posix() for p in mocap_io.find_clips(tmp_path)] == [
        "a/b/z.AMC", "a/x.bvh", "y.Bvh"]
    clips = mocap_io.find_clips(cmu_dir)
    assert len(clips) == 176 and clips == sorted(clips)
    assert len(mocap_io.find_clips(hdm05_dir)) == 288


def test_acclaim_parsing_is_fast(hdm05_dir):
    import time
    asf = acclaim.read_asf(hdm05_dir / "HDM_bk.asf")
    clip = next(p for p in sorted(hdm05_dir.glob("HDM_bk_*.amc")) if p.stat().st_size > 600_000)
    start = time.perf_counter()
    motion = acclaim.read_amc(clip, asf)
    elapsed = time.perf_counter() - start
    assert motion.num_frames >= 600
    assert elapsed < 1.0 * motion.num_frames / 1000


def test_cmu_labels_found_given_or_absent(cmu_dir, tmp_path):
    (tmp_path / "09.asf").write_bytes((cmu_dir / "09" / "09.asf").read_bytes())
    amc = (cmu_dir / "09" / "09_01.amc").read_text(encoding="latin-1")
    (tmp_path / "09_01.amc").write_text(amc[:amc.index("\n21\n") + 1], encoding="latin-1")
    clip = tmp_path / "09_01.amc"
    bare = mocap_io.load_motion(clip)
    assert bare.source["description"] == "" and bare.fps == 120.0 and bare.num_frames == 20
    given = mocap_io.load_motion(clip, labels={("09", "1"): {"description": "jog", "fps": "60"}})
    assert given.source["motion_class"] == "run" and given.fps == 60.0  # coarse class of "jog"
    assert given.source["description"] == "jog"
    from_csv = mocap_io.load_motion(clip, labels=cmu_dir / "trials.csv")
    assert from_csv.source["description"] == "run" and from_csv.source["actor"] == "09"


def test_cmu_descriptions_map_to_coarse_classes():
    from synth.mocap_io import cmu_motion_class

    assert cmu_motion_class("walk, veer left") == "walk"
    assert cmu_motion_class("Run Jump Over") == "run"
    assert cmu_motion_class("run/jog, sudden stop") == "run"
    assert cmu_motion_class("forward jump") == "jump"
    assert cmu_motion_class("dance - lean forward, bring back leg forward") == "dance"
    assert cmu_motion_class("Yokogeri") == "martial_arts"
    assert cmu_motion_class("") == ""


def test_fast_and_line_by_line_amc_parsing_agree(hdm05_dir, cmu_dir):
    from synth import acclaim
    from synth.motion import read_text_lines

    for asf_path, amc_path in ((hdm05_dir / "HDM_bd.asf",
                                hdm05_dir / "HDM_bd_sneak2StepsLStart_001_120.amc"),
                               (cmu_dir / "02" / "02.asf", cmu_dir / "02" / "02_01.amc")):
        asf = acclaim.read_asf(asf_path)
        counts = {"root": len(asf.root_order)}
        counts.update({b.name: len(b.dofs) for b in asf.bones.values() if b.dofs})
        lines = read_text_lines(amc_path)
        fast = acclaim._regular_amc_values(lines, counts)
        assert fast is not None, "a regular real file should take the fast path"
        keywords, frames, numbers = acclaim._frames(amc_path, lines)
        assert fast[0] == keywords
        for bone, count in counts.items():
            np.testing.assert_array_equal(
                fast[1][bone], acclaim._bone_values(amc_path, frames, numbers, bone, count))


def test_blank_leading_frames_are_trimmed(cmu_dir):
    """CMU 09_10 starts with four all-zero frames (a rest pose at the origin)."""
    motion = mocap_io.load_motion(cmu_dir / "09" / "09_10.amc")
    assert motion.source["trimmed_frames"] == "4"
    text = (cmu_dir / "09" / "09_10.amc").read_text(encoding="latin-1")
    assert motion.num_frames == sum(line.strip().isdigit() for line in text.splitlines()) - 4
    assert np.linalg.norm(motion.root_translation[0]) > 0.1
