"""BVH files as real users have them: the right values of ../shared/cases/real_inputs.

Each folder there stands for a kind of input (its README is the table of right values):
position channels on a joint below a still root (01), Blender's Z-up armatures (02, 03), a
T-pose first frame (05), several rigs in one folder (06), joint names with spaces (07).
Heights are metres above the lowest foot point (ankles and toes) over the clip, world Z up.
"""
import json
import pathlib
import shutil

import numpy as np
import pytest

from conftest import shared_dir
from synth import bvh, continuity, joint_maps, mocap_io, render
from synth import dataset as ds
from synth.avatars import get_avatars
from synth.kinematics import motion_positions
from synth.motion import MocapError
from synth.retarget import Retargeter

CASES = shared_dir() / "cases" / "real_inputs"
BANDAI = CASES / "01_bandai_hips_position_channels"
MAKEHUMAN = CASES / "02_blender_zup_makehuman"
ZUP_CMU = CASES / "03_blender_zup_cmu_0101"
TPOSE = CASES / "05_cgspeed_tpose_frame0"
TWO_RIGS = CASES / "06_two_custom_rigs_one_folder"
BIPED = CASES / "07_biped_joint_names_with_spaces"


@pytest.fixture(scope="module", autouse=True)
def _cases_present():
    if not CASES.is_dir():
        pytest.fail(f"real input cases not found at {CASES}; set VP3D_SHARED_DIR")


def _heights(motion, joint_map=None):
    """(T, J) joint heights above the lowest ankle or toe over the clip, (T, J, 3) positions."""
    joint_map = joint_maps.get_joint_map(joint_map or motion.rig)
    positions = motion_positions(motion)
    feet = joint_maps.joint_indices(motion.skeleton, joint_map,
                                    ("l_ankle", "r_ankle", "l_toe", "r_toe"))
    return positions[..., 2] - positions[:, feet, 2].min(), positions


def _render(mocap: pathlib.Path, out: pathlib.Path, **settings) -> dict:
    settings = {"avatars": ("ava",), "num_cameras": 1, **settings}
    return render.render_dataset(mocap, out, render.RenderSettings(**settings), progress=False)


def _only_record(out: pathlib.Path, pattern: str = "*.npz") -> dict:
    (path,) = (out / "clips").glob(pattern)
    return ds.load_record(path)


# 01: the path on Hips' position channels under a still joint_Root.

def test_hips_position_channels_carry_the_path():
    bandai_map = joint_maps.load_joint_map(BANDAI / "bandai.json")
    motion = mocap_io.load_motion(BANDAI / "bandai_walk_normal_first40.bvh",
                                  joint_map=bandai_map)
    assert motion.rig == "bandai_namco" and motion.num_frames == 40
    assert motion.source["dropped_root_joints"] == "joint_Root"
    assert motion.skeleton.names[0] == "Hips"
    heights, positions = _heights(motion, bandai_map)
    hip = motion.skeleton.index("Hips")
    travel = np.linalg.norm(positions[-1, hip, :2] - positions[0, hip, :2])
    assert travel == pytest.approx(1.502, abs=0.005)
    assert heights[:, hip].min() == pytest.approx(0.839, abs=0.004)
    assert heights[:, hip].max() == pytest.approx(0.883, abs=0.004)


def test_hips_path_reaches_the_avatar_record(tmp_path):
    mocap = tmp_path / "mocap"
    mocap.mkdir()
    shutil.copy(BANDAI / "bandai_walk_normal_first40.bvh", mocap)
    summary = _render(mocap, tmp_path / "out", joint_maps=(str(BANDAI / "bandai.json"),))
    assert summary["done_clips"] == 1 and summary["failed"] == 0
    record = _only_record(tmp_path / "out")
    hip = record["joints3d_world"][:, 0]
    assert np.linalg.norm(hip[-1, :2] - hip[0, :2]) == pytest.approx(1.358, abs=0.005)
    motion = mocap_io.load_motion(BANDAI / "bandai_walk_normal_first40.bvh",
                                  joint_map=BANDAI / "bandai.json")
    indices = render.canonical_indices(motion, [str(BANDAI / "bandai.json")])
    clip = Retargeter(motion, indices)(get_avatars(["ava"])[0])
    assert clip.root_scale == pytest.approx(0.904, abs=0.002)


