"""Quaternion helpers and forward kinematics against SciPy and hand-built chains."""
import numpy as np
from scipy.spatial.transform import Rotation

from synth.kinematics import (forward_kinematics, quat_canonical, quat_from_matrix,
                              quat_multiply, quat_rotate)


def _scipy(q):
    return Rotation.from_quat(q, scalar_first=True)


def test_quaternion_algebra_matches_scipy():
    a = Rotation.random(500, random_state=0)
    b = Rotation.random(500, random_state=1)
    qa, qb = a.as_quat(scalar_first=True), b.as_quat(scalar_first=True)
    np.testing.assert_allclose(quat_canonical(quat_multiply(qa, qb)),
                               quat_canonical((a * b).as_quat(scalar_first=True)), atol=1e-12)
    v = np.random.default_rng(2).normal(size=(500, 3))
    np.testing.assert_allclose(quat_rotate(qa, v), a.apply(v), atol=1e-12)


def test_matrix_to_quaternion_including_half_turns():
    rotations = Rotation.concatenate([Rotation.random(1000, random_state=3)] + [
        Rotation.from_rotvec(axis * np.pi) for axis in np.eye(3)])
    q = quat_from_matrix(rotations.as_matrix())
    assert np.all(q[:, 0] >= 0)
    np.testing.assert_allclose(_scipy(q).as_matrix(), rotations.as_matrix(), atol=1e-12)


def test_forward_kinematics_of_a_bent_chain():
    parents = np.array([-1, 0, 1])
    offsets = np.array([[0, 0, 0], [0, 0, 1.0], [0, 0, 1.0]])
    quarter_turn_x = Rotation.from_rotvec([np.pi / 2, 0, 0]).as_quat(scalar_first=True)
    local = np.tile([1.0, 0, 0, 0], (1, 3, 1))
    local[0, 1] = quarter_turn_x  # bend at the middle joint
    positions, rotations = forward_kinematics(parents, offsets, local, np.array([[1.0, 2, 3]]))
    np.testing.assert_allclose(positions[0], [[1, 2, 3], [1, 2, 4], [1, 1, 4]], atol=1e-12)
    np.testing.assert_allclose(rotations[0, 2], quarter_turn_x, atol=1e-12)
