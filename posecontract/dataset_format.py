"""The synth dataset's on-disk format, as its readers need it: manifest, records, splits.

`synth` writes datasets (`synth.dataset`, `synth.splits`); the input pipeline reads them
through this module, so the model side never imports the generator. Pure Python/NumPy.
A dataset may be a local folder or a URL (``s3://``, ``gs://``, ``file://``, ...) that
fsspec opens (`synth.render --out URL` writes those; the store's fsspec driver, e.g. s3fs,
is the user's install): the readers here take either.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import pathlib
import re
import zipfile
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

MANIFEST = "manifest.json"
SPLITS_DIRNAME = "splits"


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: fsspec protocols of stores with atomic single puts and no rename (an object appears
#: whole or not at all): writers put each file once there; elsewhere they write a temporary
#: name and move it.
OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl",
                                    "oci", "oss", "memory", "r2", "tos", "cos"})


def is_url(path) -> bool:
    """Whether `path` is a URL (``protocol://...``) rather than a local path."""
    return isinstance(path, str) and bool(_URL.match(path))


def dataset_path(dataset_dir, rel: str):
    """`rel` (``/`` separators) inside a dataset folder (`pathlib.Path`) or URL (str)."""
    if is_url(str(dataset_dir)):
        return f"{str(dataset_dir).rstrip('/')}/{rel}"
    return pathlib.Path(dataset_dir) / rel


def _fs(url: str):
    """(fsspec file system, path) of a URL; OSError (one line) when fsspec cannot open it."""
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise OSError(f"{url}: cannot open this URL with fsspec ({detail})") from None


def read_bytes(path) -> bytes:
    """The bytes of a local file or of a URL (fsspec)."""
    if is_url(str(path)):
        fs, where = _fs(str(path))
        return fs.cat_file(where)
    return pathlib.Path(path).read_bytes()


def is_file(path) -> bool:
    """Whether a local path or a URL (fsspec; False when fsspec cannot open it) is a file."""
    if is_url(str(path)):
        try:
            fs, where = _fs(str(path))
            return fs.isfile(where)
        except OSError:
            return False
    return pathlib.Path(path).is_file()


def read_json(path: pathlib.Path):
    return json.loads(read_bytes(path).decode("utf-8"))


def read_manifest(dataset_dir: pathlib.Path) -> dict:
    path = dataset_path(dataset_dir, MANIFEST)
    if not is_file(path):
        raise FileNotFoundError(f"{path}: no manifest; is {dataset_dir} a synth dataset?")
    return read_json(path)


class RecordError(ValueError):
    """A record file that is missing, corrupt or holds unusable values; the message names the
    file (and the array) and the problem, on one line."""


def load_record(path: pathlib.Path, sha256: Optional[str] = None,
                keys: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
    """Reads a record (an ``.npz``) without unpickling anything.

    sha256: the manifest's checksum; when given the file's bytes are hashed (they are read
    anyway) and a mismatch raises. keys: the arrays to read (default all); a missing one
    raises. Every member's CRC-32 is checked. Raises `RecordError` naming the file for a missing, empty, truncated, CRC-broken
    or tampered file.
    """
    path = path if is_url(str(path)) else pathlib.Path(path)
    try:
        data = read_bytes(path)
    except OSError as error:
        raise RecordError(f"{path}: cannot read record ({error.strerror or error})") from None
    return record_from_bytes(data, path, sha256, keys)


def record_from_bytes(data: bytes, where, sha256: Optional[str] = None,
                      keys: Optional[Iterable[str]] = None) -> Dict[str, np.ndarray]:
    """A record's arrays from the bytes of its ``.npz`` (read from a file, a URL, an object
    store), with `load_record`'s checks; `RecordError` messages name `where`."""
    path = where
    if not data:
        raise RecordError(f"{path}: empty record file")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise RecordError(f"{path}: checksum differs from the manifest's sha256 (file "
                          f"corrupt or changed since it was written)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            broken = archive.testzip()  # CRC-32 of every member: cheap beside the read
        if broken is not None:
            raise RecordError(f"{path}: corrupt record (CRC mismatch in {broken!r})")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            names = archive.files if keys is None else list(keys)
            missing = [k for k in names if k not in archive.files]
            if missing:
                raise RecordError(f"{path}: record lacks array(s) {missing}")
            return {key: archive[key] for key in names}
    except RecordError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile,
            zipfile.LargeZipFile) as error:
        raise RecordError(f"{path}: corrupt record ({type(error).__name__}: "
                          f"{str(error).splitlines()[0] if str(error) else 'unreadable'})"
                          ) from None


def check_finite(path, key: str, array: np.ndarray) -> None:
    """Raises `RecordError` naming `path`, the array `key` and the first bad index when a
    numeric array holds NaN or infinity."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise RecordError(f"{path}: {key} has {int(bad.sum())} non-finite value(s), the "
                          f"first at index {first}")


#: The convention the unsuffixed `keypoints2d` / `joints3d_camera` / `joints3d_world` /
#: `joint_names` keys hold: the generator's canonical joint centres (every record has them).
BASE_CONVENTION = "acclaim17"
CONVENTION_KEYS = ("keypoints2d", "joints3d_camera", "joints3d_world", "joint_names")


def convention_key(key: str, convention: str) -> str:
    """Record key of `key` (one of `CONVENTION_KEYS`) for a keypoint convention:
    `keypoints2d__h36m17`; the base convention uses the bare key."""
    return key if convention == BASE_CONVENTION else f"{key}__{convention}"


def record_conventions(record: Mapping[str, np.ndarray]) -> List[str]:
    """Keypoint conventions a record holds (`keypoint_conventions`; records written before
    conventions existed hold only the base convention)."""
    if "keypoint_conventions" in record:
        return [str(n) for n in np.asarray(record["keypoint_conventions"]).ravel()]
    return [BASE_CONVENTION]


def manifest_conventions(manifest: Mapping) -> List[str]:
    """Keypoint conventions every record of a dataset holds (see `record_conventions`)."""
    names = manifest.get("keypoint_conventions")
    return list(names) if names else [BASE_CONVENTION]


def require_convention(available: Sequence[str], convention: str, where) -> None:
    """ValueError (one line) when `convention` is not among `available`."""
    if convention not in available:
        raise ValueError(f"{where}: has keypoint conventions {', '.join(available)}, not "
                         f"{convention!r}; render it with `python -m synth.render ... "
                         f"--keypoints {convention}`")


class UnknownSplitError(LookupError):
    """A split name that is not on disk; the message lists the available ones."""


@dataclasses.dataclass
class Split:
    """One train/test partition.

    name:        filesystem-safe identifier (``[A-Za-z0-9._-]``), also the JSON file's stem.
    description: one human-readable line.
    train, test: sorted lists of clip keys, disjoint.
    """

    name: str
    description: str
    train: List[str]
    test: List[str]

    def __post_init__(self):
        self.train = sorted(self.train)
        self.test = sorted(self.test)
        if safe_name(self.name) != self.name:
            raise ValueError(f"split name {self.name!r} is not filesystem-safe")
        both = set(self.train) & set(self.test)
        if both:
            raise ValueError(f"split {self.name!r} has clips on both sides: {sorted(both)[:5]}")
        if len(set(self.train)) != len(self.train) or len(set(self.test)) != len(self.test):
            raise ValueError(f"split {self.name!r} lists a clip twice")

    def to_dict(self) -> Dict:
        return {"name": self.name, "description": self.description,
                "train": list(self.train), "test": list(self.test)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Split":
        return cls(data["name"], data.get("description", ""), list(data["train"]),
                   list(data["test"]))


def safe_name(text: str) -> str:
    """`text` with every run of characters outside ``[A-Za-z0-9._-]`` replaced by ``_``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_.")
    return name or "_"


def splits_dir(dataset_dir):
    """The dataset's ``splits`` folder (a `pathlib.Path`, or a URL string)."""
    return dataset_path(dataset_dir, SPLITS_DIRNAME)


def list_splits(dataset_dir) -> List[str]:
    """Sorted names of the splits stored under ``<dataset_dir>/splits/``."""
    folder = splits_dir(dataset_dir)
    if is_url(str(folder)):
        fs, where = _fs(str(folder))
        try:
            names = [n.rstrip("/").rsplit("/", 1)[-1] for n in fs.ls(where, detail=False)]
        except FileNotFoundError:
            return []
        return sorted(n[:-len(".json")] for n in names
                      if n.endswith(".json") and not n.startswith("."))
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))


def load_split(dataset_dir, name: str) -> Split:
    """The split `name` of the dataset; UnknownSplitError lists the available names."""
    path = dataset_path(splits_dir(dataset_dir), f"{name}.json")
    if safe_name(name) != name or not is_file(path):
        available = list_splits(dataset_dir)
        raise UnknownSplitError(f"no split {name!r} in {splits_dir(dataset_dir)}; available: "
                                f"{', '.join(available) if available else '(none)'}")
    return Split.from_dict(read_json(path))