# Degenerate segments: Bandai's head top is an End Site at OFFSET 0 0 0.

def test_zero_length_head_top_takes_the_avatar_head_length():
    motion = mocap_io.load_motion(BANDAI / "bandai_walk_normal_first40.bvh",
                                  joint_map=BANDAI / "bandai.json")
    assert np.all(motion.skeleton.offsets[motion.skeleton.index("Head_end")] == 0)
    indices = render.canonical_indices(motion, [str(BANDAI / "bandai.json")])
    retargeter = Retargeter(motion, indices)
    assert retargeter.extended_ends == ["Head_end"]
    for avatar in get_avatars(["ava", "eli"]):
        clip = retargeter(avatar)
        head_top, head = clip.canonical_positions[:, 10], clip.canonical_positions[:, 9]
        np.testing.assert_allclose(np.linalg.norm(head_top - head, axis=-1),
                                   avatar.segment_length("neck_nose", "head"), rtol=1e-6)
        # Along the neck -> head bone, i.e. upward on a walker.
        assert np.all(head_top[:, 2] > head[:, 2] + 0.5 * avatar.segment_length(
            "neck_nose", "head"))


def test_zero_length_segment_that_is_not_an_end_is_refused(tmp_path):
    spec = json.loads((BANDAI / "bandai.json").read_text())
    spec["name"] = "head_on_neck"
    spec["joints"]["head"] = spec["joints"]["neck_nose"]  # two keypoints on one joint
    path = tmp_path / "head_on_neck.json"
    path.write_text(json.dumps(spec))
    motion = mocap_io.load_motion(BANDAI / "bandai_walk_normal_first40.bvh", joint_map=path)
    with pytest.raises(MocapError, match=r"neck_nose -> head segment \(Head -> Head\) has zero"):
        Retargeter(motion, render.canonical_indices(motion, [str(path)]))


# 02, 03: Blender writes Z-up armatures without converting axes.

def test_blender_zup_makehuman_rest_stands_upright():
    motion = mocap_io.load_motion(MAKEHUMAN / "makehuman_blender_rest_zup.bvh",
                                  joint_map=MAKEHUMAN / "makehuman_blender.json")
    assert motion.source["up_axis"] == "z"
    heights, _ = _heights(motion, MAKEHUMAN / "makehuman_blender.json")
    hip, head = motion.skeleton.index("hip"), motion.skeleton.index("head")
    np.testing.assert_allclose(heights[:, hip], 0.837, atol=0.003)
    np.testing.assert_allclose(heights[:, head] - heights[:, hip], 0.653, atol=0.003)


def test_forcing_the_wrong_up_axis_lays_the_figure_down():
    motion = mocap_io.load_motion(MAKEHUMAN / "makehuman_blender_rest_zup.bvh",
                                  joint_map=MAKEHUMAN / "makehuman_blender.json", bvh_up="y")
    heights, _ = _heights(motion, MAKEHUMAN / "makehuman_blender.json")
    assert np.ptp(heights[0]) < 0.3  # lying on the floor, as before the fix
    with pytest.raises(ValueError, match="up axis"):
        bvh.read_bvh(MAKEHUMAN / "makehuman_blender_rest_zup.bvh", up="x")


def test_same_clip_written_yup_and_zup_gives_identical_records(tmp_path):
    for axis in ("yup", "zup"):  # the same file name, so the same clip key and cameras
        (tmp_path / axis / "mocap").mkdir(parents=True)
        shutil.copy(ZUP_CMU / axis / f"01_01_{axis}.bvh", tmp_path / axis / "mocap" / "c.bvh")
        _render(tmp_path / axis / "mocap", tmp_path / axis / "out", num_cameras=2)
    yup, zup = _only_record(tmp_path / "yup" / "out"), _only_record(tmp_path / "zup" / "out")
    for key in ("joints3d_world", "joints3d_camera", "keypoints2d", "rotations_local_quat",
                "root_orientation_camera", "camera_rotation", "bone_offsets_full"):
        np.testing.assert_allclose(yup[key], zup[key], atol=2e-4, err_msg=key)
    motions = {axis: mocap_io.load_motion(ZUP_CMU / axis / f"01_01_{axis}.bvh")
               for axis in ("yup", "zup")}
    assert motions["yup"].source["up_axis"] == "y" and motions["zup"].source["up_axis"] == "z"
    heights, _ = _heights(motions["zup"])
    hip, head = (motions["zup"].skeleton.index(n) for n in ("Hips", "Head"))
    assert np.mean(heights[:, head] - heights[:, hip]) == pytest.approx(0.406, abs=0.003)
    assert heights[:, hip].min() == pytest.approx(0.756, abs=0.003)
    assert heights[:, hip].max() == pytest.approx(1.194, abs=0.003)
    assert np.mean(heights[:, head]) == pytest.approx(1.44, abs=0.03)


