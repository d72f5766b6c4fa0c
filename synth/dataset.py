"""A dataset's files: clip records, their manifest, failures and splits.

A dataset is a local folder or a URL (`synth.storage`: any fsspec URL, for object stores);
the functions here take either, or a `synth.storage.Store`. Layout of DATASET_DIR:
    clips/<clip_key>__<avatar>.npz   one record per clip and avatar (`synth.record`)
    clips/<clip_key>.json            sidecar written after all of a clip's records: the clip's
                                     manifest entries (a clip with a sidecar is finished; it
                                     stays in the manifest of later runs, see
                                     `keep_finished_clips`: delete the sidecar to drop it)
    images/<clip_key>__<avatar>/     (--images) PNGs per camera and frame, preview.gif
                                     (`synth.rendering`)
    manifest.json                    every record with its metadata and SHA-256, and the
                                     keypoint conventions every record holds
    failures.json                    clips that could not be read, with the reason
    splits/<name>.json               train/test clip keys (`synth.splits`)
    manifests/shard-K-of-N.json      (sharded runs) a shard's entries, joined by `merge`

Every file is written to a temporary name in the same folder and then renamed (on an object
store: one put), so a crash never leaves a half-written file under a final name.
"""
from __future__ import annotations

import hashlib
import io
import os
import pathlib
import posixpath
from typing import Dict, Iterable, List, Optional

import numpy as np

from posecontract.dataset_format import (BASE_CONVENTION, MANIFEST,  # noqa: F401
                                         load_record, read_json, read_manifest)

from .storage import (STALE_TMP_SECONDS, TMP_SUFFIX, Store, atomic_path,  # noqa: F401
                      open_store)

FAILURES = "failures.json"
FORMAT_VERSION = 1
SETTINGS = "settings.json"


def remove_leftovers(dataset, all_writers_done: bool = False) -> int:
    """Removes the temporary files (``.*.tmp``) that killed runs left in the dataset (a
    folder, URL or `Store`); returns how many (`synth.storage.LocalStore.remove_leftovers`,
    `FsspecStore.remove_leftovers`)."""
    return open_store(dataset).remove_leftovers(all_writers_done)


def write_json(path, data, store: Optional[Store] = None) -> None:
    """`data` as JSON at `path` (a local path; or relative to `store`), atomically."""
    if store is None:
        store, path = open_store(pathlib.Path(path).parent), pathlib.Path(path).name
    store.write_json(str(path), data)


def encode_record(record: Dict[str, np.ndarray]) -> bytes:
    """A record's .npz bytes (`np.savez`: the same arrays give the same bytes)."""
    buffer = io.BytesIO()
    np.savez(buffer, **record)
    return buffer.getvalue()


