"""Where a dataset is written: a local folder, or any URL fsspec opens (object stores).

`open_store(target)` gives the `Store` every writer of `synth` goes through (`synth.dataset`,
`synth.render`, `synth.splits`, `synth.merge`); paths inside a store are relative, with
``/`` separators (``clips/<clip_key>__<avatar>.npz``).

- A plain path (``out``, ``/data/set``) is a `LocalStore`: the operating system's calls as
  before, each file written to ``.<name>.<pid>.<random>.tmp`` beside its target and renamed
  (`os.replace`), clip keys claimed by a hard link (created whole or not at all).
- A URL (``s3://bucket/set``, ``gs://...``, ``file:///...``, ``memory://...``; any protocol
  fsspec knows, https://filesystem-spec.readthedocs.io) is an `FsspecStore`. On an object
  store (`OBJECT_STORES`: no rename, but a single put is atomic: the object appears whole or
  not at all) each file is one put. On a file system reached through fsspec (``file://``,
  SFTP, ...) each file is put under a temporary name and moved, as locally. Clip keys are
  claimed with fsspec's exclusive create (``open(path, "xb")``: a conditional put,
  If-None-Match, in s3fs, fsspec/s3fs#917; adlfs; local files); where a driver has none, with
  a check before the put (a race between two files of one key that start in the same
  instant is then not caught).

The fsspec drivers of cloud stores are the user's install (``pip install s3fs`` / ``gcsfs``
/ ``adlfs``); fsspec names the missing package, and `open_store` turns that into ValueError.
Errors of the store itself are OSError (fsspec's convention), which the CLIs report in one
line.
"""
from __future__ import annotations

import contextlib
import json
import os
import pathlib
import posixpath
import shutil
import tempfile
import time
import uuid
from typing import List, Union

from posecontract.dataset_format import OBJECT_STORE_PROTOCOLS, is_url  # noqa: F401

TMP_SUFFIX = ".tmp"
#: Leftover temporary files whose writer cannot be identified are removed once this old.
STALE_TMP_SECONDS = 600.0
#: fsspec protocols whose stores have atomic single puts and no rename (an object appears
#: whole or not at all). Others are written under a temporary name and moved.
OBJECT_STORES = OBJECT_STORE_PROTOCOLS
def open_store(target: Union[str, os.PathLike, "Store"]) -> "Store":
    """The store at `target`: a `Store` (returned as it is), a URL or a local path.
    ValueError (one line) for a URL whose protocol fsspec does not know or whose driver is
    not installed."""
    if isinstance(target, Store):
        return target
    if is_url(str(target)):
        return FsspecStore(str(target))
    return LocalStore(target)


def in_process(target) -> bool:
    """Whether `target` is a URL of a file system that lives in this process only
    (fsspec's ``memory://``), which worker processes cannot share."""
    return is_url(str(target)) and str(target).lower().startswith("memory://")


def _file_mode() -> int:
    """The mode `open` gives new files (0666 less the umask); `mkstemp` alone leaves 0600,
    which would keep a dataset from other users."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: pathlib.Path):
    """Yields a temporary path beside `path`; renames it to `path` when the block succeeds.

    The temporary name is ``.<name>.<pid>.<random>.tmp``: `LocalStore.remove_leftovers` can
    tell the files of dead writers from those of a live one.
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


class Store:
    """A dataset's root; every method takes a path relative to it (``/`` separators)."""

    #: A local folder (`path` gives real paths: images render straight into it).
    is_local = False

    def url(self, rel: str = "") -> str:
        """The full path or URL of `rel`, for messages and for readers."""
        raise NotImplementedError

    def read_json(self, rel: str):
        return json.loads(self.read_bytes(rel).decode("utf-8"))

    def write_json(self, rel: str, data) -> None:
        """`data` as indented JSON, atomically."""
        self.write_bytes(rel, (json.dumps(data, indent=1, sort_keys=False) + "\n").encode())

    def __str__(self) -> str:
        return self.url()

    # Interface: makedirs, isfile, isdir, read_bytes, write_bytes, put_tree, remove,
    # remove_tree, listdir, claim, remove_leftovers, size.


class LocalStore(Store):
    """A dataset folder on this machine (see the module docstring)."""

    is_local = True

    def __init__(self, root):
        self.root = pathlib.Path(root)

    def path(self, rel: str = "") -> pathlib.Path:
        return self.root / rel if rel else self.root

    def url(self, rel: str = "") -> str:
        return str(self.path(rel))

    def makedirs(self, rel: str = "") -> None:
        self.path(rel).mkdir(parents=True, exist_ok=True)

    def isfile(self, rel: str) -> bool:
        return self.path(rel).is_file()

    def isdir(self, rel: str) -> bool:
        return self.path(rel).is_dir()

    def size(self, rel: str) -> int:
        return self.path(rel).stat().st_size

    def read_bytes(self, rel: str) -> bytes:
        return self.path(rel).read_bytes()

    def write_bytes(self, rel: str, data: bytes) -> None:
        with atomic_path(self.path(rel)) as tmp:
            tmp.write_bytes(data)

    def put_tree(self, local_dir: pathlib.Path, rel: str) -> None:
        """Replaces the folder `rel` with a copy of the local folder `local_dir`."""
        target = self.path(rel)
        if pathlib.Path(local_dir).resolve() == target.resolve():
            return
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(local_dir, target)

    def remove(self, rel: str) -> None:
        self.path(rel).unlink(missing_ok=True)

    def remove_tree(self, rel: str) -> None:
        shutil.rmtree(self.path(rel), ignore_errors=True)

    def listdir(self, rel: str = "") -> List[str]:
        """Sorted names in the folder `rel` (empty when it is missing)."""
        folder = self.path(rel)
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def claim(self, rel: str, text: str) -> str:
        """Creates `rel` holding `text` unless it exists; returns the text it holds."""
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX,
                                   dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, _file_mode())
            try:  # a hard link is created whole or not at all, and never over another file
                os.link(tmp, path)
                return text
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
        return path.read_text(encoding="utf-8")

    def remove_leftovers(self, all_writers_done: bool = False) -> int:
        """Removes the temporary files (``.*.tmp``) that killed runs left; returns how many.
        A file whose writer (the pid in its name) still runs on this machine is kept; one
        without a pid only once older than `STALE_TMP_SECONDS`. `all_writers_done` (every
        writer of this dataset has finished) is not needed here: pids tell."""
        removed = 0
        now = time.time()
        for tmp in self.root.rglob(f".*{TMP_SUFFIX}"):
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


