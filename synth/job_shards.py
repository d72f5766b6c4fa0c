"""TFRecord shards written by the generation job itself (`python -m synth.render
--shards-out SHARDS_DIR|URL`), so a cluster never needs the dataset folder step
(`python -m vp3dkeras.data.shards`). Same format, same writer (`posecontract.shard_format`),
no TensorFlow in this process (PLATFORM.md).

Each worker encodes and frames its clip's records (`clip_payloads`, in the worker: the CPU
work spreads over the cluster) and returns them with its result; the driver (`JobShards`)
only appends them to the current shard as clips finish, in the order of the job's clip list (results that come
early wait for the clips before them), so the shards are the same bytes whatever the engine,
worker count or finishing order. Clips an earlier run finished and this run only keeps
(`synth.dataset.keep_finished_clips`) are read back from the dataset and appended last, in
manifest order.

Atomicity: each shard is one atomic write (`synth.storage.Store.write_bytes`); the old index
is removed before the first shard and the new one written after the last, so a reader never
sees an index naming a missing or half-written shard, and a run killed half-way leaves no
index. Shard files no index names (a killed run's, an earlier run's with more shards) are
removed once the new index is there. A resumed run writes the shards whole again (finished
clips' records are read back), equal to those of one uninterrupted run.

`--shard K/N` runs (a batch scheduler's tasks) each write their own shard set under
``SHARDS_DIR/part-K-of-N/``; `python -m synth.merge DATASET --shards-out SHARDS_DIR` joins
them with one index naming every part's shards (`join_parts`; nothing is copied).

Versus the shards written from the folder: the same index manifest, the same records and
arrays (byte for byte), so `ShardSource` gives the same batches; the order of records in the
shards (job order here, manifest order there) and so the shard boundaries may differ.
"""
from __future__ import annotations

import concurrent.futures
import pathlib
import re
import struct
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from posecontract.dataset_format import record_from_bytes
from posecontract.shard_format import (INDEX, ShardWriter, check_shards_folder,
                                       encode_index, encode_record, framed_record, index_data,
                                       parse_index, select_arrays, stale_shards)

from . import storage

#: (record file, the record framed as one TFRecord, its payload's CRC-32) per record
#: (`posecontract.shard_format.framed_record`).
Payloads = List[Tuple[str, bytes, int]]


def clip_payloads(store: storage.Store, entries: List[dict], arrays: str,
                  records: Optional[Dict[str, Dict[str, np.ndarray]]] = None) -> Payloads:
    """Each of a clip's manifest `entries` encoded and framed for a shard (`Payloads`), in
    their order. records: the records just written, by file; others (a resumed clip's) are
    read back from `store` and checked against the entry's SHA-256 (`RecordError`)."""
    payloads = []
    for entry in entries:
        record = (records or {}).get(entry["file"])
        if record is None:
            record = record_from_bytes(store.read_bytes(entry["file"]),
                                       store.url(entry["file"]), sha256=entry.get("sha256"))
        payloads.append(framed_record(entry["file"], encode_record(
            entry["file"], select_arrays(record, arrays))))
    return payloads


def _same_place(a: storage.Store, b: storage.Store) -> bool:
    """Whether two stores are one folder (a local path and its ``file://`` URL alike)."""
    def where(store):
        if store.is_local:
            return store.path().resolve()
        url = store.url().rstrip("/")
        return pathlib.Path(url[len("file://"):]).resolve() if url.startswith("file://") \
            else url
    return where(a) == where(b)


def check_target(target, dataset=None) -> storage.Store:
    """The store of the shard folder `target`, checked before anything is written: ValueError
    when it is the dataset `dataset` itself, holds a synth dataset, or is a file (and
    `synth.storage`'s error for a URL that cannot be opened)."""
    store = storage.open_store(target)
    if dataset is not None and _same_place(store, storage.open_store(dataset)):
        raise ValueError(f"{store.url()}: --shards-out is the dataset folder itself; write "
                         f"the shards to a folder of their own")
    if store.isfile(""):
        raise ValueError(f"{store.url()}: a file, not a folder for shards")
    if store.isdir(""):
        check_shards_folder(store.listdir(), store.url())
    return store