def write_record(store: Store, rel: str, record: Dict[str, np.ndarray]) -> str:
    """Writes a record as .npz atomically at `rel` in `store`; returns its SHA-256."""
    data = encode_record(record)
    store.write_bytes(rel, data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


CLIPS = "clips"


def clips_dir(dataset_dir: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(dataset_dir) / CLIPS


def record_file(clip_key: str, avatar: str) -> str:
    """A record's path inside the dataset: ``clips/<clip_key>__<avatar>.npz``."""
    return f"{CLIPS}/{clip_key}__{avatar}.npz"


def sidecar_file(clip_key: str) -> str:
    """A clip's sidecar inside the dataset: ``clips/<clip_key>.json``."""
    return f"{CLIPS}/{clip_key}.json"


def record_path(dataset_dir: pathlib.Path, clip_key: str, avatar: str) -> pathlib.Path:
    return pathlib.Path(dataset_dir) / record_file(clip_key, avatar)


def sidecar_path(dataset_dir: pathlib.Path, clip_key: str) -> pathlib.Path:
    return pathlib.Path(dataset_dir) / sidecar_file(clip_key)


def finished_entries(dataset, clip_key: str, avatars: Iterable[str]):
    """The manifest entries of a finished clip whose records all exist, else None.
    dataset: a folder, URL or `Store`."""
    store = open_store(dataset)
    sidecar = sidecar_file(clip_key)
    if not store.isfile(sidecar):
        return None
    entries = store.read_json(sidecar)
    have = {e["avatar"] for e in entries}
    if not set(avatars) <= have:
        return None
    if not all(store.isfile(e["file"]) for e in entries):
        return None
    return [e for e in entries if e["avatar"] in set(avatars)]


def keep_finished_clips(dataset, entries: List[dict], failures: List[dict], avatars):
    """(entries, failures, kept clip keys): `entries` plus those of every clip finished by an
    earlier run (sidecar and records in the dataset, all `avatars`: names, or a function of
    the clip key giving them) that this run did not produce, and `failures` less the clips
    so kept (matched on the entries' ``source_path``).

    A later run never drops a finished clip because it cannot read the file now (another
    joint map, another rig in the folder, a file moved away).
    """
    store = open_store(dataset)
    have = {e["clip_key"] for e in entries}
    kept, kept_keys = [], []
    for name in store.listdir(CLIPS):
        if not name.endswith(".json") or name.startswith("."):
            continue
        key = name[:-len(".json")]
        if key in have:
            continue
        found = finished_entries(store, key, avatars(key) if callable(avatars) else avatars)
        if found:
            kept.extend(found)
            kept_keys.append(key)
    kept_paths = {os.path.realpath(e["source_path"]) for e in kept if e.get("source_path")}
    failures = [f for f in failures if os.path.realpath(f["path"]) not in kept_paths]
    return entries + kept, failures, kept_keys


def manifest_data(entries: List[dict], settings: dict) -> dict:
    """The manifest of `entries` (sorted by clip key and body) made with `settings`."""
    entries = sorted(entries, key=lambda e: (e["clip_key"], e["avatar"]))
    conventions = [n for n in settings.get("keypoints", ()) or ()
                   if all(n in e.get("keypoint_conventions", ()) for e in entries)]
    if all(BASE_CONVENTION in e.get("keypoint_conventions", [BASE_CONVENTION])
           for e in entries):
        conventions.append(BASE_CONVENTION)
    return {"format_version": FORMAT_VERSION, "settings": settings,
            "keypoint_conventions": list(dict.fromkeys(conventions)),
            "num_records": len(entries),
            "num_clips": len({e["clip_key"] for e in entries}),
            "records": entries}


def write_manifest(dataset, entries: List[dict], settings: dict, name: str = MANIFEST) -> str:
    """Writes the manifest (`manifest_data`) as `name` in the dataset; returns its path or
    URL."""
    store = open_store(dataset)
    store.write_json(name, manifest_data(entries, settings))
    return store.url(name)


class SettingsMismatch(ValueError):
    """A run into a dataset made with other settings; the message names what differs."""


def check_settings(dataset, settings: dict, force: bool = False) -> None:
    """Records the settings a dataset is made with (`settings.json`) or checks them.

    A dataset (folder, URL or `Store`) that already holds clips made with other settings is
    refused (`SettingsMismatch` naming the dataset and each differing setting), since
    resuming would keep clips of the old settings under a manifest of the new ones. With
    `force` the old dataset's files are removed first. Datasets from before `settings.json`
    are checked against their manifest's settings.
    """
    store = open_store(dataset)
    old = None
    if store.isfile(SETTINGS):
        old = store.read_json(SETTINGS)
    elif store.isfile(MANIFEST):
        old = store.read_json(MANIFEST).get("settings")
    elif store.listdir(CLIPS):
        old = {}  # clips of unknown settings
    if old is not None and old != settings:
        if not force:
            changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            detail = ", ".join(f"{k} {old.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise SettingsMismatch(
                f"{store.url()}: holds a dataset made with other settings ({detail}); use "
                f"another --out, the same settings, or --force to delete it and start over")
        remove_dataset(store)
    store.write_json(SETTINGS, settings)


def remove_dataset(dataset) -> None:
    """Deletes what `synth.render` writes in the dataset (and nothing else)."""
    store = open_store(dataset)
    for name in (CLIPS, "images", "manifests", "splits"):
        store.remove_tree(name)
    for name in (MANIFEST, FAILURES, SETTINGS):
        store.remove(name)


class ClipKeyCollision(ValueError):
    """Two source files that would write the same clip key."""


def claim_clip_key(dataset, clip_key: str, source: str) -> None:
    """Claims `clip_key` for the source file `source` (a path relative to the mocap folder)
    with an exclusively created ``clips/<clip_key>.source`` (`synth.storage.Store.claim`),
    so two files whose names map to the same key (names sanitised alike, one name in two
    folders) can never write over each other, whatever the worker count. Raises
    `ClipKeyCollision` naming both files when another source holds the key; the same
    source may claim it again (resume)."""
    owner = open_store(dataset).claim(f"{CLIPS}/{clip_key}.source", source)
    if owner != source:
        raise ClipKeyCollision(f"clip key {clip_key!r} is already taken by {owner}: rename "
                               f"one of the two files")


def verify_dataset(dataset) -> List[str]:
    """Checksum mismatches and missing files of a dataset (folder, URL or `Store`), as
    messages (empty when all is well)."""
    store = open_store(dataset)
    problems = []
    for entry in read_manifest(store.path() if store.is_local else store.url())["records"]:
        if not store.isfile(entry["file"]):
            problems.append(f"{store.url(entry['file'])}: missing")
        elif hashlib.sha256(store.read_bytes(entry["file"])).hexdigest() != entry["sha256"]:
            problems.append(f"{store.url(entry['file'])}: checksum mismatch")
    return problems


def replace_splits(dataset, splits) -> List[str]:
    """Writes `splits` (name -> Split) and removes split files of earlier runs; returns the
    names, sorted."""
    from .splits import write_splits  # splits sit above the dataset layout in the flow

    store = open_store(dataset)
    written = {posixpath.basename(str(p)) for p in write_splits(store, splits)}
    for old in store.listdir("splits"):
        if old.endswith(".json") and not old.startswith(".") and old not in written:
            store.remove(f"splits/{old}")
    return sorted(name[:-len(".json")] for name in written)
