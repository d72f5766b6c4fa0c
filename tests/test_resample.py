"""Resampling to a new frame rate keeps timing and interpolates between source frames."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from synth import mocap_io
from synth.kinematics import motion_positions, quat_canonical
from synth.motion import Motion, Skeleton
from synth.resample import resample, slerp


@pytest.fixture(scope="module")
def walk(cmu_dir):
    motion = mocap_io.load_motion(cmu_dir / "02" / "02_01.amc")
    return motion.with_(local_rotations=motion.local_rotations[:241],
                        root_translation=motion.root_translation[:241])


def test_times_and_duration(walk):
    out = resample(walk, 50.0)
    last_source = (walk.num_frames - 1) / walk.fps  # 2.0 s
    assert out.fps == 50.0
    assert out.num_frames == 101
    assert (out.num_frames - 1) / out.fps <= last_source < out.num_frames / out.fps
    assert out.rig == walk.rig and out.source == walk.source
    assert out.skeleton.names == walk.skeleton.names
    odd = walk.with_(local_rotations=walk.local_rotations[:240],
                     root_translation=walk.root_translation[:240])
    assert resample(odd, 50.0).num_frames == 100  # last source frame at 1.9917 s


def test_matches_source_at_shared_times_and_interpolates_between(walk):
    out = resample(walk, 50.0)
    source = motion_positions(walk)
    ours = motion_positions(out)
    # Every 0.1 s both rates have a frame: 12 source frames, 5 output frames.
    np.testing.assert_allclose(ours[::5], source[::12], atol=1e-9)
    np.testing.assert_allclose(quat_canonical(out.local_rotations[::5]),
                               quat_canonical(walk.local_rotations[::12]), atol=1e-9)
    # In between: close to linear interpolation of the source positions.
    t = np.arange(out.num_frames) / 50.0 * walk.fps
    lower = np.floor(t).astype(int)
    upper = np.minimum(lower + 1, walk.num_frames - 1)
    w = (t - lower)[:, None, None]
    linear = (1 - w) * source[lower] + w * source[upper]
    assert np.max(np.linalg.norm(ours - linear, axis=-1)) < 0.005
    np.testing.assert_allclose(out.root_translation, linear[:, 0], atol=1e-12)


def test_same_rate_is_identity_and_upsampling_works(walk):
    same = resample(walk, walk.fps)
    np.testing.assert_allclose(quat_canonical(same.local_rotations),
                               quat_canonical(walk.local_rotations), atol=1e-12)
    up = resample(walk, 240.0)
    assert up.num_frames == 2 * walk.num_frames - 1
    np.testing.assert_allclose(motion_positions(up)[::2], motion_positions(walk), atol=1e-9)


def test_slerp_takes_short_way_despite_sign_flips():
    a = Rotation.from_euler("z", 10, degrees=True).as_quat(scalar_first=True)
    b = Rotation.from_euler("z", 50, degrees=True).as_quat(scalar_first=True)
    middle = Rotation.from_euler("z", 30, degrees=True).as_quat(scalar_first=True)
    for q1 in (b, -b):
        np.testing.assert_allclose(quat_canonical(slerp(a, q1, 0.5)), middle, atol=1e-12)
    np.testing.assert_allclose(quat_canonical(slerp(a, -a, 0.3)), a, atol=1e-12)


def test_sign_flipped_source_resamples_like_unflipped():
    angles = np.linspace(0, 90, 11)
    q = Rotation.from_euler("x", angles[:, None], degrees=True).as_quat(scalar_first=True)
    flipped = q * np.where(np.arange(11) % 2, -1.0, 1.0)[:, None]
    skeleton = Skeleton(["root"], [-1], np.zeros((1, 3)))
    motions = [Motion(skeleton, r[:, None], np.zeros((11, 3)), 10.0, "")
               for r in (q, flipped)]
    a, b = (resample(m, 25.0) for m in motions)
    np.testing.assert_allclose(quat_canonical(a.local_rotations),
                               quat_canonical(b.local_rotations), atol=1e-12)
    expected = Rotation.from_euler("x", np.arange(a.num_frames)[:, None] * 9 * 10 / 25,
                                   degrees=True).as_quat(scalar_first=True)
    np.testing.assert_allclose(quat_canonical(a.local_rotations[:, 0]), expected, atol=1e-12)
