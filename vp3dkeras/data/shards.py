"""A synth dataset as TFRecord shards, for corpora too large for one folder of npz files.

    python -m vp3dkeras.data.shards DATASET_DIR --out SHARDS_DIR [--shard-mb 128]
        [--arrays all|training]

writes

    SHARDS_DIR/records-00000-of-00012.tfrecord   one `tf.train.Example` per clip record
    SHARDS_DIR/shards.json                       the dataset's manifest, each record's shard,
                                                 byte offset, length and CRC-32, the shard list
    SHARDS_DIR/splits/<name>.json                the dataset's splits, unchanged

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
features: `<key>` (raw bytes, or a bytes list for
string arrays), `<key>/shape` and `<key>/dtype`; `_file` names the record.

Errors: a missing or foreign index, a record whose bytes do not match the index (truncated or
corrupted shard), or an array that cannot be stored raise `ValueError` naming the file.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import posixpath
import sys
import zlib
from typing import Dict, List, Optional, Sequence as Seq

import numpy as np
import tensorflow as tf

from posecontract.dataset_format import (RecordError, Split, UnknownSplitError, list_splits,
                                         load_record, load_split, read_manifest, safe_name)
from vp3dkeras.data.sequences import Sequence, SequenceSource
from vp3dkeras.data.synth_source import SynthSource

INDEX = "shards.json"
FORMAT = "vp3dkeras-tfrecord-shards/1"
SHARD_PATTERN = "records-{index:05d}-of-{count:05d}.tfrecord"
_HEADER, _FOOTER = 12, 4  # TFRecord framing: uint64 length + masked CRC32C; payload CRC32C


def _join(folder: str, name: str) -> str:
    return posixpath.join(str(folder), name)


def _write_bytes_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with tf.io.gfile.GFile(tmp, "wb") as handle:
        handle.write(data)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def encode_record(name: str, arrays: Dict[str, np.ndarray]) -> bytes:
    """One record's arrays as a serialized `tf.train.Example` (see the module docstring)."""
    feature = {"_file": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()]))}
    for key, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind == "U":
            value = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[s.encode("utf-8") for s in array.reshape(-1).tolist()]))
        elif array.dtype.kind in "biuf":
            value = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[np.ascontiguousarray(array).tobytes()]))
        else:
            raise ValueError(f"{name}: array {key!r} has dtype {array.dtype}, which a shard "
                             f"cannot store")
        feature[key] = value
        feature[f"{key}/shape"] = tf.train.Feature(int64_list=tf.train.Int64List(
            value=list(array.shape)))
        feature[f"{key}/dtype"] = tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[array.dtype.str.encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def decode_record(payload: bytes, where: str = "record") -> Dict[str, np.ndarray]:
    """The arrays of a serialized record (`encode_record`'s inverse); `_file` is left out."""
    try:
        features = tf.train.Example.FromString(payload).features.feature
    except Exception as error:  # protobuf's DecodeError
        raise ValueError(f"{where}: not a record ({error})") from None
    arrays = {}
    for key in features:
        if key == "_file" or "/" in key:
            continue
        shape = tuple(features[f"{key}/shape"].int64_list.value)
        dtype = np.dtype(features[f"{key}/dtype"].bytes_list.value[0].decode())
        values = features[key].bytes_list.value
        if dtype.kind == "U":
            array = np.array([v.decode("utf-8") for v in values], dtype=dtype)
        else:
            array = np.frombuffer(values[0], dtype=dtype)
        arrays[key] = array.reshape(shape)
    return arrays


TRAINING_PREFIXES = ("keypoints2d", "joints3d_camera", "joint_names", "camera_intrinsics",
                     "camera_image_size")


def training_arrays(name: str) -> bool:
    """Whether a record array is one the training side reads (`--arrays training`): the
    arrays named in `TRAINING_PREFIXES`, in any convention (`<name>__<convention>`), but not
    the full-skeleton ones (`*_full`)."""
    base = name.split("__")[0]
    return base in TRAINING_PREFIXES


def write_shards(dataset_dir, out_dir: str, shard_mb: float = 128.0,
                 verbose: bool = False, arrays: str = "all") -> dict:
    """Writes the dataset folder `dataset_dir` as TFRecord shards under `out_dir` (local or
    a `tf.io.gfile` URL); returns the index (also written as `shards.json`).

    Records keep the manifest's order; a shard is closed once it holds `shard_mb` MB. Each
    shard is written under a temporary name and renamed; the index is written last, so a
    reader never sees an index naming a half-written shard. Records are read with
    `allow_pickle=False` and checked against the manifest's SHA-256 (`RecordError`).
    """
    if arrays not in ("all", "training"):
        raise ValueError(f"arrays must be 'all' or 'training', got {arrays!r}")
    manifest = read_manifest(dataset_dir)
    entries = manifest["records"]
    limit = int(shard_mb * (1 << 20))
    groups: List[List[tuple]] = [[]]
    size = 0
    for entry in entries:
        record = load_record(pathlib.Path(dataset_dir) / entry["file"],
                             sha256=entry.get("sha256"))
        if arrays == "training":
            record = {k: v for k, v in record.items() if training_arrays(k)}
        payload = encode_record(entry["file"], record)
        if groups[-1] and size + len(payload) > limit:
            groups.append([])
            size = 0
        groups[-1].append((entry["file"], payload))
        size += len(payload) + _HEADER + _FOOTER
    tf.io.gfile.makedirs(out_dir)
    records, shards = [], []
    for index, group in enumerate(groups):
        name = SHARD_PATTERN.format(index=index, count=len(groups))
        tmp = _join(out_dir, f".{name}.tmp")
        offset = 0
        with tf.io.TFRecordWriter(tmp) as writer:
            for file, payload in group:
                writer.write(payload)
                records.append({"file": file, "shard": name, "offset": offset,
                                "length": len(payload), "crc32": zlib.crc32(payload)})
                offset += len(payload) + _HEADER + _FOOTER
        tf.io.gfile.rename(tmp, _join(out_dir, name), overwrite=True)
        shards.append({"file": name, "records": len(group), "bytes": offset})
        if verbose:
            print(f"{name}: {len(group)} records, {offset / 1e6:.1f} MB", flush=True)
    splits_out = _join(out_dir, "splits")
    tf.io.gfile.makedirs(splits_out)
    for split in list_splits(dataset_dir):
        text = json.dumps(load_split(dataset_dir, split).to_dict(), indent=1) + "\n"
        _write_bytes_atomic(_join(splits_out, f"{split}.json"), text.encode())
    index = {"format": FORMAT, "arrays": arrays, "manifest": manifest, "records": records,
             "shards": shards}
    _write_bytes_atomic(_join(out_dir, INDEX), (json.dumps(index) + "\n").encode())
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
        try:
            index = json.loads(handle.read())
        except ValueError as error:
            raise ValueError(f"{path}: not JSON ({error})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} index")
    return index


def read_record(shards_dir, location: dict) -> Dict[str, np.ndarray]:
    """One record's arrays by one ranged read of its shard; `location` is its index entry.
    ValueError when the bytes there are not the indexed record."""
    path = _join(str(shards_dir), location["shard"])
    with tf.io.gfile.GFile(path, "rb") as handle:
        handle.seek(int(location["offset"]) + _HEADER)
        payload = handle.read(int(location["length"]))
    if len(payload) != int(location["length"]) or zlib.crc32(payload) != location["crc32"]:
        raise ValueError(f"{path}: record {location['file']} at byte {location['offset']} "
                         f"does not match the index (truncated or corrupted shard)")
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
