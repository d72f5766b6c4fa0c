"""The sharded dataset format, without TensorFlow: TFRecord framing, the record payload, the
index. One definition for both writers: `python -m vp3dkeras.data.shards` (from a dataset
folder) and `python -m synth.render --shards-out` (straight from the generation job, in a
process that must not import TensorFlow, PLATFORM.md), and for the reader
(`vp3dkeras.data.shards.ShardSource`).

Layout of SHARDS_DIR:
    records-00000.tfrecord   TFRecord files, one `tf.train.Example` per clip record
    shards.json              the index: the dataset's manifest, each record's shard, byte
                             offset, payload length and CRC-32, and the shard list
    splits/<name>.json       the dataset's splits

TFRecord framing (the format `tf.data.TFRecordDataset` reads; tensorflow/core/lib/io/
record_writer.cc): uint64 little-endian payload length, its masked CRC32C (uint32), the
payload, the payload's masked CRC32C. Masking: ``((crc >> 15 | crc << 17) + 0xa282ead8)
mod 2^32``. CRC32C (Castagnoli) comes from `google-crc32c` (C library, Google).

Payload: a serialized `tf.train.Example` (tensorflow/core/example/{example,feature}.proto),
built with the `protobuf` package from the same message definitions in a private descriptor
pool (so it does not clash with TensorFlow's when both are loaded) and serialized
deterministically (map keys sorted). Each array of a record is three features: `<key>`
(raw bytes in C order, or a bytes list of UTF-8 strings for string arrays), `<key>/shape`
(int64 list) and `<key>/dtype` (the NumPy dtype string, e.g. ``<f4``); `_file` names the
record (its path in the dataset folder).

Errors: an array a shard cannot store, bytes that are not a record: ValueError naming the
record.
"""
from __future__ import annotations

import json
import struct
import zlib
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

INDEX = "shards.json"
FORMAT = "vp3dkeras-tfrecord-shards/1"
SHARD_PATTERN = "records-{index:05d}.tfrecord"
SHARD_PREFIX = "records-"
HEADER, FOOTER = 12, 4  # TFRecord framing: uint64 length + masked CRC32C; payload CRC32C
_MASK_DELTA = 0xA282EAD8

#: Arrays training reads (`--arrays training` / `--shards-arrays training`), in any
#: keypoint convention (`<name>__<convention>`).
TRAINING_PREFIXES = ("keypoints2d", "joints3d_camera", "joint_names", "camera_intrinsics",
                     "camera_image_size")
ARRAYS = ("all", "training")


def training_arrays(name: str) -> bool:
    """Whether a record array is one the training side reads: the arrays named in
    `TRAINING_PREFIXES`, in any convention, but not the full-skeleton ones (`*_full`)."""
    return name.split("__")[0] in TRAINING_PREFIXES


def select_arrays(record: Dict[str, np.ndarray], arrays: str) -> Dict[str, np.ndarray]:
    """The arrays of `record` a shard of kind `arrays` ("all" or "training") keeps."""
    if arrays not in ARRAYS:
        raise ValueError(f"arrays must be 'all' or 'training', got {arrays!r}")
    if arrays == "all":
        return record
    return {k: v for k, v in record.items() if training_arrays(k)}


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of `data`."""
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(payload: bytes) -> bytes:
    """One TFRecord: length, its masked CRC32C, `payload`, the payload's masked CRC32C."""
    length = struct.pack("<Q", len(payload))
    return b"".join((length, struct.pack("<I", masked_crc32c(length)), payload,
                     struct.pack("<I", masked_crc32c(payload))))


def framed_record(file: str, payload: bytes) -> Tuple[str, bytes, int]:
    """(file, the payload as one TFRecord, the payload's CRC-32 for the index): what
    `ShardWriter.add_framed` appends; workers frame their records so the writer only
    concatenates."""
    return file, frame(payload), zlib.crc32(payload)


_CLASSES = None


