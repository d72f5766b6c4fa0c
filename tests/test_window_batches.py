"""Training batches cut on the fly: windows, chunks, sequence batches, determinism, memory."""
import numpy as np
import pytest

from synth import dataset as ds
from vp3dkeras.data import (ByteLRU, PoseCodec, SequenceBatcher, SequenceRef, SequenceSource,
                            SynthSource, WindowSampler, epoch_order, open_split)
from vp3dkeras.data.sequences import make_sequence
from posecontract.layouts import H36M_17
from vp3dkeras.padding import pad_replicate


class ArraySource(SequenceSource):
    """Random sequences held in memory; counts how often each item is loaded."""

    def __init__(self, lengths, cache_bytes=1 << 30, seed=0):
        codec = PoseCodec(H36M_17)
        rng = np.random.default_rng(seed)
        refs = [SequenceRef(key=f"c{i}/cam0", clip_key=f"c{i}", subject="s", action=f"a{i}",
                            motion_class="m", camera=0, item=i, num_frames=n)
                for i, n in enumerate(lengths)]
        self.raw = {i: (rng.uniform(0, 640, (n, 17, 2)), rng.normal(size=(n, 17, 3)) + [0, 0, 4])
                    for i, n in enumerate(lengths)}
        self.loads = {i: 0 for i in range(len(lengths))}
        super().__init__(codec, refs, "arrays", cache_bytes)

    def _load_item(self, item):
        self.loads[item] += 1
        keypoints, joints = self.raw[item]
        return {0: make_sequence(self.codec, self.refs[item], keypoints, (640, 480), joints)}


def test_window_equals_slice_of_the_padded_sequence():
    source = ArraySource([5, 30])
    sampler = WindowSampler(source, pad=(4, 4), batch_size=8, augment=False)
    assert sampler.num_windows == 35 and sampler.window_length == 9
    inputs, targets = sampler.windows(np.arange(sampler.num_windows))
    for index in range(sampler.num_windows):
        seq = source.load(int(sampler.window_sequence[index]))
        start = int(sampler.window_start[index])
        padded = pad_replicate(seq.keypoints_2d, 4, 4)
        np.testing.assert_array_equal(inputs[index], padded[start:start + 9])
        np.testing.assert_array_equal(targets[index, 0], seq.poses_3d[start])


def test_causal_windows_end_at_their_frame():
    source = ArraySource([12])
    sampler = WindowSampler(source, pad=(8, 0), batch_size=4, augment=False)
    inputs, _ = sampler.windows([5])
    padded = pad_replicate(source.load(0).keypoints_2d, 8, 0)
    np.testing.assert_array_equal(inputs[0], padded[5:14])
    np.testing.assert_array_equal(inputs[0, -1], source.load(0).keypoints_2d[5])


def test_chunks_cover_every_frame_with_a_full_last_chunk():
    source = ArraySource([25, 3])
    sampler = WindowSampler(source, pad=(1, 1), batch_size=4, chunk=10, augment=False)
    assert list(sampler.window_start) == [0, 10, 15]  # the 3-frame sequence is too short
    inputs, targets = sampler.windows([2])
    seq = source.load(0)
    np.testing.assert_array_equal(targets[0], seq.poses_3d[15:25])
    np.testing.assert_array_equal(inputs[0], pad_replicate(seq.keypoints_2d, 1, 1)[15:27])


def test_batches_are_a_function_of_seed_and_number_and_flip_half():
    source = ArraySource([40, 50, 60])
    make = lambda seed: WindowSampler(source, pad=(1, 1), batch_size=32, seed=seed)
    a, b = make(3), make(3)
    stream = a.batches(start=0)
    first = [next(stream) for _ in range(2 * a.steps_per_epoch)]
    resumed = b.batches(start=a.steps_per_epoch)  # a resumed run starts at epoch 1
    for expected in first[a.steps_per_epoch:]:
        got = next(resumed)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    assert not np.array_equal(make(4).batch(0)[0], first[0][0])
    order, flips, _ = a.plan(0)
    assert sorted(order) == list(range(150)) and 0.3 < flips.mean() < 0.7
    # A flipped example is the flip of the unflipped window.
    inputs, targets = a.batch(0)
    plain_in, plain_target = a.windows(order[:32])
    row = int(np.flatnonzero(flips[:32])[0])
    np.testing.assert_allclose(inputs[row], source.codec.flip(plain_in[row]))
    np.testing.assert_allclose(targets[row], source.codec.flip(plain_target[row]))


