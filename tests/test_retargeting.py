"""Avatars and retargeting on real mocap: lengths, floor contact, sides, sliding."""
import numpy as np
import pytest

from synth.avatars import CANONICAL_JOINTS, SEGMENTS, get_avatars
from synth.kinematics import motion_positions
from synth.mocap_io import load_motion
from synth.render import canonical_indices
from synth.resample import resample
from synth.retarget import Retargeter

J = {name: i for i, name in enumerate(CANONICAL_JOINTS)}
SINGLE_BONE_SEGMENTS = [s for s in SEGMENTS if s[1] not in ("spine", "thorax", "neck_nose")]


@pytest.fixture(scope="module")
def walk(cmu_dir):
    """A real CMU walk (subject 02, trial 01), 50 fps."""
    return resample(load_motion(cmu_dir / "02" / "02_01.amc"), 50.0)


@pytest.fixture(scope="module")
def walk_clips(walk):
    retargeter = Retargeter(walk, canonical_indices(walk, None))
    return {avatar.name: retargeter(avatar) for avatar in get_avatars()}


def test_avatars_differ_in_height_and_proportions():
    avatars = get_avatars()
    assert len(avatars) >= 5
    heights = [a.standing_height() for a in avatars]
    assert min(heights) < 1.56 and max(heights) > 1.88
    assert all(1.48 <= h <= 1.97 for h in heights)
    ratios = {name: [] for name in ("leg", "arm", "shoulder", "hip")}
    for a in avatars:
        ratios["leg"].append(a.leg_length() / a.standing_height())
        ratios["arm"].append(a.segment_length("l_shoulder", "l_elbow") / a.standing_height())
        ratios["shoulder"].append(a.segment_length("thorax", "l_shoulder") / a.standing_height())
        ratios["hip"].append(a.segment_length("hip", "l_hip") / a.standing_height())
    for name, values in ratios.items():
        assert np.ptp(values) / np.mean(values) > 0.08, f"{name} proportions barely differ"


def test_avatar_mesh_matches_its_skeleton():
    for avatar in get_avatars():
        rest = avatar.rest_positions()
        mesh = avatar.mesh()
        lo, hi = mesh.trimesh().bounds
        assert abs(hi[2] - avatar.standing_height()) < 0.05
        assert lo[2] > -0.05
        wrists = rest[[J["l_wrist"], J["r_wrist"]], 0]
        assert lo[0] <= wrists.min() and hi[0] >= wrists.max()
        np.testing.assert_allclose(mesh.weights.sum(axis=1), 1.0)
        # Every vertex is skinned to a segment close to it.
        assert len(mesh.vertices) > 1000


def test_bone_lengths_are_constant_and_the_avatars(walk_clips):
    for name, clip in walk_clips.items():
        avatar = clip.avatar
        points = clip.canonical_positions
        for parent, child in SEGMENTS:
            lengths = np.linalg.norm(points[:, J[child]] - points[:, J[parent]], axis=-1)
            expected = avatar.segment_length(parent, child)
            if (parent, child) in SINGLE_BONE_SEGMENTS:
                assert np.ptp(lengths) < 1e-6, (name, parent, child)
                np.testing.assert_allclose(lengths, expected, rtol=1e-6)
            else:  # torso segments span several vertebrae of the source rig and flex
                np.testing.assert_allclose(lengths, expected, rtol=0.05)


def test_feet_rest_on_the_floor_in_a_walk(walk_clips):
    for name, clip in walk_clips.items():
        feet = clip.canonical_positions[:, [J["l_toe"], J["r_toe"], J["l_ankle"],
                                             J["r_ankle"]], 2]
        lowest = feet.min(axis=1)
        assert np.percentile(lowest, 50) < 0.04, name  # some foot touches down every frame
        assert lowest.min() > -0.03, name  # and none sinks through the floor


def test_head_above_hips_and_sides_not_swapped(walk_clips):
    for name, clip in walk_clips.items():
        p = clip.canonical_positions
        assert np.all(p[:, J["head"], 2] > p[:, J["hip"], 2] + 0.3)
        forward = (p[:, J["l_toe"]] - p[:, J["l_ankle"]]) + (p[:, J["r_toe"]] - p[:, J["r_ankle"]])
        left = np.cross([0.0, 0.0, 1.0], forward)  # Z up: up x forward points to the left
        side = np.einsum("tc,tc->t", p[:, J["l_hip"]] - p[:, J["r_hip"]], left)
        assert np.mean(side > 0) > 0.95, name


def test_retargeted_walk_slides_no_more_than_the_source(walk, walk_clips):
    def sliding(points, fps):
        """Mean horizontal speed (m/s) of a foot joint while it is planted."""
        speeds = []
        for foot in ("l_toe", "r_toe"):
            z = points[:, J[foot], 2]
            v = np.linalg.norm(np.diff(points[:, J[foot], :2], axis=0), axis=-1) * fps
            planted = (z[1:] < z.min() + 0.03) & (z[:-1] < z.min() + 0.03)
            speeds.append(v[planted])
        return np.concatenate(speeds).mean()

    indices = canonical_indices(walk, None)
    source = motion_positions(walk)[:, indices]
    source_slide = sliding(source, walk.fps)
    for name, clip in walk_clips.items():
        slide = sliding(clip.canonical_positions, walk.fps)
        assert slide <= source_slide * clip.root_scale * 1.25 + 0.02, (name, slide, source_slide)


def test_root_path_scales_with_leg_length(walk, walk_clips):
    source_path = walk.root_translation[-1, :2] - walk.root_translation[0, :2]
    for name, clip in walk_clips.items():
        path = clip.positions[-1, 0, :2] - clip.positions[0, 0, :2]
        np.testing.assert_allclose(path, source_path * clip.root_scale, atol=1e-9)
        assert 0.7 < clip.root_scale < 1.4


def test_local_rotations_are_kept(walk, walk_clips):
    clip = walk_clips["ben"]
    np.testing.assert_array_equal(clip.skeleton.parents, walk.skeleton.parents)
    # Limb bone directions in the world are the source's: only lengths change. Trunk bones
    # (pelvis to hips, spine, neck, clavicles) take the avatar's own rest layout
    # (`synth.retarget.body_trunk_offsets`), rotated by the same joint rotations.
    source = motion_positions(walk)
    parents = walk.skeleton.parents
    index = canonical_indices(walk, None)
    limbs = {int(index[CANONICAL_JOINTS.index(f"{s}_{n}")]) for s in "lr"
             for n in ("elbow", "wrist", "knee", "ankle")}
    checked = 0
    for j in range(1, walk.skeleton.num_joints):
        a = source[:, j] - source[:, parents[j]]
        b = clip.positions[:, j] - clip.positions[:, parents[j]]
        na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
        if na.min() < 1e-6:
            continue
        cos = np.einsum("tc,tc->t", a, b) / (na * nb)
        rest_cos = (walk.skeleton.offsets[j] @ clip.skeleton.offsets[j]
                    / np.linalg.norm(walk.skeleton.offsets[j])
                    / np.linalg.norm(clip.skeleton.offsets[j]))
        if j in limbs or rest_cos > 1 - 1e-9:  # not re-aimed: the source's direction
            assert cos.min() > 1 - 1e-9, walk.skeleton.names[j]
            checked += 1
        else:  # re-aimed at rest, then turned by the same rotations: a constant angle
            assert np.ptp(cos) < 1e-9, walk.skeleton.names[j]
    assert checked >= len(limbs)