class FsspecStore(Store):
    """A dataset at a URL, through fsspec (see the module docstring)."""

    def __init__(self, url: str):
        import fsspec.core

        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as error:  # unknown protocol, driver not installed
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ValueError(f"{url}: cannot open this URL with fsspec ({detail})") from None
        self.root = self.root.rstrip("/") or "/"
        self._url = url.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) \
            else (self.fs.protocol,)
        self.object_store = bool(set(protocols) & OBJECT_STORES)

    def _path(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel else self.root

    def url(self, rel: str = "") -> str:
        return f"{self._url}/{rel}" if rel else self._url

    def makedirs(self, rel: str = "") -> None:
        if not self.object_store:  # object stores have no folders to make
            self.fs.makedirs(self._path(rel), exist_ok=True)

    def isfile(self, rel: str) -> bool:
        return self.fs.isfile(self._path(rel))

    def isdir(self, rel: str) -> bool:
        return self.fs.isdir(self._path(rel))

    def size(self, rel: str) -> int:
        return int(self.fs.size(self._path(rel)))

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self._path(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self._path(rel)
        if self.object_store:  # one put: the object appears whole or not at all
            self.fs.pipe_file(path, data)
            return
        parent, name = posixpath.split(path)
        self.fs.makedirs(parent, exist_ok=True)
        tmp = posixpath.join(parent, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
                                     f"{TMP_SUFFIX}")
        try:
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.rm_file(tmp)
            raise

    def put_tree(self, local_dir: pathlib.Path, rel: str) -> None:
        """Replaces the folder `rel` with the files of the local folder `local_dir` (each
        one written as by `write_bytes`)."""
        self.remove_tree(rel)
        local_dir = pathlib.Path(local_dir)
        for path in sorted(local_dir.rglob("*")):
            if path.is_file():
                self.write_bytes(f"{rel}/{path.relative_to(local_dir).as_posix()}",
                                 path.read_bytes())

    def remove(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(rel))

    def remove_tree(self, rel: str) -> None:
        path = self._path(rel)
        if self.fs.exists(path):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(path, recursive=True)

    def listdir(self, rel: str = "") -> List[str]:
        path = self._path(rel)
        try:
            names = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        return sorted({posixpath.basename(n.rstrip("/")) for n in names} - {""})

    def claim(self, rel: str, text: str) -> str:
        path = self._path(rel)
        if not self.object_store:
            self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        try:
            with self.fs.open(path, "xb") as handle:  # exclusive create
                handle.write(text.encode("utf-8"))
            return text
        except FileExistsError:
            pass
        except (NotImplementedError, ValueError, TypeError):  # no exclusive create here
            if not self.fs.exists(path):
                self.fs.pipe_file(path, text.encode("utf-8"))
                return text
        except OSError:  # a store may report the failed precondition as another error
            if not self.fs.exists(path):
                raise
        return self.fs.cat_file(path).decode("utf-8")

    def remove_leftovers(self, all_writers_done: bool = False) -> int:
        """Removes temporary files (``.*.tmp``) of killed writers; returns how many. Their
        writers may run on other machines, so before a run only files older than
        `STALE_TMP_SECONDS` go (when the store gives a time); once `all_writers_done`, all.
        Object stores have none (each file is one put)."""
        if self.object_store:
            return 0
        removed = 0
        now = time.time()
        for path in self.fs.find(self.root):
            name = posixpath.basename(path)
            if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
                continue
            if not all_writers_done:
                try:
                    modified = self.fs.modified(path).timestamp()
                except (NotImplementedError, OSError, AttributeError):
                    continue
                if now - modified < STALE_TMP_SECONDS:
                    continue
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(path)
                removed += 1
        return removed


def local_staging(store: Store):
    """A context giving a local folder to build files in before `Store.put_tree`: the
    store's own folder when it is local (nothing to copy), else a temporary folder."""
    if store.is_local:
        return contextlib.nullcontext(store.path())
    return _temporary_folder()


@contextlib.contextmanager
def _temporary_folder():
    with tempfile.TemporaryDirectory(prefix="synth-stage-") as folder:
        yield pathlib.Path(folder)


def join(target: Union[str, os.PathLike], name: str) -> str:
    """`name` under `target` (a URL or a local path), as a string."""
    return f"{str(target).rstrip('/')}/{name}" if is_url(str(target)) \
        else str(pathlib.Path(target) / name)