class JobShards:
    """The shards of one generation job (see the module docstring).

    target: folder, URL or `synth.storage.Store`; order: the job's clips (as `add` names
    them), whose records go into the shards in this order; arrays: "all" or "training"
    (`posecontract.shard_format.select_arrays`); shard_mb: shard size.
    """

    #: Payloads of clips that finished before an earlier one are held in memory up to this
    #: many bytes, beyond that in local temporary files (a slow early clip on a large
    #: cluster would otherwise hold back gigabytes).
    MEMORY_BYTES = 256 << 20
    #: Closed shards written at once (threads): an object store's upload bandwidth grows
    #: with concurrent puts; so does memory (a shard each).
    UPLOADS = 4

    def __init__(self, target, order: Sequence[str], arrays: str = "all",
                 shard_mb: float = 128.0):
        select_arrays({}, arrays)  # ValueError for an unknown kind
        self.store = check_target(target)
        self.arrays = arrays
        self.store.makedirs()
        self.store.remove(INDEX)  # from here until `finish`, the shards are invisible
        self._uploads = _Uploads(self.store.write_bytes, self.UPLOADS)
        self.writer = ShardWriter(self._uploads, shard_mb)
        self._position = {name: i for i, name in enumerate(order)}
        self._waiting: Dict[int, object] = {}  # position -> payloads, or a spill file
        self._held = 0
        self._next = 0
        self._files = set()
        self._spill: Optional[tempfile.TemporaryDirectory] = None

    def add(self, clip: str, payloads: Optional[Payloads]) -> None:
        """The payloads of the job's clip `clip` (None or empty for a failed clip)."""
        position = self._position[clip]
        payloads = payloads or []
        size = sum(len(framed) for _, framed, _ in payloads)
        if position != self._next and self._held + size > self.MEMORY_BYTES:
            self._waiting[position] = self._spill_to_disk(position, payloads)
        else:
            self._waiting[position] = payloads
            self._held += size
        while self._next in self._waiting:
            waiting = self._waiting.pop(self._next)
            if isinstance(waiting, pathlib.Path):
                waiting = self._read_spilled(waiting)
            else:
                self._held -= sum(len(framed) for _, framed, _ in waiting)
            for file, framed, crc32 in waiting:
                if file not in self._files:
                    self.writer.add_framed(file, framed, crc32)
                    self._files.add(file)
            self._next += 1
        if not self._waiting and self._spill is not None:
            self._spill.cleanup()
            self._spill = None

    def abort(self) -> None:
        """After a failure: waits for the shard writes under way (their errors dropped), so
        none is left half-done when the caller reports; no index is written."""
        self._uploads.wait(raise_errors=False)
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None

    def _spill_to_disk(self, position: int, payloads: Payloads) -> pathlib.Path:
        if self._spill is None:
            self._spill = tempfile.TemporaryDirectory(prefix="synth-shards-")
        path = pathlib.Path(self._spill.name) / f"{position}.bin"
        with open(path, "wb") as handle:
            for file, framed, crc32 in payloads:
                name = file.encode()
                handle.write(struct.pack("<IQI", len(name), len(framed), crc32))
                handle.write(name)
                handle.write(framed)
        return path

    @staticmethod
    def _read_spilled(path: pathlib.Path) -> Payloads:
        data = path.read_bytes()
        path.unlink()
        payloads, offset = [], 0
        while offset < len(data):
            name_length, length, crc32 = struct.unpack_from("<IQI", data, offset)
            offset += struct.calcsize("<IQI")
            name = data[offset:offset + name_length].decode()
            offset += name_length
            payloads.append((name, data[offset:offset + length], crc32))
            offset += length
        return payloads

    def finish(self, manifest: dict, dataset, splits: bool = True) -> dict:
        """Appends the manifest's records no clip of this job gave (kept clips, read from
        `dataset`), writes the splits (unless not `splits`) and the index; returns the
        index. Call once every clip was added."""
        if self._waiting or self._next != len(self._position):
            raise RuntimeError(f"{self.store.url()}: {len(self._position) - self._next} "
                               f"clips of the job never reported")
        dataset = storage.open_store(dataset)
        try:
            for entry in manifest["records"]:  # one at a time: all may be kept (--limit)
                if entry["file"] not in self._files:
                    self.writer.add_framed(*clip_payloads(dataset, [entry], self.arrays)[0])
                    self._files.add(entry["file"])
            records, shards = self.writer.finish()
        except BaseException:
            self.abort()
            raise
        self._uploads.wait()  # every shard written before the index names it
        index = index_data(manifest, records, shards, self.arrays)
        if splits:
            copy_splits(dataset, self.store)
        self.store.write_bytes(INDEX, encode_index(index))
        for name in stale_shards(self.store.listdir(), index):
            self.store.remove(name)
        return index