def test_max_windows_per_epoch_caps_an_epoch():
    sampler = WindowSampler(ArraySource([100, 100]), pad=(1, 1), batch_size=16,
                            max_windows_per_epoch=40)
    assert sampler.examples_per_epoch == 40 and sampler.steps_per_epoch == 3
    assert len(sampler.plan(0)[0]) == 40


def test_data_larger_than_the_cache_are_read_about_once_per_epoch():
    lengths = [50] * 20
    frame_bytes = 17 * 5 * 4 + 12
    source = ArraySource(lengths, cache_bytes=4 * 50 * frame_bytes)  # 4 of 20 items fit
    sampler = WindowSampler(source, pad=(2, 2), batch_size=50, seed=1)
    for number in range(sampler.steps_per_epoch):
        sampler.batch(number)
    assert sum(source.loads.values()) <= 2 * len(lengths)
    assert source._cache.nbytes <= source.cache_bytes


def test_epoch_order_groups_items_that_fit():
    rng = np.random.default_rng(0)
    unit_items = np.repeat(np.arange(6), 10)
    order = epoch_order(unit_items, np.full(6, 100), budget=400, rng=rng)
    assert sorted(order) == list(range(60))
    items_in_order = unit_items[order]
    changes = np.count_nonzero(np.diff(items_in_order) != 0)
    blocks = [set(items_in_order[i:i + 20]) for i in range(0, 60, 20)]
    assert all(len(b) == 2 for b in blocks) and changes > 6


def test_byte_lru_evicts_oldest():
    cache = ByteLRU(10, size_of=len)
    cache.get("a", lambda: "xxxx")
    cache.get("b", lambda: "yyyy")
    cache.get("a", lambda: "never")
    cache.get("c", lambda: "zzzz")  # evicts b, the least recently used
    assert cache.get("a", lambda: "new") == "xxxx" and cache.get("b", lambda: "again") == "again"


def test_sequence_batches_pad_and_mask():
    source = ArraySource([7, 20, 13])
    batcher = SequenceBatcher(source, batch_size=3, max_frames=16, length_multiple=8,
                              augment=False)
    inputs, targets, weights = batcher.batch(0)
    assert inputs["keypoints"].shape == (3, 16, 17, 2) and targets.shape == (3, 16, 17, 3)
    lengths = sorted(weights.sum(axis=1).astype(int))
    assert lengths == [7, 13, 16]
    np.testing.assert_array_equal(inputs["mask"], weights)
    assert np.all(inputs["keypoints"][weights == 0] == 0)
    whole, _, mask = batcher.sequences([1])
    assert mask.sum() == 20 and whole["keypoints"].shape[1] == 24
    np.testing.assert_array_equal(whole["keypoints"][0, :20], source.load(1).keypoints_2d)


def test_synth_split_sequences_match_the_records(tiny_synth_dataset):
    train, test = open_split(tiny_synth_dataset, "actor_out_hdm05_mm")
    assert {r.subject for r in train.refs} == {"hdm05_bd"}
    assert {r.subject for r in test.refs} == {"hdm05_mm"}
    assert len(train.refs) == 3 * 2 and train.has_3d
    ref = test.refs[-1]
    seq = test.load(len(test) - 1)
    record = ds.load_record(tiny_synth_dataset / ref.item)
    camera = ref.camera
    width, height = record["camera_image_size"][camera]
    # By default both sides are Human3.6M's joints (the dataset was rendered with them).
    assert train.codec.layout.name == train.codec.input_layout.name == "h36m17"
    np.testing.assert_allclose(seq.keypoints_2d, train.codec.normalize_2d(
        record["keypoints2d__h36m17"][camera], (width, height)), atol=1e-6)
    cam3d = record["joints3d_camera__h36m17"][camera]
    np.testing.assert_allclose(seq.poses_3d, cam3d - cam3d[:, :1], atol=1e-6)
    np.testing.assert_allclose(seq.trajectory, cam3d[:, 0])
    np.testing.assert_array_equal(seq.intrinsics, record["camera_intrinsics"][camera])
    assert seq.ref.motion_class == str(record["motion_class"])
    # Labeled / unlabeled selection by clip keys.
    labeled = SynthSource(tiny_synth_dataset).select(train.clip_keys[:1])
    assert labeled.clip_keys == train.clip_keys[:1] and len(labeled) == 2
    with pytest.raises(ValueError, match="1 clip keys not in the data"):
        train.select(["no_such_clip"])