def _wrap_in_root(source: pathlib.Path, target: pathlib.Path, root: str) -> None:
    """Copy of a BVH file with its ROOT moved under a new root joint (`root`: its lines)."""
    lines = source.read_text().splitlines()
    motion = lines.index("MOTION")
    body = ["\t" + line.replace("ROOT ", "JOINT ", 1) for line in lines[1:motion]]
    target.write_text("\n".join(["HIERARCHY"] + root.splitlines() + body + ["}"]
                                + lines[motion:]) + "\n")


def test_zero_channel_armature_root_is_dropped(tmp_path):
    """Blender's `ROOT Armature` with `CHANNELS 0` above the Hips that carry the path."""
    source = ZUP_CMU / "zup" / "01_01_zup.bvh"
    _wrap_in_root(source, tmp_path / "armature.bvh",
                  "ROOT Armature\n{\n\tOFFSET 0 0 0\n\tCHANNELS 0")
    wrapped = mocap_io.load_motion(tmp_path / "armature.bvh")
    assert wrapped.source["dropped_root_joints"] == "Armature" and wrapped.rig == "cmu_bvh"
    np.testing.assert_allclose(motion_positions(wrapped),
                               motion_positions(mocap_io.load_motion(source)), atol=1e-9)


def test_two_moving_joints_are_refused(tmp_path):
    """Position channels that move two joints (a stretching bone) have no Motion meaning."""
    lines = (BANDAI / "bandai_walk_normal_first40.bvh").read_text().splitlines()
    motion = lines.index("MOTION")
    rows = [row.split() for row in lines[motion + 3:]]
    for k, row in enumerate(rows):  # Spine (the third joint, columns 12-14) slides along x
        row[12] = str(float(row[12]) + k)
    path = tmp_path / "stretch.bvh"
    path.write_text("\n".join(lines[:motion + 3] + [" ".join(r) for r in rows]) + "\n")
    with pytest.raises(MocapError, match="'Spine' moves through its position channels "
                                         "below 'Hips', which also carries"):
        mocap_io.load_motion(path, joint_map=BANDAI / "bandai.json")


def test_root_motion_on_the_root_and_the_hips_below_it(tmp_path):
    """Game rigs move a ground-projected root and the hips relative to it: both moving
    joints fold into one path, the same world motion as the hips alone."""
    lines = (BANDAI / "bandai_walk_normal_first40.bvh").read_text().splitlines()
    motion = lines.index("MOTION")
    rows = [row.split() for row in lines[motion + 3:]]
    for k, row in enumerate(rows):  # joint_Root moves +2k cm in x, Hips (columns 6-8) back
        row[0] = str(float(row[0]) + 2 * k)
        row[6] = str(float(row[6]) - 2 * k)
    path = tmp_path / "root_motion.bvh"
    path.write_text("\n".join(lines[:motion + 3] + [" ".join(r) for r in rows]) + "\n")
    moved = mocap_io.load_motion(path, joint_map=BANDAI / "bandai.json")
    plain = mocap_io.load_motion(BANDAI / "bandai_walk_normal_first40.bvh",
                                 joint_map=BANDAI / "bandai.json")
    assert moved.source["dropped_root_joints"] == "joint_Root"
    np.testing.assert_allclose(motion_positions(moved), motion_positions(plain), atol=1e-6)


def test_up_axis_without_a_joint_map(tmp_path):
    """A rig no map fits: the axis along which the body is taller than deep is up."""
    for axis, expected in (("yup", "y"), ("zup", "z")):
        text = (ZUP_CMU / axis / f"01_01_{axis}.bvh").read_text()
        path = tmp_path / f"{axis}.bvh"
        path.write_text(text.replace("Head", "Kopf"))  # cmu_bvh no longer fits
        motion = bvh.read_bvh(path)
        assert motion.rig == "" and motion.source["up_axis"] == expected


