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


def test_scoring_without_implausible_frames_cuts_sequences_and_refuses_nothing_left(
        monkeypatch):
    """evaluate_source leaves flagged frames out (cutting the sequence around them) and, when
    nothing is left, says so in one line instead of failing on an empty array. The lifter is
    replaced by one that predicts zeros: only the bookkeeping is under test."""
    import pytest

    import vp3dkeras.evaluate as evaluate
    from vp3dkeras.data.codec import PoseCodec
    from vp3dkeras.data.sequences import Sequence, SequenceRef, SequenceSource

    codec = PoseCodec(HUMANEVA_15)
    poses = np.concatenate([_upright(HUMANEVA_15, a) for a in (0, 10, 150, 160, 5, 0)])
    poses[:, HUMANEVA_15.index("l_hip")] = (-0.1, 0.0, 0.0)
    poses[:, HUMANEVA_15.index("r_hip")] = (0.1, 0.0, 0.0)
    poses = poses + np.array([0.0, 0.0, 4.0])  # in front of the camera

    class Source(SequenceSource):
        def __init__(self, frames):
            self.frames = frames
            ref = SequenceRef("s/cam0", "s", "S", "walk", "walk", 0, "s", len(frames), 50.0)
            super().__init__(codec, [ref], name="toy")

        def _load_item(self, item):
            poses_3d, trajectory = codec.encode_3d(self.frames)
            keypoints = (self.frames[..., :2] / self.frames[..., 2:]).astype(np.float32)
            return {0: Sequence(self.refs[0], keypoints, poses_3d, trajectory, None,
                                np.array([1000, 1000]))}

    monkeypatch.setattr(evaluate, "predict_poses", lambda lifter, keypoints, codec, tta:
                        np.zeros((len(keypoints), HUMANEVA_15.num_joints, 3), np.float32))
    kept = evaluate.evaluate_source(None, Source(poses), exclude_implausible=True)
    assert kept["num_frames"] == 4 and kept["implausible_targets"]["frames"] == 2
    assert kept["implausible_targets"]["sequences"] == {"s/cam0": [2, 6]}
    scored = evaluate.evaluate_source(None, Source(poses))
    assert scored["num_frames"] == 6 and not scored["implausible_targets"]["excluded"]
    with pytest.raises(ValueError, match="nothing left to score"):
        evaluate.evaluate_source(None, Source(poses[2:4]), exclude_implausible=True)
