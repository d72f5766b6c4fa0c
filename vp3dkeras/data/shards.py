"""A synth dataset as TFRecord shards, for corpora too large for one folder of npz files.

    python -m vp3dkeras.data.shards DATASET_DIR --out SHARDS_DIR [--shard-mb 128]
        [--arrays all|training]

writes

    SHARDS_DIR/records-00000.tfrecord   one `tf.train.Example` per clip record
    SHARDS_DIR/shards.json              the dataset's manifest, each record's shard, byte
                                        offset, length and CRC-32, the shard list
    SHARDS_DIR/splits/<name>.json       the dataset's splits, unchanged

The format (framing, payload, index) is defined once, without TensorFlow, in
`posecontract.shard_format`; `python -m synth.render --shards-out` writes the same shards
straight from the generation job.

`SHARDS_DIR` may be a local folder or any URL `tf.io.gfile` opens (`gs://...`; `s3://...`
with tensorflow-io), so a cluster writes it once to shared storage and every worker reads it
from there instead of holding a copy.

Reading. `ShardSource` is the folder's `SynthSource` over shards: the same sequence refs (from
the manifest inside `shards.json`), the same items (record file names), so `WindowSampler`
and `SequenceBatcher` give exactly the batches they give on the folder. A record is read on
demand by one ranged read (the index gives shard and offset; TFRecord framing is 12 bytes of
length + CRC before the payload and 4 after it), checked against its CRC-32, and parsed with
protobuf: no whole-shard scan, no copy on the worker. `record_dataset` streams whole shards
through `tf.data` (`interleave` over shard files) for passes over everything (evaluation,
export, checks).

`--arrays training` keeps only what training reads (2D keypoints, camera-space 3D joints and
joint names of every convention, camera intrinsics and image size): about 340 B per camera
frame instead of about 1.8 kB (docs/SCALING.md). Each array of a record is stored as three
features: `<key>` (raw bytes, or a bytes list for string arrays), `<key>/shape` and
`<key>/dtype`; `_file` names the record (`posecontract.shard_format`).

Errors: a missing or foreign index, a record whose bytes do not match the index (truncated or
corrupted shard), or an array that cannot be stored raise `ValueError` naming the file.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import posixpath
import sys
from typing import Dict, Optional, Sequence as Seq

import numpy as np
import tensorflow as tf

from posecontract.dataset_format import (RecordError, Split, UnknownSplitError, list_splits,
                                         load_record, load_split, read_manifest, safe_name)
from posecontract.shard_format import (FOOTER as _FOOTER, FORMAT, HEADER as _HEADER,  # noqa: F401
                                       INDEX, TRAINING_PREFIXES, ShardWriter, check_payload,
                                       decode_record, encode_index, encode_record,
                                       index_data, parse_index, select_arrays, stale_shards,
                                       training_arrays)
from vp3dkeras.data.sequences import Sequence, SequenceSource
from vp3dkeras.data.synth_source import SynthSource


def _join(folder: str, name: str) -> str:
    return posixpath.join(str(folder), name)


def _write_bytes_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with tf.io.gfile.GFile(tmp, "wb") as handle:
        handle.write(data)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def write_shards(dataset_dir, out_dir: str, shard_mb: float = 128.0,
                 verbose: bool = False, arrays: str = "all") -> dict:
    """Writes the dataset folder `dataset_dir` as TFRecord shards under `out_dir` (local or
    a `tf.io.gfile` URL); returns the index (also written as `shards.json`).

    Records keep the manifest's order; a shard is closed once it holds `shard_mb` MB. Each
    shard is written under a temporary name and renamed; the index is written last, so a
    reader never sees an index naming a half-written shard. Records are read with
    `allow_pickle=False` and checked against the manifest's SHA-256 (`RecordError`).
    """
    select_arrays({}, arrays)  # ValueError for an unknown kind
    manifest = read_manifest(dataset_dir)
    tf.io.gfile.makedirs(out_dir)
    if tf.io.gfile.exists(_join(out_dir, INDEX)):  # no reader sees an index of old shards
        tf.io.gfile.remove(_join(out_dir, INDEX))
    writer = ShardWriter(lambda name, data: _write_bytes_atomic(_join(out_dir, name), data),
                         shard_mb)
    for entry in manifest["records"]:
        record = load_record(pathlib.Path(dataset_dir) / entry["file"],
                             sha256=entry.get("sha256"))
        writer.add(entry["file"], encode_record(entry["file"], select_arrays(record, arrays)))
    records, shards = writer.finish()
    for shard in shards if verbose else ():
        print(f"{shard['file']}: {shard['records']} records, {shard['bytes'] / 1e6:.1f} MB")
    splits_out = _join(out_dir, "splits")
    tf.io.gfile.makedirs(splits_out)
    for split in list_splits(dataset_dir):
        text = json.dumps(load_split(dataset_dir, split).to_dict(), indent=1) + "\n"
        _write_bytes_atomic(_join(splits_out, f"{split}.json"), text.encode())
    index = index_data(manifest, records, shards, arrays)
    _write_bytes_atomic(_join(out_dir, INDEX), encode_index(index))
    for name in stale_shards(tf.io.gfile.listdir(out_dir), index):
        tf.io.gfile.remove(_join(out_dir, name))
    return index


def is_shard_dataset(path) -> bool:
    return tf.io.gfile.exists(_join(str(path), INDEX))


def read_index(shards_dir) -> dict:
    """The `shards.json` of `shards_dir`; ValueError when missing or of another format."""
    path = _join(str(shards_dir), INDEX)
    if not tf.io.gfile.exists(path):
        raise ValueError(f"{path}: no shard index; write one with python -m "
                         f"vp3dkeras.data.shards DATASET_DIR --out {shards_dir}")
    with tf.io.gfile.GFile(path, "rb") as handle:
        return parse_index(handle.read(), path)


def read_record(shards_dir, location: dict) -> Dict[str, np.ndarray]:
    """One record's arrays by one ranged read of its shard; `location` is its index entry.
    ValueError when the bytes there are not the indexed record."""
    path = _join(str(shards_dir), location["shard"])
    with tf.io.gfile.GFile(path, "rb") as handle:
        handle.seek(int(location["offset"]) + _HEADER)
        payload = handle.read(int(location["length"]))
    check_payload(payload, location, path)
    return decode_record(payload, f"{path}: {location['file']}")


def record_dataset(shards_dir, cycle_length: int = 4,
                   shard_index: int = 0, num_shards: int = 1) -> tf.data.Dataset:
    """Serialized records of every shard (or of every `num_shards`-th shard from
    `shard_index`: one worker's part), read by `tf.data` with `interleave` over the shard
    files; decode each with `decode_record(bytes(x.numpy()))`. Order: round-robin over
    `cycle_length` shards at a time, deterministic."""
    files = [_join(str(shards_dir), s["file"]) for s in read_index(shards_dir)["shards"]]
    files = files[shard_index::num_shards]
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, cycle_length=cycle_length, block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class ShardSource(SynthSource):
    """The sequences of a sharded synth dataset: `SynthSource`'s refs, items and record
    checks (so the same batches as on the folder), each record read from its shard on
    demand.

    shards_dir: local folder or `tf.io.gfile` URL holding `shards.json`.
    """

    def __init__(self, shards_dir, cache_bytes: int = SequenceSource.DEFAULT_CACHE_BYTES,
                 keypoints_in: Optional[str] = None, keypoints_out: Optional[str] = None):
        self.dataset_dir = str(shards_dir)
        index = read_index(shards_dir)
        self._locations = {r["file"]: r for r in index["records"]}
        self._init_refs(index["manifest"], self.dataset_dir, cache_bytes, keypoints_in,
                        keypoints_out)

    def split(self, name: str) -> Split:
        path = _join(_join(self.dataset_dir, "splits"), f"{name}.json")
        if safe_name(name) != name or not tf.io.gfile.exists(path):
            folder = _join(self.dataset_dir, "splits")
            names = sorted(posixpath.splitext(n)[0] for n in tf.io.gfile.listdir(folder)
                           if n.endswith(".json")) if tf.io.gfile.isdir(folder) else []
            raise UnknownSplitError(f"no split {name!r} in {folder}; available: "
                                    f"{', '.join(names) if names else '(none)'}")
        with tf.io.gfile.GFile(path, "rb") as handle:
            return Split.from_dict(json.loads(handle.read()))

    def _load_item(self, item) -> Dict[int, Sequence]:
        location = self._locations[item]
        where = f"{_join(self.dataset_dir, location['shard'])}: {item}"
        data = read_record(self.dataset_dir, location)
        missing = [k for k in self._record_keys() if k not in data]
        if missing:
            raise RecordError(f"{where}: record lacks array(s) {missing} (rendered without "
                              f"that keypoint convention)")
        return self._sequences_of(item, data, where)

    def validate(self) -> None:
        """Checks that every shard is there with the indexed size (one stat per shard),
        not by reading a corpus that may be terabytes: each record is checked (CRC-32,
        shapes, finite values) when it is first read. ValueError naming the shard."""
        sizes = {}
        for location in self._locations.values():
            end = int(location["offset"]) + _HEADER + int(location["length"]) + _FOOTER
            sizes[location["shard"]] = max(sizes.get(location["shard"], 0), end)
        for shard, size in sizes.items():
            path = _join(self.dataset_dir, shard)
            if not tf.io.gfile.exists(path):
                raise ValueError(f"{path}: shard missing")
            length = tf.io.gfile.stat(path).length
            if length < size:
                raise ValueError(f"{path}: shard truncated ({length} bytes, the index needs "
                                 f"{size})")


def main(argv: Optional[Seq[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.data.shards",
                                     description="Write a synth dataset folder as TFRecord "
                                                 "shards (local folder or gs:// URL).")
    parser.add_argument("dataset", help="synth dataset folder (manifest.json)")
    parser.add_argument("--out", required=True, help="shard folder or URL")
    parser.add_argument("--shard-mb", type=float, default=128.0,
                        help="close a shard once it holds this many MB (default 128)")
    parser.add_argument("--arrays", choices=("all", "training"), default="all",
                        help="every array of a record (default), or only what training "
                             "reads")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    try:
        index = write_shards(args.dataset, args.out, args.shard_mb, verbose=not args.quiet,
                             arrays=args.arrays)
    except (OSError, ValueError) as error:
        print(f"shards: {error}", file=sys.stderr)
        return 2
    print(f"{len(index['records'])} records in {len(index['shards'])} shards: "
          f"{_join(args.out, INDEX)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
