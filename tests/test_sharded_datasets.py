"""A synth dataset written as TFRecord shards reads back as the folder: same records, same
sequences, same training batches, also when the cache is too small to hold the data."""
import json

import numpy as np
import pytest

from posecontract.dataset_format import load_record, read_manifest
from conftest import assert_same_batches
from vp3dkeras.data import open_split
from vp3dkeras.data import shards


@pytest.fixture(scope="module")
def shard_dir(tiny_synth_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "tiny"
    # 0.05 MB per shard: the five tiny records spread over several shards.
    assert shards.main([str(tiny_synth_dataset), "--out", str(out), "--shard-mb", "0.05",
                        "--quiet"]) == 0
    return out


def test_every_record_round_trips_through_its_shard(tiny_synth_dataset, shard_dir):
    index = shards.read_index(shard_dir)
    manifest = read_manifest(tiny_synth_dataset)
    assert [r["file"] for r in index["records"]] == [e["file"] for e in manifest["records"]]
    assert len(index["shards"]) > 1
    assert not list(shard_dir.glob(".*"))  # no temporary file left
    for location in index["records"]:
        original = load_record(tiny_synth_dataset / location["file"])
        read = shards.read_record(shard_dir, location)
        assert sorted(read) == sorted(original)
        for key, array in original.items():
            assert read[key].dtype == array.dtype and read[key].shape == array.shape, key
            np.testing.assert_array_equal(read[key], array)


def test_training_shards_keep_only_the_training_arrays(shard_dir, training_shard_dir):
    record = shards.read_record(training_shard_dir,
                                shards.read_index(training_shard_dir)["records"][0])
    assert "keypoints2d__coco17" in record and "joints3d_camera__h36m17" in record
    assert not [k for k in record if "full" in k or k.startswith("rotations")]
    size = sum(s["bytes"] for s in shards.read_index(training_shard_dir)["shards"])
    assert size < 0.5 * sum(s["bytes"] for s in shards.read_index(shard_dir)["shards"])


def test_tf_data_streams_every_record_once(shard_dir):
    index = shards.read_index(shard_dir)
    count = len(index["shards"])
    seen = []
    for worker in range(2):
        for payload in shards.record_dataset(shard_dir, cycle_length=2, shard_index=worker,
                                             num_shards=2):
            seen.append(json.dumps(sorted(shards.decode_record(payload.numpy()))))
    assert len(seen) == len(index["records"]) and count >= 2


@pytest.fixture(scope="module")
def training_shard_dir(tiny_synth_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "training"
    assert shards.main([str(tiny_synth_dataset), "--out", str(out), "--arrays", "training",
                        "--quiet"]) == 0
    return out


@pytest.mark.parametrize("cache_bytes,arrays", [(1 << 30, "all"), (40_000, "all"),
                                                 (40_000, "training")])
def test_shards_give_the_folders_batches(tiny_synth_dataset, shard_dir, training_shard_dir,
                                         cache_bytes, arrays):
    split = "actor_out_hdm05_mm"
    folder_train, folder_test = open_split(tiny_synth_dataset, split, cache_bytes=cache_bytes)
    source = shard_dir if arrays == "all" else training_shard_dir
    shard_train, shard_test = open_split(source, split, cache_bytes=cache_bytes)
    assert type(shard_train).__name__ == "ShardSource"
    assert [r.key for r in shard_test.refs] == [r.key for r in folder_test.refs]
    assert_same_batches(folder_train, shard_train)


def test_a_corrupted_shard_is_a_one_line_error(shard_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(shard_dir, copy)
    location = shards.read_index(copy)["records"][0]
    path = copy / location["shard"]
    data = bytearray(path.read_bytes())
    data[location["offset"] + 40] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{location['shard']}: record .* does not match"):
        shards.read_record(copy, location)
    with pytest.raises(ValueError, match="no shard index"):
        shards.read_index(tmp_path)
    last = shards.read_index(copy)["shards"][-1]["file"]
    (copy / last).write_bytes((copy / last).read_bytes()[:-10])
    with pytest.raises(ValueError, match=f"{last}: shard truncated"):
        shards.ShardSource(copy).validate()


def test_the_tf_free_format_is_tensorflows_byte_for_byte(tiny_synth_dataset, shard_dir,
                                                         tmp_path):
    """`posecontract.shard_format` (no TensorFlow: protobuf + google-crc32c) writes what
    TensorFlow writes: the same TFRecord file for the same payloads, and payloads that are
    `tf.train.Example`s, serialized as TensorFlow serializes them."""
    import tensorflow as tf

    from posecontract import shard_format

    index = shards.read_index(shard_dir)
    location = index["records"][0]
    record = load_record(tiny_synth_dataset / location["file"])
    payload = shard_format.encode_record(location["file"], record)
    example = tf.train.Example.FromString(payload)
    assert example.SerializeToString(deterministic=True) == payload
    assert example.features.feature["_file"].bytes_list.value[0] == location["file"].encode()
    assert list(example.features.feature["keypoints2d/shape"].int64_list.value) == \
        list(record["keypoints2d"].shape)
    payloads = [payload, b"", b"x" * 70000]
    with tf.io.TFRecordWriter(str(tmp_path / "tf.tfrecord")) as writer:
        for p in payloads:
            writer.write(p)
    assert (tmp_path / "tf.tfrecord").read_bytes() == b"".join(
        shard_format.frame(p) for p in payloads)
    # The shard on disk holds exactly that framing at the indexed offset.
    data = (shard_dir / location["shard"]).read_bytes()
    start = location["offset"]
    assert data[start:start + len(payload) + 16] == shard_format.frame(payload)


def test_a_wrong_shards_out_is_one_line(tiny_synth_dataset, tmp_path, capsys):
    """`--out` a URL nothing opens, a file, or a dataset folder (its splits/ would be
    replaced by the shards' copy): one line naming it, exit 2, nothing written."""
    import shutil

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    other = tmp_path / "other_dataset"
    shutil.copytree(tiny_synth_dataset, other)
    before = sorted(p.relative_to(other).as_posix() for p in other.rglob("*"))
    cases = [("nosuchprotocol://bucket/x", "cannot open this URL"),
             (str(a_file), "a file, not a folder"),
             (f"file://{a_file}", "a file, not a folder"),
             (str(other), "holds a synth dataset"),
             (str(tiny_synth_dataset), "holds a synth dataset")]
    try:
        import s3fs  # noqa: F401
    except ImportError:
        cases.append(("s3://bucket/x", "Install s3fs"))
    for out, problem in cases:
        capsys.readouterr()
        assert shards.main([str(tiny_synth_dataset), "--out", out, "--quiet"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {out}") and problem in lines[0]
    assert sorted(p.relative_to(other).as_posix() for p in other.rglob("*")) == before
    assert a_file.read_text() == "x"


def test_the_shards_command_and_training_on_bad_shards_say_one_line(tiny_synth_dataset,
                                                                     shard_dir, tmp_path):
    """`python -m vp3dkeras.data.shards` prints none of TensorFlow's start-up lines; training
    on a truncated shard stops before making the run folder, and on a corrupted one (caught
    only when the record is read, inside tf.data) with one line, not a traceback."""
    import os
    import pathlib
    import shutil
    import subprocess
    import sys

    repo = pathlib.Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo))
    result = subprocess.run([sys.executable, "-m", "vp3dkeras.data.shards",
                             str(tiny_synth_dataset), "--out", str(tmp_path / "s")],
                            cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == "", result.stderr

    truncated, corrupted = tmp_path / "truncated", tmp_path / "corrupted"
    shutil.copytree(shard_dir, truncated)
    last = shards.read_index(truncated)["shards"][-1]["file"]
    (truncated / last).write_bytes((truncated / last).read_bytes()[:-10])
    shutil.copytree(shard_dir, corrupted)
    for location in shards.read_index(corrupted)["records"]:  # every record's payload
        path = corrupted / location["shard"]
        data = bytearray(path.read_bytes())
        data[location["offset"] + 40] ^= 0xFF
        path.write_bytes(bytes(data))
    for data, problem in [(truncated, "shard truncated"), (corrupted, "does not match")]:
        run_dir = tmp_path / f"run_{data.name}"
        result = subprocess.run(
            [sys.executable, "-m", "vp3dkeras.train", "--dataset", str(data), "--split",
             "actor_out_hdm05_mm", "--out", str(run_dir), "--epochs", "1", "--channels", "8",
             "--filter-widths", "3", "--batch-size", "64", "--quiet"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {data}/") and problem in lines[0], result.stderr
        if data is truncated:
            assert not run_dir.exists()


def test_a_rewrite_removes_what_a_killed_write_left(tiny_synth_dataset, tmp_path):
    out = tmp_path / "shards"
    out.mkdir()
    for name in ("records-00007.tfrecord", "records-00000.tfrecord.tmp", "shards.json.tmp"):
        (out / name).write_bytes(b"half")
    (out / "notes.tmp").write_bytes(b"someone else's")
    assert shards.main([str(tiny_synth_dataset), "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["notes.tmp", "records-00000.tfrecord",
                                                     "shards.json", "splits"]
