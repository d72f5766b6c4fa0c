"""A synth dataset as TFRecord shards, for corpora too large for one folder of npz files.

    python -m vp3dkeras.data.shards DATASET_DIR|URL --out SHARDS_DIR|URL [--shard-mb 128]
        [--arrays all|training]

writes

    SHARDS_DIR/records-00000.tfrecord   one `tf.train.Example` per clip record
    SHARDS_DIR/shards.json              the dataset's manifest, each record's shard, byte
                                        offset, length and CRC-32, the shard list
    SHARDS_DIR/splits/<name>.json       the dataset's splits, unchanged

The format (framing, payload, index) is defined once, without TensorFlow, in
`posecontract.shard_format`; `python -m synth.render --shards-out` writes the same shards
straight from the generation job.

`SHARDS_DIR` may be a local folder or a URL: through fsspec when its protocol's driver is
installed (`s3://` with s3fs, `gs://` with gcsfs, `memory://`, ...), else through
`tf.io.gfile` (`gs://` natively), so a cluster writes it once to shared storage and every
worker reads it from there instead of holding a copy. (`record_dataset` streams through
`tf.data`, which reads only what `tf.io.gfile` opens.)

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
import posixpath
import sys
from typing import Dict, Optional, Sequence as Seq

import numpy as np

if __name__ == "__main__":  # TensorFlow without its start-up noise (vp3dkeras.quiet_tf)
    from vp3dkeras import quiet_tf  # noqa: F401
import tensorflow as tf  # noqa: E402

from posecontract.dataset_format import (OBJECT_STORE_PROTOCOLS, RecordError, Split,
                                         UnknownSplitError, dataset_path, list_splits,
                                         load_record, load_split, read_manifest, safe_name)
from posecontract.shard_format import (FOOTER as _FOOTER, FORMAT, HEADER as _HEADER,  # noqa: F401
                                       check_shards_folder,
                                       INDEX, TRAINING_PREFIXES, ShardWriter, check_payload,
                                       decode_record, encode_index, encode_record,
                                       index_data, parse_index, select_arrays, stale_shards,
                                       training_arrays)
from vp3dkeras.data.sequences import Sequence, SequenceSource
from vp3dkeras.data.synth_source import SynthSource


def _join(folder: str, name: str) -> str:
    return posixpath.join(str(folder), name)


class _GFileAccess:
    """File access through `tf.io.gfile`: local paths, and URLs of TensorFlow's file systems
    (``gs://`` natively; ``s3://``/``hdfs://`` with tensorflow-io). TensorFlow's errors
    (an unknown scheme, a file where a folder should be) become `OSError` naming the path;
    `reason` (why fsspec could not open the URL, e.g. a driver to install) is added to them.
    """

    def __init__(self, reason: str = ""):
        self.reason = reason

    def _call(self, call, path, *args):
        try:
            return call(path, *args)
        except tf.errors.OpError as error:
            message = error.message.split(" (file: ")[0]
            if isinstance(error, tf.errors.UnimplementedError) and self.reason:
                message = f"cannot open this URL ({self.reason}; tf.io.gfile: {message})"
            if message.startswith(f"{path} "):
                message = message[len(str(path)):].strip()
            raise OSError(f"{path}: {message}") from None

    def exists(self, path): return self._call(tf.io.gfile.exists, path)  # noqa: E704
    def isdir(self, path): return self._call(tf.io.gfile.isdir, path)  # noqa: E704
    def listdir(self, path): return self._call(tf.io.gfile.listdir, path)  # noqa: E704
    def size(self, path): return self._call(tf.io.gfile.stat, path).length  # noqa: E704
    def makedirs(self, path): self._call(tf.io.gfile.makedirs, path)  # noqa: E704
    def remove(self, path): self._call(tf.io.gfile.remove, path)  # noqa: E704

    def read(self, path, offset=None, length=None) -> bytes:
        def read(path):
            with tf.io.gfile.GFile(path, "rb") as handle:
                if offset is None:
                    return handle.read()
                handle.seek(offset)
                return handle.read(length)
        return self._call(read, path)

    def write_atomic(self, path, data: bytes) -> None:
        def write(path):
            tmp = f"{path}.tmp"
            with tf.io.gfile.GFile(tmp, "wb") as handle:
                handle.write(data)
            tf.io.gfile.rename(tmp, path, overwrite=True)
        self._call(write, path)


class _FsspecAccess:
    """File access through fsspec, for URLs whose protocol fsspec opens (``s3://`` with
    s3fs, ``gs://`` with gcsfs, ``memory://``, ...): what `synth.render --shards-out URL`
    writes with. Ranged reads are one request (`cat_file` with start and end)."""

    def __init__(self, fs):
        self.fs = fs

    def _p(self, url):
        return self.fs._strip_protocol(url)

    def exists(self, path): return self.fs.exists(self._p(path))  # noqa: E704
    def isdir(self, path): return self.fs.isdir(self._p(path))  # noqa: E704
    def size(self, path): return int(self.fs.size(self._p(path)))  # noqa: E704
    def remove(self, path): self.fs.rm_file(self._p(path))  # noqa: E704

    def listdir(self, path):
        return [posixpath.basename(n.rstrip("/"))
                for n in self.fs.ls(self._p(path), detail=False)]

    def makedirs(self, path):
        self.fs.makedirs(self._p(path), exist_ok=True)

    def read(self, path, offset=None, length=None) -> bytes:
        if offset is None:
            return self.fs.cat_file(self._p(path))
        return self.fs.cat_file(self._p(path), start=offset, end=offset + length)

    def write_atomic(self, path, data: bytes) -> None:
        # One put on object stores (atomic there); elsewhere a temporary name and a move.
        path = self._p(path)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) \
            else (self.fs.protocol,)
        if set(protocols) & OBJECT_STORE_PROTOCOLS:
            self.fs.pipe_file(path, data)
            return
        tmp = f"{path}.tmp"
        self.fs.pipe_file(tmp, data)
        self.fs.mv(tmp, path)


def _access(path):
    """How to reach `path`: fsspec for a URL whose protocol it opens with the drivers
    installed, else `tf.io.gfile` (local paths; gs:// without gcsfs)."""
    text = str(path)
    reason = ""
    if "://" in text and not text.startswith("file://"):
        try:
            import fsspec

            return _FsspecAccess(fsspec.filesystem(text.split("://", 1)[0]))
        except (ImportError, ValueError) as error:
            reason = str(error)
    return _GFileAccess(reason)


def _write_bytes_atomic(path: str, data: bytes) -> None:
    _access(path).write_atomic(path, data)


def write_shards(dataset_dir, out_dir: str, shard_mb: float = 128.0,
                 verbose: bool = False, arrays: str = "all") -> dict:
    """Writes the dataset `dataset_dir` (a folder, or a URL fsspec opens) as TFRecord shards
    under `out_dir` (a folder or URL, see the module docstring); returns the index (also
    written as `shards.json`).

    Records keep the manifest's order; a shard is closed once it holds `shard_mb` MB. Each
    shard is written under a temporary name and renamed; the index is written last, so a
    reader never sees an index naming a half-written shard. Records are read with
    `allow_pickle=False` and checked against the manifest's SHA-256 (`RecordError`).
    """
    select_arrays({}, arrays)  # ValueError for an unknown kind
    manifest = read_manifest(dataset_dir)
    files = _access(out_dir)
    if files.exists(out_dir) and not files.isdir(out_dir):
        raise NotADirectoryError(f"{out_dir}: a file, not a folder for shards")
    if files.exists(out_dir):
        check_shards_folder(files.listdir(out_dir), str(out_dir))
    files.makedirs(out_dir)
    if files.exists(_join(out_dir, INDEX)):  # no reader sees an index of old shards
        files.remove(_join(out_dir, INDEX))
    writer = ShardWriter(lambda name, data: _write_bytes_atomic(_join(out_dir, name), data),
                         shard_mb)
    for entry in manifest["records"]:
        record = load_record(dataset_path(dataset_dir, entry["file"]),
                             sha256=entry.get("sha256"))
        writer.add(entry["file"], encode_record(entry["file"], select_arrays(record, arrays)))
    records, shards = writer.finish()
    for shard in shards if verbose else ():
        print(f"{shard['file']}: {shard['records']} records, {shard['bytes'] / 1e6:.1f} MB")
    splits_out = _join(out_dir, "splits")
    files.makedirs(splits_out)
    for split in list_splits(dataset_dir):
        text = json.dumps(load_split(dataset_dir, split).to_dict(), indent=1) + "\n"
        _write_bytes_atomic(_join(splits_out, f"{split}.json"), text.encode())
    index = index_data(manifest, records, shards, arrays)
    _write_bytes_atomic(_join(out_dir, INDEX), encode_index(index))
    names = files.listdir(out_dir)
    # Shards no index names, and the temporary files of a write killed before its move.
    leftovers = [n for n in names if n.endswith(".tmp") and
                 (n[:-len(".tmp")] == INDEX or stale_shards([n[:-len(".tmp")]], None))]
    for name in stale_shards(names, index) + leftovers:
        files.remove(_join(out_dir, name))
    return index


def is_shard_dataset(path) -> bool:
    return _access(path).exists(_join(str(path), INDEX))


def read_index(shards_dir) -> dict:
    """The `shards.json` of `shards_dir`; ValueError when missing or of another format."""
    path = _join(str(shards_dir), INDEX)
    files = _access(path)
    if not files.exists(path):
        raise ValueError(f"{path}: no shard index; write one with python -m "
                         f"vp3dkeras.data.shards DATASET_DIR --out {shards_dir}")
    return parse_index(files.read(path), path)


def read_record(shards_dir, location: dict) -> Dict[str, np.ndarray]:
    """One record's arrays by one ranged read of its shard; `location` is its index entry.
    ValueError when the bytes there are not the indexed record."""
    path = _join(str(shards_dir), location["shard"])
    payload = _access(path).read(path, int(location["offset"]) + _HEADER,
                                 int(location["length"]))
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

    shards_dir: local folder or URL (fsspec or `tf.io.gfile`) holding `shards.json`.
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
        files = _access(path)
        if safe_name(name) != name or not files.exists(path):
            folder = _join(self.dataset_dir, "splits")
            names = sorted(posixpath.splitext(n)[0] for n in files.listdir(folder)
                           if n.endswith(".json")) if files.isdir(folder) else []
            raise UnknownSplitError(f"no split {name!r} in {folder}; available: "
                                    f"{', '.join(names) if names else '(none)'}")
        return Split.from_dict(json.loads(files.read(path)))

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
            files = _access(path)
            if not files.exists(path):
                raise ValueError(f"{path}: shard missing")
            length = files.size(path)
            if length < size:
                raise ValueError(f"{path}: shard truncated ({length} bytes, the index needs "
                                 f"{size})")


def main(argv: Optional[Seq[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.data.shards",
                                     description="Write a synth dataset folder as TFRecord "
                                                 "shards (local folders or URLs).")
    parser.add_argument("dataset", help="synth dataset folder or URL (manifest.json)")
    parser.add_argument("--out", required=True, help="shard folder or URL")
    parser.add_argument("--shard-mb", type=float, default=128.0,
                        help="close a shard once it holds this many MB (default 128)")
    parser.add_argument("--arrays", choices=("all", "training"), default="all",
                        help="every array of a record (default), or only what training "
                             "reads")
    parser.add_argument("--quiet", action="store_true", help="no line per shard")
    args = parser.parse_args(argv)
    try:
        index = write_shards(args.dataset, args.out, args.shard_mb, verbose=not args.quiet,
                             arrays=args.arrays)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(index['records'])} records in {len(index['shards'])} shards: "
          f"{_join(args.out, INDEX)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