class _Uploads:
    """`put(name, data)` run in up to `workers` threads; an error of any put is raised by
    the next call or by `wait` (which waits for all)."""

    def __init__(self, put, workers: int):
        self._put = put
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, workers),
                                                           thread_name_prefix="shard-put")
        self._workers = max(1, workers)
        self._running: List[concurrent.futures.Future] = []

    def __call__(self, name: str, data: bytes) -> None:
        self._collect(self._workers - 1)
        self._running.append(self._pool.submit(self._put, name, data))

    def _collect(self, keep: int) -> None:
        while len(self._running) > keep:
            self._running.pop(0).result()
        for future in [f for f in self._running if f.done()]:
            self._running.remove(future)
            future.result()

    def wait(self, raise_errors: bool = True) -> None:
        try:
            if raise_errors:
                self._collect(0)
        finally:
            self._pool.shutdown(wait=True)


def copy_splits(dataset: storage.Store, store: storage.Store) -> None:
    """The dataset's split files, byte for byte, into the shard set (others removed)."""
    names = [n for n in dataset.listdir("splits") if n.endswith(".json")
             and not n.startswith(".")]
    for name in names:
        store.write_bytes(f"splits/{name}", dataset.read_bytes(f"splits/{name}"))
    for name in store.listdir("splits"):
        if name.endswith(".json") and name not in names:
            store.remove(f"splits/{name}")


def part_name(shard: Tuple[int, int]) -> str:
    """The folder of a `--shard K/N` run's shard set inside SHARDS_DIR: ``part-K-of-N``."""
    return f"part-{shard[0]}-of-{shard[1]}"


_PART = re.compile(r"part-(\d+)-of-(\d+)")


def read_parts(target) -> Tuple[List[dict], List[dict], str]:
    """(records, shards, arrays) of every ``part-K-of-N`` shard set in `target`, with their
    paths made relative to it; ValueError naming the problem (see `join_parts`).
    `synth.merge` calls it before it writes anything."""
    store = storage.open_store(target)
    parts = sorted(((int(m[1]), int(m[2]), n) for n in store.listdir()
                    for m in [_PART.fullmatch(n)] if m))
    if not parts:
        raise ValueError(f"{store.url()}: no part-K-of-N shard sets (written by synth.render "
                         f"--shard K/N --shards-out)")
    if len({count for _, count, _ in parts}) > 1:
        raise ValueError(f"{store.url()}: shard sets of runs with different N: "
                         f"{', '.join(n for _, _, n in parts)}")
    records, shards, arrays = [], [], set()
    for _, _, name in parts:
        if not store.isfile(f"{name}/{INDEX}"):
            raise ValueError(f"{store.url(name)}: no {INDEX}; its run did not finish (run it "
                             f"again, then merge)")
        index = parse_index(store.read_bytes(f"{name}/{INDEX}"), store.url(f"{name}/{INDEX}"))
        arrays.add(index["arrays"])
        records += [dict(r, shard=f"{name}/{r['shard']}") for r in index["records"]]
        shards += [dict(s, file=f"{name}/{s['file']}") for s in index["shards"]]
    if len(arrays) > 1:
        raise ValueError(f"{store.url()}: parts written with different --shards-arrays")
    return records, shards, arrays.pop()


def join_parts(target, manifest: dict, dataset) -> dict:
    """Joins the shard sets that `--shard K/N --shards-out SHARDS_DIR` runs wrote (one per
    run, under ``SHARDS_DIR/part-K-of-N/``) into one shard set: an index at `target` naming
    every part's shards in place (no shard is copied), with the merged `manifest` and the
    splits of `dataset` (`python -m synth.merge --shards-out`). ValueError naming the
    problem: no parts, parts of different N, a part without its index (its run did not
    finish), parts of different arrays, or a manifest record no part holds."""
    store = storage.open_store(target)
    dataset = storage.open_store(dataset)
    records, shards, arrays = read_parts(store)
    try:
        index = index_data(manifest, records, shards, arrays)
    except ValueError as error:
        raise ValueError(f"{store.url()}: {error}") from None
    copy_splits(dataset, store)
    store.write_bytes(INDEX, encode_index(index))
    for name in stale_shards(store.listdir(), index):  # a shard set written here before
        store.remove(name)
    return index
