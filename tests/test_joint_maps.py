"""Joint maps: built-ins fit the real rigs, custom maps load from JSON, errors name joints."""
import json

import numpy as np
import pytest

from synth import acclaim, joint_maps
from synth.motion import Skeleton
from posecontract.layouts import H36M_17


@pytest.fixture(scope="module")
def asf_skeleton(hdm05_dir):
    return acclaim.read_asf(hdm05_dir / "HDM_dg.asf").skeleton


def test_builtins_cover_the_layout_and_toes():
    for joint_map in joint_maps.BUILTIN_JOINT_MAPS.values():
        assert set(joint_map.joints) == set(H36M_17.names) | {"l_toe", "r_toe"}
    assert joint_maps.ACCLAIM.joints["r_knee"] == "rtibia"
    assert joint_maps.CMU_BVH.joints["r_wrist"] == "RightHand"


def test_detect_and_indices(asf_skeleton):
    joint_map = joint_maps.detect_rig(asf_skeleton)
    assert joint_map.name == "acclaim"
    index = joint_maps.joint_indices(asf_skeleton, joint_map)
    assert index.shape == (17,) and index.dtype == np.int64
    assert [asf_skeleton.names[i] for i in index] == list(joint_map.source_names())
    toes = joint_maps.joint_indices(asf_skeleton, joint_map, ("l_toe", "r_toe"))
    assert [asf_skeleton.names[i] for i in toes] == ["ltoes", "rtoes"]


def test_missing_joints_are_named(asf_skeleton):
    keep = [i for i, n in enumerate(asf_skeleton.names) if n not in ("lradius", "head_end")]
    remap = {old: new for new, old in enumerate(keep)}
    pruned = Skeleton([asf_skeleton.names[i] for i in keep],
                      [-1] + [remap.get(asf_skeleton.parents[i], 0) for i in keep[1:]],
                      asf_skeleton.offsets[keep])
    with pytest.raises(ValueError, match=r"lacks joints \['head_end', 'lradius'\]"):
        joint_maps.joint_indices(pruned, joint_maps.ACCLAIM)
    with pytest.raises(ValueError, match="fits no built-in joint map"):
        joint_maps.detect_rig(pruned)


def test_json_map_round_trip_and_validation(tmp_path):
    path = tmp_path / "rig.json"
    joints = {k: "j_" + k for k in H36M_17.names}
    path.write_text(json.dumps({"name": "mine", "joints": joints}))
    joint_map = joint_maps.get_joint_map(path)
    assert joint_map.name == "mine" and joint_map.joints == joints
    assert joint_maps.get_joint_map("acclaim") is joint_maps.ACCLAIM

    path.write_text(json.dumps({"name": "mine", "joints": {"hip": "x", "tail": "y"}}))
    with pytest.raises(ValueError, match=r"missing keys \['r_hip'.*unknown keys \['tail'\]"):
        joint_maps.load_joint_map(path)
    path.write_text(json.dumps({"name": "acclaim", "joints": joints}))
    with pytest.raises(ValueError, match="built-in"):
        joint_maps.load_joint_map(path)
    with pytest.raises(ValueError, match="unknown joint map 'nope'"):
        joint_maps.get_joint_map("nope")
