"""The readers' rotation, unit and axis conventions on tiny hand-made files with known answers."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from synth import acclaim, bvh
from synth.kinematics import motion_positions

# `length 0.0254` makes one ASF unit one metre.
ASF_TEMPLATE = """:version 1.10
:name tiny
:units
  mass 1.0
  length {length}
  angle {angle}
:root
   order {order}
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name up
     direction 0 1 0
     length 1
     axis {axis}
    dof {dofs}
  end
  begin
     id 2
     name side
     direction 1 0 0
     length 1
     axis 0 0 0 XYZ
  end
:hierarchy
  begin
    root up
    up side
  end
"""


def _write_acclaim(tmp_path, frames, length="0.0254", angle="deg", order="TX TY TZ RX RY RZ",
                   axis="0 0 0 XYZ", dofs="rx ry rz", amc_header=":FULLY-SPECIFIED\n:DEGREES\n"):
    asf = tmp_path / "tiny.asf"
    asf.write_text(ASF_TEMPLATE.format(length=length, angle=angle, order=order, axis=axis,
                                       dofs=dofs))
    lines = [amc_header.rstrip("\n")]
    for number, (root, up) in enumerate(frames, 1):
        lines += [str(number), "root " + root, "up " + up]
    amc = tmp_path / "tiny.amc"
    amc.write_text("\n".join(lines) + "\n")
    return asf, amc


def _tip(motion, frame=0):
    """World position of the 'side' joint (end of bone 'up') and of 'side_end'."""
    positions = motion_positions(motion)[frame]
    return (positions[motion.skeleton.index("side")],
            positions[motion.skeleton.index("side_end")])


def test_skeleton_layout_joints_at_bone_starts(tmp_path):
    asf, _ = _write_acclaim(tmp_path, [])
    skeleton = acclaim.read_asf(asf).skeleton
    assert skeleton.names == ["root", "up", "side", "side_end"]
    assert skeleton.parents.tolist() == [-1, 0, 1, 2]
    # Y-up source -> Z-up world: 'up' points along +z, 'side' stays +x.
    np.testing.assert_allclose(skeleton.offsets, [[0, 0, 0], [0, 0, 0], [0, 0, 1], [1, 0, 0]],
                               atol=1e-12)


@pytest.mark.parametrize("dofs,values,expected_tip", [
    # M = Rz Rx (rx applied first): y -> z -> z; source (0, 0, 1) is world (0, -1, 0).
    ("rx ry rz", "90 0 90", (0, -1, 0)),
    # M = Rx Rz (rz applied first): y -> -x -> -x.
    ("rz ry rx", "90 0 90", (-1, 0, 0)),
    ("rz", "90", (-1, 0, 0)),
])
def test_dofs_compose_first_listed_first(tmp_path, dofs, values, expected_tip):
    _, amc = _write_acclaim(tmp_path, [("0 0 0 0 0 0", values)], dofs=dofs)
    motion = acclaim.read_amc(amc, tmp_path / "tiny.asf")
    side, _ = _tip(motion)
    np.testing.assert_allclose(side, expected_tip, atol=1e-9)


@pytest.mark.parametrize("axis,expected_end", [
    # C = Rz(90) Rx(90): C x = y, so rx 90 spins 'side' (+x) about y to -z (world +y).
    ("90 0 90 XYZ", (0, 1, 0)),
    # C = Rx(90) Rz(90): C x = z, so rx 90 spins +x about z to +y (world +z).
    ("90 0 90 ZYX", (0, 0, 1)),
])
def test_axis_conjugates_dof_rotation(tmp_path, axis, expected_end):
    _, amc = _write_acclaim(tmp_path, [("0 0 0 0 0 0", "90")], axis=axis, dofs="rx")
    motion = acclaim.read_amc(amc, tmp_path / "tiny.asf")
    side, side_end = _tip(motion)
    np.testing.assert_allclose(side_end - side, expected_end, atol=1e-9)


def test_zero_dofs_give_rest_pose_whatever_the_axis(tmp_path):
    _, amc = _write_acclaim(tmp_path, [("0 0 0 0 0 0", "0")], axis="33 -70 12 YZX", dofs="rx")
    motion = acclaim.read_amc(amc, tmp_path / "tiny.asf")
    np.testing.assert_allclose(motion.local_rotations[0, :, 0], 1.0)


def test_root_order_units_and_radians(tmp_path):
    # Values arrive in 'order' order; :RADIANS overrides the ASF's degrees; length 0.45
    # means one unit is 0.0254 / 0.45 m.
    _, amc = _write_acclaim(tmp_path, [(f"{np.pi / 2} 1 2 3", "0 0 0")], length="0.45",
                            order="RY TX TY TZ", amc_header=":RADIANS\n")
    motion = acclaim.read_amc(amc, tmp_path / "tiny.asf")
    unit = 0.0254 / 0.45
    np.testing.assert_allclose(motion.root_translation[0], np.array([1, -3, 2]) * unit)
    # Source Ry(90) becomes a rotation about the world axis A y = +z.
    expected = Rotation.from_euler("z", 90, degrees=True).as_quat(scalar_first=True)
    np.testing.assert_allclose(np.abs(motion.local_rotations[0, 0] @ expected), 1.0, atol=1e-9)


def test_asf_angle_radians_apply_to_axis(tmp_path):
    _, amc_deg = _write_acclaim(tmp_path, [("0 0 0 0 0 0", "90")], axis="90 0 90 XYZ",
                                dofs="rx")
    deg = acclaim.read_amc(amc_deg, tmp_path / "tiny.asf")
    _, amc_rad = _write_acclaim(tmp_path, [("0 0 0 0 0 0", f"{np.pi / 2}")], angle="rad",
                                axis=f"{np.pi / 2} 0 {np.pi / 2} XYZ", dofs="rx",
                                amc_header="")
    rad = acclaim.read_amc(amc_rad, tmp_path / "tiny.asf")
    np.testing.assert_allclose(motion_positions(rad), motion_positions(deg), atol=1e-9)


BVH_TEMPLATE = """HIERARCHY
ROOT Hips
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition {root_channels}
  JOINT Chest
  {{
    OFFSET 0 10 0
    CHANNELS 3 {chest_channels}
    End Site
    {{
      OFFSET 5 0 0
    }}
  }}
}}
MOTION
Frames: {frames}
Frame Time: 0.01
{rows}
"""


def test_bvh_channel_orders_match_bvhio(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.uniform(-170, 170, size=(5, 9))
    values[:, :3] = rng.uniform(-50, 50, size=(5, 3))
    path = tmp_path / "orders.bvh"
    path.write_text(BVH_TEMPLATE.format(
        root_channels="Yrotation Xrotation Zrotation",
        chest_channels="Xrotation Zrotation Yrotation",
        frames=5, rows="\n".join(" ".join(f"{v:.6f}" for v in row) for row in values)))
    motion = bvh.read_bvh(path, scale=1.0)
    assert motion.skeleton.names == ["Hips", "Chest", "Chest_end"]
    assert motion.fps == 100.0
    reference = bvh.bvhio.readAsBvh(str(path))
    to_z_up = Rotation.from_euler("x", 90, degrees=True)
    for j, joint in enumerate([reference.Root, reference.Root.Children[0]]):
        ours = Rotation.from_quat(motion.local_rotations[:, j], scalar_first=True)
        theirs = Rotation.from_quat([[k.Rotation.w, k.Rotation.x, k.Rotation.y, k.Rotation.z]
                                     for k in joint.Keyframes], scalar_first=True)
        np.testing.assert_allclose((ours.inv() * to_z_up * theirs * to_z_up.inv()).magnitude(),
                                   0.0, atol=1e-5)
    source_root = np.array([list(k.Position) for k in reference.Root.Keyframes])
    np.testing.assert_allclose(motion.root_translation, to_z_up.apply(source_root), atol=1e-4)


def test_bvh_explicit_scale_and_units(tmp_path):
    path = tmp_path / "unit.bvh"
    path.write_text(BVH_TEMPLATE.format(root_channels="Zrotation Xrotation Yrotation",
                                        chest_channels="Zrotation Xrotation Yrotation",
                                        frames=1, rows="1 2 3 0 0 0 0 0 0"))
    metres = bvh.read_bvh(path, scale=1.0)
    centimetres = bvh.read_bvh(path, scale="cm")
    np.testing.assert_allclose(centimetres.skeleton.offsets, metres.skeleton.offsets * 0.01)
    np.testing.assert_allclose(metres.root_translation[0], [1, -3, 2], atol=1e-12)
    np.testing.assert_allclose(metres.skeleton.offsets[1], [0, 0, 10], atol=1e-12)
    with pytest.raises(ValueError, match="furlong"):
        bvh.read_bvh(path, scale="furlong")


def test_auto_scale_picks_unit_closest_to_human_height():
    rest = np.array([[0, 0, 0], [0, 0, 1.0]])
    assert bvh.auto_scale(rest * 170) == 0.01
    assert bvh.auto_scale(rest * 1.8) == 1.0
    assert bvh.auto_scale(rest * 1700) == 0.001
    assert bvh.auto_scale(rest * 67) == 0.0254
    assert bvh.auto_scale(rest * 30) == pytest.approx(0.0254 / 0.45)
