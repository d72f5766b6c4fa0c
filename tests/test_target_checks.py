"""Ground-truth plausibility (vp3dkeras.data.target_checks): a head turned down the trunk is
a data defect, a bent neck is not; layouts without a head or thorax are not checked."""
import numpy as np

from posecontract.layouts import COCO_17, H36M_17, HUMANEVA_15
from vp3dkeras.data.target_checks import head_angles, implausible_frames


def _upright(layout, head_angle_deg):
    """(1, J, 3) pose: trunk straight up 0.5 m, head 0.3 m from the thorax, tilted forward by
    head_angle_deg from the trunk axis."""
    names = list(layout.names)
    pose = np.zeros((1, len(names), 3))
    pose[0, names.index("thorax")] = (0, 0, 0.5)
    a = np.radians(head_angle_deg)
    pose[0, names.index("head")] = (0, 0.3 * np.sin(a), 0.5 + 0.3 * np.cos(a))
    return pose


def test_a_head_down_the_trunk_is_flagged_a_bent_neck_is_not():
    for layout in (HUMANEVA_15, H36M_17):
        poses = np.concatenate([_upright(layout, a) for a in (0, 45, 70, 95, 120, 180)])
        np.testing.assert_allclose(head_angles(poses, layout), [0, 45, 70, 95, 120, 180],
                                   atol=1e-6)
        assert implausible_frames(poses, layout).tolist() == [False] * 4 + [True] * 2


def test_real_humaneva_s3_walks_have_their_head_below_the_thorax():
    """The defect as it is in ../shared/real/humaneva: Train/S3's walks throughout,
    Validate/S3 'Walking 1 chunk4' in 209 of its 267 frames; no other trial."""
    from conftest import shared_dir
    from vp3dkeras.data.vp3d_format import restricted_load_npz
    data = restricted_load_npz(shared_dir() / "real" / "humaneva" / "data_3d_humaneva15.npz")
    flagged = {(subject, action): int(implausible_frames(np.asarray(poses), HUMANEVA_15).sum())
               for subject, actions in data["positions_3d"].items()
               for action, poses in actions.items()}
    defects = {key: n for key, n in flagged.items() if n}
    assert defects == {("Train/S3", "Walking 1 chunk0"): 393,
                       ("Train/S3", "Walking 1 chunk2"): 85,
                       ("Validate/S3", "Walking 1 chunk4"): 209}


def test_layouts_without_a_head_and_thorax_are_not_checked():
    poses = np.random.default_rng(0).normal(size=(5, COCO_17.num_joints, 3))
    assert head_angles(poses, COCO_17) is None
    assert not implausible_frames(poses, COCO_17).any()