def test_motion_stored_in_other_axes_than_its_rest_pose(tmp_path):
    """A Y-up rest skeleton whose root channels carry the motion in Z-up axes (an exporter
    that converts the root's keys but not the offsets): the frames outvote the rest pose."""
    from scipy.spatial.transform import Rotation

    lines = (ZUP_CMU / "yup" / "01_01_yup.bvh").read_text().splitlines()
    first = lines.index("MOTION") + 3
    rows = np.array([line.split() for line in lines[first:]], dtype=np.float64)
    to_z_up = Rotation.from_euler("x", 90, degrees=True)
    rows[:, :3] = to_z_up.apply(rows[:, :3])  # root: Zrotation Yrotation Xrotation
    rows[:, 3:6] = (to_z_up * Rotation.from_euler("ZYX", rows[:, 3:6], degrees=True)
                    ).as_euler("ZYX", degrees=True)
    path = tmp_path / "root_keys_zup.bvh"
    path.write_text("\n".join(lines[:first] + [" ".join(f"{v:.6f}" for v in row)
                                                for row in rows]) + "\n")
    motion = mocap_io.load_motion(path)
    assert motion.source["up_axis"] == "z"
    plain = mocap_io.load_motion(ZUP_CMU / "zup" / "01_01_zup.bvh")
    np.testing.assert_allclose(motion_positions(motion), motion_positions(plain), atol=1e-4)


# 05: the cgspeed conversion's T-pose first frame.

def test_tpose_first_frame_is_dropped():
    raw = mocap_io.load_motion(TPOSE / "01_01.bvh", drop_breaks=False)
    motion = mocap_io.load_motion(TPOSE / "01_01.bvh")
    assert motion.source["dropped_leading_frames"] == "1"
    assert motion.num_frames == raw.num_frames - 1
    np.testing.assert_array_equal(motion.local_rotations, raw.local_rotations[1:])
    raw_speed = np.mean(continuity.frame_steps(motion_positions(raw))[:1]) * raw.fps
    assert raw_speed > 20  # the 154-degree jump
    positions = motion_positions(motion)
    speed = np.linalg.norm(positions[1] - positions[0], axis=-1).mean() * motion.fps
    assert speed < 1.0  # about 0.4 m/s: the first frame continues the motion
    steps = continuity.frame_steps(positions)
    assert steps[0] <= np.percentile(steps, 99)
    heights, _ = _heights(motion)
    r_wrist = motion.skeleton.index("RightHand")
    assert heights[0, r_wrist] == pytest.approx(0.79, abs=0.02)


@pytest.mark.parametrize("step, repeats", [(1, 3), (4, 1), (4, 2)])
def test_tpose_frames_are_dropped_at_any_frame_rate(tmp_path, step, repeats):
    """The same clip at 30 fps (every 4th frame), and with the T-pose held for a few frames."""
    lines = (TPOSE / "01_01.bvh").read_text().splitlines()
    first = lines.index("MOTION") + 3
    rows = [lines[first]] * repeats + lines[first + step::step]
    header = lines[:first - 2] + [f"Frames: {len(rows)}", f"Frame Time: {step / 120:.6f}"]
    path = tmp_path / "tpose.bvh"
    path.write_text("\n".join(header + rows) + "\n")
    motion = mocap_io.load_motion(path)
    assert motion.source["dropped_leading_frames"] == str(repeats)
    assert motion.num_frames == len(rows) - repeats


def test_demo_bvh_clips_do_not_start_with_a_tpose(bvh_dir):
    for name in ("01_01.bvh", "01_03.bvh"):
        motion = mocap_io.load_motion(bvh_dir / name)
        assert motion.source["dropped_leading_frames"] == "1", name
        steps = continuity.frame_steps(motion_positions(motion))
        assert steps[0] < 3 * np.percentile(steps, 99), name


def test_real_clips_without_a_break_keep_every_frame(hdm05_dir, cmu_dir):
    """Fast but continuous motion (a kick, a hop, a jog) is not a break."""
    for path in (hdm05_dir / "HDM_mm_kickLFront1Reps_023_120.amc",
                 hdm05_dir / "HDM_bd_hopBothLegs1hops_001_120.amc",
                 cmu_dir / "49" / "49_22.amc", cmu_dir / "05" / "05_01.amc"):
        assert "dropped_leading_frames" not in mocap_io.load_motion(path).source, path.name


