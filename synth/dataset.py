"""A dataset on disk: clip records, their manifest, failures and splits.

Layout of DATASET_DIR:
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

Every file is written to a temporary name in the same folder and then renamed, so a crash
never leaves a half-written file under a final name.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pathlib
import tempfile
import time
from typing import Dict, Iterable, List

import numpy as np

from posecontract.dataset_format import (BASE_CONVENTION, MANIFEST,  # noqa: F401
                                         load_record, read_json, read_manifest)

FAILURES = "failures.json"
FORMAT_VERSION = 1


SETTINGS = "settings.json"
TMP_SUFFIX = ".tmp"
#: Leftover temporary files whose writer cannot be identified are removed once this old.
STALE_TMP_SECONDS = 600.0


def _file_mode() -> int:
    """The mode `open` gives new files (0666 less the umask); `mkstemp` alone leaves 0600,
    which would keep a dataset from other users."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: pathlib.Path):
    """Yields a temporary path beside `path`; renames it to `path` when the block succeeds.

    The temporary name is ``.<name>.<pid>.<random>.tmp``: `remove_leftovers` can tell the
    files of dead writers from those of a live one.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX,
                               dir=path.parent)
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(dataset_dir: pathlib.Path) -> int:
    """Removes the temporary files (``.*.tmp``) that killed runs left in the dataset; returns
    how many. A file whose writer (the pid in its name) still runs on this machine is kept;
    one without a pid only once older than `STALE_TMP_SECONDS`."""
    removed = 0
    now = time.time()
    for tmp in pathlib.Path(dataset_dir).rglob(f".*{TMP_SUFFIX}"):
        parts = tmp.name.split(".")
        pid = next((int(p) for p in parts[2:-2] if p.isdigit()), None)
        try:
            if pid is not None and pid != os.getpid() and _pid_alive(pid):
                continue
            if pid is None and now - tmp.stat().st_mtime < STALE_TMP_SECONDS:
                continue
            tmp.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def write_json(path: pathlib.Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def write_record(path: pathlib.Path, record: Dict[str, np.ndarray]) -> str:
    """Writes a record as .npz atomically; returns the file's SHA-256."""
    buffer = io.BytesIO()
    np.savez(buffer, **record)
    data = buffer.getvalue()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def clips_dir(dataset_dir: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(dataset_dir) / "clips"


def record_path(dataset_dir: pathlib.Path, clip_key: str, avatar: str) -> pathlib.Path:
    return clips_dir(dataset_dir) / f"{clip_key}__{avatar}.npz"


def sidecar_path(dataset_dir: pathlib.Path, clip_key: str) -> pathlib.Path:
    return clips_dir(dataset_dir) / f"{clip_key}.json"


def finished_entries(dataset_dir: pathlib.Path, clip_key: str, avatars: Iterable[str]):
    """The manifest entries of a finished clip whose records all exist, else None."""
    sidecar = sidecar_path(dataset_dir, clip_key)
    if not sidecar.is_file():
        return None
    entries = read_json(sidecar)
    have = {e["avatar"] for e in entries}
    if not set(avatars) <= have:
        return None
    if not all((pathlib.Path(dataset_dir) / e["file"]).is_file() for e in entries):
        return None
    return [e for e in entries if e["avatar"] in set(avatars)]


def keep_finished_clips(dataset_dir: pathlib.Path, entries: List[dict], failures: List[dict],
                        avatars):
    """(entries, failures, kept clip keys): `entries` plus those of every clip finished by an
    earlier run (sidecar and records on disk, all `avatars`: names, or a function of the
    clip key giving them) that this run did not produce, and `failures` less the clips so
    kept (matched on the entries' ``source_path``).

    A later run never drops a finished clip because it cannot read the file now (another
    joint map, another rig in the folder, a file moved away).
    """
    have = {e["clip_key"] for e in entries}
    kept, kept_keys = [], []
    for sidecar in sorted(clips_dir(dataset_dir).glob("*.json")):
        if sidecar.stem in have:
            continue
        found = finished_entries(dataset_dir, sidecar.stem,
                                 avatars(sidecar.stem) if callable(avatars) else avatars)
        if found:
            kept.extend(found)
            kept_keys.append(sidecar.stem)
    kept_paths = {os.path.realpath(e["source_path"]) for e in kept if e.get("source_path")}
    failures = [f for f in failures if os.path.realpath(f["path"]) not in kept_paths]
    return entries + kept, failures, kept_keys


def write_manifest(dataset_dir: pathlib.Path, entries: List[dict], settings: dict,
                   name: str = MANIFEST) -> pathlib.Path:
    entries = sorted(entries, key=lambda e: (e["clip_key"], e["avatar"]))
    path = pathlib.Path(dataset_dir) / name
    conventions = [n for n in settings.get("keypoints", ()) or ()
                   if all(n in e.get("keypoint_conventions", ()) for e in entries)]
    if all(BASE_CONVENTION in e.get("keypoint_conventions", [BASE_CONVENTION])
           for e in entries):
        conventions.append(BASE_CONVENTION)
    write_json(path, {"format_version": FORMAT_VERSION, "settings": settings,
                      "keypoint_conventions": list(dict.fromkeys(conventions)),
                      "num_records": len(entries),
                      "num_clips": len({e["clip_key"] for e in entries}),
                      "records": entries})
    return path


class SettingsMismatch(ValueError):
    """A run into a dataset made with other settings; the message names what differs."""


def check_settings(dataset_dir: pathlib.Path, settings: dict, force: bool = False) -> None:
    """Records the settings a dataset is made with (`settings.json`) or checks them.

    A dataset folder that already holds clips made with other settings is refused
    (`SettingsMismatch` naming the folder and each differing setting), since resuming would
    keep clips of the old settings under a manifest of the new ones. With `force` the old
    dataset's files are removed first. Datasets from before `settings.json` are checked
    against their manifest's settings.
    """
    dataset_dir = pathlib.Path(dataset_dir)
    path = dataset_dir / SETTINGS
    old = None
    if path.is_file():
        old = read_json(path)
    elif (dataset_dir / MANIFEST).is_file():
        old = read_json(dataset_dir / MANIFEST).get("settings")
    elif clips_dir(dataset_dir).is_dir() and any(clips_dir(dataset_dir).iterdir()):
        old = {}  # clips of unknown settings
    if old is not None and old != settings:
        if not force:
            changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            detail = ", ".join(f"{k} {old.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise SettingsMismatch(
                f"{dataset_dir}: holds a dataset made with other settings ({detail}); use "
                f"another --out, the same settings, or --force to delete it and start over")
        remove_dataset(dataset_dir)
    write_json(path, settings)


def remove_dataset(dataset_dir: pathlib.Path) -> None:
    """Deletes what `synth.render` writes in `dataset_dir` (and nothing else)."""
    import shutil

    dataset_dir = pathlib.Path(dataset_dir)
    for name in ("clips", "images", "manifests", "splits"):
        shutil.rmtree(dataset_dir / name, ignore_errors=True)
    for name in (MANIFEST, FAILURES, SETTINGS):
        (dataset_dir / name).unlink(missing_ok=True)


class ClipKeyCollision(ValueError):
    """Two source files that would write the same clip key."""


def claim_clip_key(dataset_dir: pathlib.Path, clip_key: str, source: str) -> None:
    """Claims `clip_key` for the source file `source` (a path relative to the mocap folder)
    with an exclusively created ``clips/<clip_key>.source``, so two files whose names map
    to the same key (names sanitised alike, one name in two folders) can never write over
    each other, whatever the worker count. Raises `ClipKeyCollision` naming both files when
    another source holds the key; the same source may claim it again (resume)."""
    path = clips_dir(dataset_dir) / f"{clip_key}.source"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX,
                               dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(source)
        os.chmod(tmp, _file_mode())
        try:  # a hard link is created whole or not at all, and never over another file
            os.link(tmp, path)
            return
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    owner = path.read_text(encoding="utf-8")
    if owner != source:
        raise ClipKeyCollision(f"clip key {clip_key!r} is already taken by {owner}: rename "
                               f"one of the two files")


def verify_dataset(dataset_dir: pathlib.Path) -> List[str]:
    """Checksum mismatches and missing files, as messages (empty when all is well)."""
    problems = []
    for entry in read_manifest(dataset_dir)["records"]:
        path = pathlib.Path(dataset_dir) / entry["file"]
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{path}: checksum mismatch")
    return problems


def replace_splits(dataset_dir: pathlib.Path, splits) -> List[str]:
    """Writes `splits` (name -> Split) and removes split files of earlier runs; returns the
    names, sorted."""
    from .splits import write_splits  # splits sit above the dataset layout in the flow

    written = {pathlib.Path(p).name for p in write_splits(dataset_dir, splits)}
    for old in (pathlib.Path(dataset_dir) / "splits").glob("*.json"):
        if old.name not in written:
            old.unlink()
    return sorted(pathlib.Path(name).stem for name in written)
