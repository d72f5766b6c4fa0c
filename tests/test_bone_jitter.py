"""Bone-length jitter: bones rescaled with their directions kept, left and right alike, and the
2D re-projected through each sequence's real camera (checked on a rendered dataset)."""
import numpy as np
import pytest

from posecontract.layouts import COCO_17, H36M_17, HUMANEVA_15
from vp3dkeras.camera import project_to_2d_np
from vp3dkeras.config import ConfigError
from vp3dkeras.data import PoseCodec, SequenceRef, SequenceSource, WindowSampler, open_split
from vp3dkeras.data.bone_jitter import BoneJitter, bone_jitter_from_config, rescale_bones
from vp3dkeras.data.sequences import make_sequence
from vp3dkeras.train_config import TrainConfig


def _lengths(poses, layout):
    return np.stack([np.linalg.norm(poses[..., c, :] - poses[..., p, :], axis=-1)
                     for p, c in layout.bones()], axis=-1)


def test_rescale_bones_scales_each_bone_and_keeps_its_direction():
    rng = np.random.default_rng(0)
    poses = rng.normal(size=(4, 7, 15, 3))
    poses[..., 0, :] = 0
    factors = rng.uniform(0.8, 1.2, (4, 15))
    out = rescale_bones(poses, HUMANEVA_15.parents, factors)
    child = [c for _, c in HUMANEVA_15.bones()]
    np.testing.assert_allclose(_lengths(out, HUMANEVA_15),
                               _lengths(poses, HUMANEVA_15) * factors[:, None, child])
    for p, c in HUMANEVA_15.bones():
        before = poses[..., c, :] - poses[..., p, :]
        after = out[..., c, :] - out[..., p, :]
        cosine = (before * after).sum(-1) / np.linalg.norm(before, axis=-1) / np.linalg.norm(
            after, axis=-1)
        np.testing.assert_allclose(cosine, 1.0, atol=1e-12)
    np.testing.assert_array_equal(out[..., 0, :], 0)
    np.testing.assert_allclose(rescale_bones(poses, HUMANEVA_15.parents, np.ones((4, 15))), poses)


def test_factors_are_symmetric_bounded_and_of_the_asked_spread():
    jitter = BoneJitter(H36M_17, 0.06)
    factors = jitter.factors(20000, np.random.default_rng(1))
    perm = H36M_17.flip_permutation()
    np.testing.assert_array_equal(factors, factors[:, perm])
    logs = np.log(factors[:, 1:])
    assert np.all(np.abs(logs) <= 0.18 + 1e-12)
    assert abs(logs.std() - 0.06) < 0.003
    # Different joints' bones are independent.
    assert abs(np.corrcoef(logs[:, 1], logs[:, 10])[0, 1]) < 0.05
    with pytest.raises(ValueError, match="positive number"):
        BoneJitter(H36M_17, float("nan"))


def assert_inputs_are_projections(sampler, x, y, step):
    """Every `step`-th example of `sampler`'s first batch (x, y; unflipped): the 2D input of
    its output frames is the projection of its 3D target, placed at the window's own root
    trajectory, through the sequence's camera (intrinsics and lens model)."""
    order = sampler.plan(0)[0][:len(y)]
    chunk, left = y.shape[1], sampler.pad_left
    for row in range(0, len(y), step):
        index = order[row]
        seq = sampler.source.load(int(sampler.window_sequence[index]))
        start = sampler.window_start[index]
        camera = y[row] + seq.trajectory[start:start + chunk, None, :]
        np.testing.assert_allclose(
            x[row, left:left + chunk],
            project_to_2d_np(camera, seq.normalized_intrinsics(), sampler.source.lens_model),
            atol=2e-5)


def test_jittered_windows_are_the_projection_of_a_new_body(tiny_synth_dataset):
    """On a rendered dataset (lens distortion included): with a vanishing spread the
    re-projected 2D is the records' own 2D; with sd 0.1 each example's bones change by one
    factor per bone over its whole chunk, and the 2D input is the new body's projection."""
    train, _ = open_split(tiny_synth_dataset, "actor_out_hdm05_mm")
    layout = train.codec.layout
    pad = (4, 4)
    plain = WindowSampler(train, pad, batch_size=64, chunk=3, seed=5, augment=False)
    tiny = WindowSampler(train, pad, batch_size=64, chunk=3, seed=5, augment=False,
                         bones=BoneJitter(layout, 1e-9, train.lens_model))
    (x_plain, y_plain), (x_tiny, y_tiny) = plain.batch(0), tiny.batch(0)
    np.testing.assert_allclose(x_tiny, x_plain, atol=2e-5)
    np.testing.assert_allclose(y_tiny, y_plain, atol=1e-6)

    jittered = WindowSampler(train, pad, batch_size=64, chunk=3, seed=5, augment=False,
                             bones=BoneJitter(layout, 0.1, train.lens_model))
    x, y = jittered.batch(0)
    ratio = _lengths(y, layout) / _lengths(y_plain, layout)
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-4)
    assert np.std(np.log(ratio[:, 0])) > 0.05
    assert np.abs(x - x_plain).max() > 0.01
    assert_inputs_are_projections(jittered, x, y, step=7)
    # Seeded by (seed, batch number); validation windows stay unjittered.
    again = WindowSampler(train, pad, batch_size=64, chunk=3, seed=5, augment=False,
                          bones=BoneJitter(layout, 0.1, train.lens_model))
    np.testing.assert_array_equal(again.batch(0)[0], x)
    np.testing.assert_array_equal(jittered.fixed_subset(16)[0], plain.fixed_subset(16)[0])


def test_bone_jitter_options_refuse_what_they_cannot_do():
    assert bone_jitter_from_config(H36M_17, H36M_17, 0.0, "opencv") is None
    assert bone_jitter_from_config(H36M_17, H36M_17, 0.05, "opencv").sd == 0.05
    with pytest.raises(ValueError, match="coco17 in and h36m17 out"):
        bone_jitter_from_config(H36M_17, COCO_17, 0.05, "opencv")
    config = TrainConfig(dataset="d", split="s", bone_jitter=0.06)
    assert TrainConfig.from_json(config.to_json()).bone_jitter == 0.06
    assert "bones0.06" in config.run_name()
    with pytest.raises(ConfigError, match="temporal model"):
        TrainConfig(dataset="d", split="s", bone_jitter=0.06, model="refiner")
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        TrainConfig(dataset="d", split="s", bone_jitter=-0.1)


class NoCameraSource(SequenceSource):
    """2D and 3D without intrinsics, as a VideoPose3D folder without a cameras file."""

    def __init__(self):
        refs = [SequenceRef(key="c0/cam0", clip_key="c0", subject="s", action="a",
                            motion_class="m", camera=0, item=0, num_frames=30)]
        super().__init__(PoseCodec(HUMANEVA_15), refs, "no-camera")

    def _load_item(self, item):
        rng = np.random.default_rng(0)
        return {0: make_sequence(self.codec, self.refs[0], rng.uniform(100, 500, (30, 15, 2)),
                                 (640, 480), rng.normal(size=(30, 15, 3)) + [0, 0, 4])}


def test_a_sequence_without_a_camera_is_refused_up_front():
    with pytest.raises(ValueError, match="c0/cam0: bone-length jitter needs the sequence's "
                                         "camera intrinsics"):
        WindowSampler(NoCameraSource(), (1, 1), batch_size=4,
                      bones=BoneJitter(HUMANEVA_15, 0.1))
    WindowSampler(NoCameraSource(), (1, 1), batch_size=4)  # fine without jitter