def _example_classes():
    """(Example, Feature) message classes of tensorflow/core/example/{example,feature}.proto
    (field numbers and types as there), in a private descriptor pool."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="posecontract/tf_example.proto",
                                               package="tensorflow", syntax="proto3")

    def message(name, fields, nested=()):
        msg = proto.message_type.add(name=name)
        for field in fields:
            msg.field.add(**field)
        for sub in nested:
            msg.nested_type.add().CopyFrom(sub)
        return msg

    for name, kind in (("BytesList", F.TYPE_BYTES), ("FloatList", F.TYPE_FLOAT),
                       ("Int64List", F.TYPE_INT64)):
        message(name, [dict(name="value", number=1, label=F.LABEL_REPEATED, type=kind)])
    feature = message("Feature", [
        dict(name="bytes_list", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
             type_name=".tensorflow.BytesList", oneof_index=0),
        dict(name="float_list", number=2, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
             type_name=".tensorflow.FloatList", oneof_index=0),
        dict(name="int64_list", number=3, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
             type_name=".tensorflow.Int64List", oneof_index=0)])
    feature.oneof_decl.add(name="kind")
    entry = descriptor_pb2.DescriptorProto(name="FeatureEntry")
    entry.field.add(name="key", number=1, label=F.LABEL_OPTIONAL, type=F.TYPE_STRING)
    entry.field.add(name="value", number=2, label=F.LABEL_OPTIONAL, type=F.TYPE_MESSAGE,
                    type_name=".tensorflow.Feature")
    entry.options.map_entry = True
    message("Features", [dict(name="feature", number=1, label=F.LABEL_REPEATED,
                              type=F.TYPE_MESSAGE,
                              type_name=".tensorflow.Features.FeatureEntry")], [entry])
    message("Example", [dict(name="features", number=1, label=F.LABEL_OPTIONAL,
                             type=F.TYPE_MESSAGE, type_name=".tensorflow.Features")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    _CLASSES = tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"tensorflow.{name}")) for name in ("Example", "Feature"))
    return _CLASSES


def encode_record(name: str, arrays: Dict[str, np.ndarray]) -> bytes:
    """One record's arrays as a serialized `tf.train.Example` (see the module docstring).
    ValueError naming the record for an array of a dtype a shard cannot store."""
    example_class, _ = _example_classes()
    example = example_class()
    feature = example.features.feature
    feature["_file"].bytes_list.value.append(name.encode())
    for key, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind == "U":
            feature[key].bytes_list.value.extend(
                s.encode("utf-8") for s in array.reshape(-1).tolist())
        elif array.dtype.kind in "biuf":
            feature[key].bytes_list.value.append(np.ascontiguousarray(array).tobytes())
        else:
            raise ValueError(f"{name}: array {key!r} has dtype {array.dtype}, which a shard "
                             f"cannot store")
        feature[f"{key}/shape"].int64_list.value.extend(int(n) for n in array.shape)
        feature[f"{key}/dtype"].bytes_list.value.append(array.dtype.str.encode())
    return example.SerializeToString(deterministic=True)


def decode_record(payload: bytes, where: str = "record") -> Dict[str, np.ndarray]:
    """The arrays of a serialized record (`encode_record`'s inverse); `_file` is left out.
    ValueError naming `where` when the bytes are not a record."""
    example_class, _ = _example_classes()
    try:
        features = example_class.FromString(bytes(payload)).features.feature
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
    except Exception as error:  # protobuf's DecodeError, a missing shape, a bad dtype
        raise ValueError(f"{where}: not a record ({type(error).__name__}: {error})") from None
    return arrays


def check_payload(payload: bytes, location: dict, where: str) -> bytes:
    """`payload` if it is the record `location` (an index entry) names: same length and
    CRC-32; else ValueError naming `where` (a truncated or corrupted shard)."""
    if len(payload) != int(location["length"]) or zlib.crc32(payload) != location["crc32"]:
        raise ValueError(f"{where}: record {location['file']} at byte {location['offset']} "
                         f"does not match the index (truncated or corrupted shard)")
    return payload


class ShardWriter:
    """Appends records to TFRecord shards; each shard is handed whole to `put(name, bytes)`
    (which writes it atomically: temporary name and rename, or one object-store put), so no
    shard is ever half-written under its name.

    A shard is closed once it holds `shard_mb` MB (a record is never split; a shard holds at
    least one). Records keep the order they are added in. `finish()` closes the last shard
    and returns the index's `records` and `shards` lists.
    """

    def __init__(self, put: Callable[[str, bytes], None], shard_mb: float = 128.0):
        if not shard_mb > 0:
            raise ValueError(f"shard size must be positive, got {shard_mb} MB")
        self._put = put
        self._limit = int(shard_mb * (1 << 20))
        self._parts: List[bytes] = []
        self._pending: List[dict] = []
        self._size = 0
        self.records: List[dict] = []
        self.shards: List[dict] = []

    def add(self, file: str, payload: bytes) -> None:
        """Appends the record `file` (its path in the dataset) with payload `payload`."""
        self.add_framed(*framed_record(file, payload))

    def add_framed(self, file: str, framed: bytes, crc32: int) -> None:
        """Appends a record framed elsewhere (`framed_record`, e.g. by a worker process)."""
        length = len(framed) - HEADER - FOOTER
        if self._parts and self._size + length > self._limit:
            self._close()
        self._pending.append({"file": file, "offset": self._size, "length": length,
                              "crc32": crc32})
        self._parts.append(framed)
        self._size += len(framed)

    def _close(self) -> None:
        name = SHARD_PATTERN.format(index=len(self.shards))
        self._put(name, b"".join(self._parts))
        self.records.extend(dict(location, shard=name) for location in self._pending)
        self.shards.append({"file": name, "records": len(self._pending), "bytes": self._size})
        self._parts, self._pending, self._size = [], [], 0

    def finish(self) -> Tuple[List[dict], List[dict]]:
        if self._parts:
            self._close()
        return self.records, self.shards


def index_data(manifest: dict, records: List[dict], shards: List[dict], arrays: str) -> dict:
    """The `shards.json` index. Every manifest record must be in `records` (ValueError)."""
    missing = {e["file"] for e in manifest["records"]} - {r["file"] for r in records}
    if missing:
        raise ValueError(f"the shards lack {len(missing)} record(s) of the manifest, e.g. "
                         f"{sorted(missing)[0]}")
    return {"format": FORMAT, "arrays": arrays, "manifest": manifest, "records": records,
            "shards": shards}


def encode_index(index: dict) -> bytes:
    return (json.dumps(index) + "\n").encode()


def parse_index(data: bytes, where: str) -> dict:
    """The index in `data`; ValueError naming `where` when it is not JSON or not ours."""
    try:
        index = json.loads(data)
    except ValueError as error:
        raise ValueError(f"{where}: not JSON ({error})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ValueError(f"{where}: not a {FORMAT} index")
    return index


#: Files that mark a synth dataset folder: a shard set written there would mix with it (and
#: its splits/ be replaced by the shards' copy).
DATASET_MARKERS = ("manifest.json", "settings.json")


def check_shards_folder(names: List[str], where: str) -> None:
    """ValueError when the listing `names` of the shard folder `where` is a synth dataset's:
    shards go into a folder of their own."""
    found = [n for n in DATASET_MARKERS if n in names]
    if found:
        raise ValueError(f"{where}: holds a synth dataset ({found[0]}); write the shards to "
                         f"a folder of their own")


def stale_shards(names: List[str], index: Optional[dict]) -> List[str]:
    """Shard files among `names` (a folder's listing) that `index` does not name: left by an
    earlier write with more shards, or by a run killed before its index."""
    keep = {s["file"] for s in index["shards"]} if index else set()
    return [n for n in names if n.startswith(SHARD_PREFIX) and n.endswith(".tfrecord")
            and n not in keep]
