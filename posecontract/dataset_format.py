"""The synth dataset's on-disk format, as its readers need it: manifest, records, splits.

`synth` writes datasets (`synth.dataset`, `synth.splits`); the input pipeline reads them
through this module, so the model side never imports the generator. Pure Python/NumPy.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from typing import Dict, List, Mapping, Sequence

import numpy as np

MANIFEST = "manifest.json"
SPLITS_DIRNAME = "splits"


def read_json(path: pathlib.Path):
    return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))


def read_manifest(dataset_dir: pathlib.Path) -> dict:
    path = pathlib.Path(dataset_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; is {dataset_dir} a synth dataset?")
    return read_json(path)


def load_record(path: pathlib.Path) -> Dict[str, np.ndarray]:
    """Reads a record without unpickling anything."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


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


def splits_dir(dataset_dir) -> pathlib.Path:
    return pathlib.Path(dataset_dir) / SPLITS_DIRNAME


def list_splits(dataset_dir) -> List[str]:
    """Sorted names of the splits stored under ``<dataset_dir>/splits/``."""
    folder = splits_dir(dataset_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))


def load_split(dataset_dir, name: str) -> Split:
    """The split `name` of the dataset; UnknownSplitError lists the available names."""
    path = splits_dir(dataset_dir) / f"{name}.json"
    if safe_name(name) != name or not path.is_file():
        available = list_splits(dataset_dir)
        raise UnknownSplitError(f"no split {name!r} in {splits_dir(dataset_dir)}; available: "
                                f"{', '.join(available) if available else '(none)'}")
    with open(path, encoding="utf-8") as f:
        return Split.from_dict(json.load(f))
