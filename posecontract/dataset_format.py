"""The synth dataset's on-disk format, as its readers need it: manifest, records, splits.

`synth` writes datasets (`synth.dataset`, `synth.splits`); the input pipeline reads them
through this module, so the model side never imports the generator. Pure Python/NumPy.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from typing import Dict, List, Mapping

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