def test_render_summary_reports_dropped_tpose_frames(tmp_path, capsys):
    mocap = tmp_path / "mocap"
    mocap.mkdir()
    shutil.copy(TPOSE / "01_01.bvh", mocap)
    assert render.main([str(mocap), "--out", str(tmp_path / "out"), "--avatars", "ava",
                        "--cameras", "1", "--quiet"]) == 0
    assert "1 clips started with frames that break continuity (a T-pose), dropped: " \
           "cmu_01_01" in capsys.readouterr().out
    (entry,) = ds.read_manifest(tmp_path / "out")["records"]
    assert entry["source_notes"]["dropped_leading_frames"] == 1


# 06: several rigs in one folder; a later run never drops a finished clip.

def _two_rigs(tmp_path):
    mocap = tmp_path / "mocap"
    shutil.copytree(TWO_RIGS / "mocap", mocap)
    return mocap, str(TWO_RIGS / "mixamo.json"), str(TWO_RIGS / "mocapbank.json")


def test_one_run_with_a_joint_map_per_rig(tmp_path, capsys):
    mocap, mixamo, mocapbank = _two_rigs(tmp_path)
    out = tmp_path / "out"
    assert render.main([str(mocap), "--out", str(out), "--avatars", "ava", "--cameras", "1",
                        "--joint-map", mixamo, "--joint-map", mocapbank, "--quiet"]) == 0
    assert "2 of 2 clips done" in capsys.readouterr().out
    manifest = ds.read_manifest(out)
    assert sorted(e["clip_key"] for e in manifest["records"]) == [
        "bvh_test_freebvh", "bvh_test_mocapbank"]
    assert manifest["settings"]["joint_maps"] == [mixamo, mocapbank]
    assert json.loads((out / ds.FAILURES).read_text()) == []


def test_broken_joint_map_is_one_error_before_any_clip(tmp_path, capsys):
    mocap, mixamo, _ = _two_rigs(tmp_path)
    (tmp_path / "broken.json").write_text('{"name": "x", "joints": {"hip": "Hips"}}')
    assert render.main([str(mocap), "--out", str(tmp_path / "out"), "--joint-map", mixamo,
                        "--joint-map", str(tmp_path / "broken.json"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'broken.json'}: joint map 'x': missing keys")
    assert "\n" not in err and not (tmp_path / "out").exists()


def test_later_run_keeps_a_finished_clip_it_cannot_read(tmp_path):
    mocap, mixamo, mocapbank = _two_rigs(tmp_path)
    out = tmp_path / "out"
    first = _render(mocap, out, joint_maps=(mixamo,))
    assert first["done_clips"] == 1 and first["failed"] == 1
    second = _render(mocap, out, joint_maps=(mocapbank,))
    assert second["kept_clips"] == 1 and second["done_clips"] == 1 and second["failed"] == 0
    assert second["records"] == 2
    manifest = ds.read_manifest(out)
    assert sorted(e["clip_key"] for e in manifest["records"]) == [
        "bvh_test_freebvh", "bvh_test_mocapbank"]
    assert json.loads((out / ds.FAILURES).read_text()) == []
    assert ds.verify_dataset(out) == []


def test_clip_that_fits_none_of_several_maps_names_them(tmp_path):
    _, mixamo, mocapbank = _two_rigs(tmp_path)
    with pytest.raises(MocapError, match=r"fits none of the joint maps given \(mixamo lacks"):
        mocap_io.load_motion(BIPED / "biped_names_01_01.bvh", joint_map=[mixamo, mocapbank])


# 07: 3ds Max Biped names with spaces.

def test_joint_names_with_spaces_are_read_whole():
    motion = mocap_io.load_motion(BIPED / "biped_names_01_01.bvh",
                                  joint_map=BIPED / "biped.json")
    assert motion.rig == "max_biped"
    assert {"Bip01 Pelvis", "Bip01 L Thigh", "Bip01 R Calf", "Bip01 Head_end"} <= set(
        motion.skeleton.names)
    # The same CMU 01_01 frames as the plain Y-up copy: the same motion, joint for joint.
    plain = mocap_io.load_motion(ZUP_CMU / "yup" / "01_01_yup.bvh")
    np.testing.assert_allclose(motion_positions(motion), motion_positions(plain), atol=1e-9)
