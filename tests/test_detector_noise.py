"""Detector-like 2D noise: levels, temporal correlation, event rates, determinism, filling,
and its use as a training augmentation."""
import numpy as np
import pytest

from posecontract.layouts import H36M_17, HUMANEVA_15
from vp3dkeras.data import PoseCodec, SequenceRef, SequenceSource, WindowSampler
from vp3dkeras.data.detector_noise import (COCO_SIGMAS, DetectorNoise, NoiseLevels, fill_missing,
                                           joint_sigma, noise_from_config)
from vp3dkeras.data.keypoint_formats import fill_low_confidence
from vp3dkeras.data.sequences import make_sequence
from vp3dkeras.train_config import TrainConfig

JITTER_ONLY = dict(swap_rate=0.0, gross_rate=0.0, miss_rate=0.0)


def standing_person(batch=400, frames=60, height=300.0):
    """A still HumanEva-15 figure (pixels) whose keypoint box is 100 x `height`."""
    rng = np.random.default_rng(7)
    pose = np.c_[rng.uniform(0, 100, 15), rng.uniform(0, height, 15)]
    pose[0], pose[1] = (0, 0), (100, height)  # fixes the bounding box
    return np.broadcast_to(pose, (batch, frames, 15, 2)).astype(np.float32), np.sqrt(100 * height)


@pytest.mark.parametrize("level", [0.5, 1.0, 2.0])
def test_jitter_matches_coco_sigmas_times_person_size(level):
    clean, size = standing_person()
    noise = DetectorNoise(HUMANEVA_15, NoiseLevels(level=level, **JITTER_ONLY))
    noisy = noise.apply(clean, np.random.default_rng(0))
    rms = np.sqrt(np.mean(np.sum((noisy - clean) ** 2, axis=-1), axis=(0, 1))) / size
    expected = level * np.array([joint_sigma(n) for n in HUMANEVA_15.names])
    # The box itself moves with the noise, so its size (and the noise) varies a little.
    np.testing.assert_allclose(rms, expected, rtol=0.08)
    assert joint_sigma("l_wrist") == COCO_SIGMAS["wrist"] == 0.062
    assert joint_sigma("hip") == pytest.approx(0.107 / np.sqrt(2))  # pelvis = mid-hips


def test_jitter_is_correlated_in_time():
    clean, _ = standing_person(batch=200, frames=200)
    for frames_constant in (3.0, 10.0):
        noise = DetectorNoise(HUMANEVA_15, NoiseLevels(correlation_frames=frames_constant,
                                                        **JITTER_ONLY))
        error = (noise.apply(clean, np.random.default_rng(1)) - clean)[..., 0]
        lag1 = np.mean(error[:, 1:] * error[:, :-1]) / np.mean(error ** 2)
        assert lag1 == pytest.approx(np.exp(-1 / frames_constant), abs=0.03)
    white = DetectorNoise(HUMANEVA_15, NoiseLevels(correlation_frames=0, **JITTER_ONLY))
    error = (white.apply(clean, np.random.default_rng(1)) - clean)[..., 0]
    assert abs(np.mean(error[:, 1:] * error[:, :-1]) / np.mean(error ** 2)) < 0.03


def test_swaps_gross_errors_and_misses_happen_at_the_configured_rates():
    clean, size = standing_person(batch=300, frames=90)
    levels = NoiseLevels(level=1.0, swap_rate=0.04, gross_rate=0.02, miss_rate=0.05,
                         burst_frames=4)
    report = {}
    DetectorNoise(HUMANEVA_15, levels).apply(clean, np.random.default_rng(2), report)
    assert report["swap"].mean() == pytest.approx(0.04, rel=0.1)
    assert report["gross"].mean() == pytest.approx(0.02, rel=0.1)
    assert report["miss"].mean() == pytest.approx(0.05, rel=0.1)
    # Bursts: an affected joint-frame's neighbour is usually affected too.
    gross = report["gross"]
    assert np.mean(gross[:, 1:][gross[:, :-1]]) > 0.6
    # `level` scales every rate.
    report = {}
    DetectorNoise(HUMANEVA_15, NoiseLevels(level=0.5, swap_rate=0.04, gross_rate=0.02,
                                           miss_rate=0.05)).apply(clean, np.random.default_rng(3),
                                                                  report)
    assert report["gross"].mean() == pytest.approx(0.01, rel=0.15)


def test_a_swap_exchanges_left_and_right_and_a_gross_error_jumps_far():
    clean, size = standing_person(batch=100, frames=30)
    swaps = DetectorNoise(HUMANEVA_15, NoiseLevels(level=1.0, correlation_frames=0,
                                                   swap_rate=0.2, gross_rate=0.0,
                                                   miss_rate=0.0))
    swaps.sigmas[:] = 0.0  # positions exact: only the swaps move joints
    report = {}
    noisy = swaps.apply(clean, np.random.default_rng(4), report)
    for k, (left, right) in enumerate(swaps.pairs):
        rows = report["swap"][..., k]
        np.testing.assert_array_equal(noisy[rows][:, left], clean[rows][:, right])
        np.testing.assert_array_equal(noisy[~rows][:, left], clean[~rows][:, left])
    gross = DetectorNoise(HUMANEVA_15, NoiseLevels(level=1.0, swap_rate=0.0, gross_rate=0.1,
                                                   miss_rate=0.0, gross_distance=(0.3, 0.4)))
    gross.sigmas[:] = 0.0
    report = {}
    jump = np.linalg.norm(gross.apply(clean, np.random.default_rng(5), report) - clean, axis=-1)
    assert np.all((jump[report["gross"]] >= 0.3 * size - 1e-3)
                  & (jump[report["gross"]] <= 0.4 * size + 1e-3))
    assert np.all(jump[~report["gross"]] == 0)


def test_missing_joints_are_filled_as_inference_fills_low_scores():
    rng = np.random.default_rng(6)
    points = rng.normal(size=(40, 25, 15, 2))
    missing = rng.random((40, 25, 15)) < 0.4
    missing[0, :, 3] = True  # never seen: left as it is
    missing[1, :5, 2] = True  # held at the start
    filled = fill_missing(points, missing)
    expected = np.stack([fill_low_confidence(points[b], (~missing[b]).astype(np.float32), 0.5)
                         for b in range(len(points))])
    np.testing.assert_allclose(filled, expected, atol=1e-6)


def test_noise_is_seeded_and_off_means_off():
    clean, _ = standing_person(batch=4, frames=27)
    noise = DetectorNoise(HUMANEVA_15)
    first = noise.apply(clean, np.random.default_rng(11))
    np.testing.assert_array_equal(first, noise.apply(clean, np.random.default_rng(11)))
    assert not np.allclose(first, noise.apply(clean, np.random.default_rng(12)))
    assert noise_from_config(HUMANEVA_15, "off", 1.0) is None
    assert noise_from_config(HUMANEVA_15, "on", 0.0) is None
    assert noise_from_config(H36M_17, "on", 2.0).levels.level == 2.0
    with pytest.raises(ValueError, match="off or on"):
        noise_from_config(H36M_17, "maybe", 1.0)
    with pytest.raises(ValueError, match=r"\(\.\.\., T, 15, 2\)"):
        noise.apply(np.zeros((10, 17, 2)), np.random.default_rng(0))


class StillSource(SequenceSource):
    def __init__(self):
        codec = PoseCodec(HUMANEVA_15)
        refs = [SequenceRef(key=f"c{i}/cam0", clip_key=f"c{i}", subject="s", action="a",
                            motion_class="m", camera=0, item=i, num_frames=40) for i in range(3)]
        rng = np.random.default_rng(0)
        self.raw = [(rng.uniform(100, 500, (40, 15, 2)), rng.normal(size=(40, 15, 3)) + [0, 0, 4])
                    for _ in refs]
        super().__init__(codec, refs, "still")

    def _load_item(self, item):
        keypoints, joints = self.raw[item]
        return {0: make_sequence(self.codec, self.refs[item], keypoints, (640, 480), joints)}


def test_window_sampler_adds_noise_to_training_batches_only():
    source = StillSource()
    noise = DetectorNoise(HUMANEVA_15)
    clean = WindowSampler(source, (13, 13), batch_size=16, seed=3)
    noisy = WindowSampler(source, (13, 13), batch_size=16, seed=3, noise=noise)
    (x_clean, y_clean), (x_noisy, y_noisy) = clean.batch(5), noisy.batch(5)
    np.testing.assert_array_equal(y_clean, y_noisy)  # targets untouched
    assert not np.allclose(x_clean, x_noisy)
    # A pure function of (seed, batch number), so resumed runs see the same noise.
    again = WindowSampler(source, (13, 13), batch_size=16, seed=3, noise=noise)
    np.testing.assert_array_equal(again.batch(5)[0], x_noisy)
    # Validation windows stay clean.
    np.testing.assert_array_equal(noisy.fixed_subset(8)[0], clean.fixed_subset(8)[0])


def test_training_config_keeps_the_noise_options():
    config = TrainConfig(dataset="d", split="s", noise_2d="on", noise_2d_level=0.5)
    assert TrainConfig.from_json(config.to_json()).noise_2d_level == 0.5
    with pytest.raises(ValueError, match="noise_2d must be off or on"):
        TrainConfig(noise_2d="yes")
