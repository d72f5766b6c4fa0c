"""Train/test splits of a dataset's clips, stored as JSON under ``<dataset_dir>/splits/``.

A split lists source-clip keys (``clip_key``): every avatar and camera rendered from one
mocap clip shares its key, so they always land on the same side.

Splits made by `make_splits`:

- ``random``: seeded, `test_fraction` of the clips held out.
- ``actor_out_<dataset>_<actor>``: leave one actor out (actors are qualified by their dataset,
  since e.g. CMU subject "02" and a BVH actor "02" are different people).
- ``class_out_<class>``: leave one motion class out (over all datasets that use the class).
- ``cross_dataset_<train>_to_<test>``: train on one dataset, test on another; clips of other
  datasets are on neither side.

Clips whose actor or class is empty ("" = unknown) are never held out by an actor or class
split, but are trained on. A split whose train or test side would be empty is skipped.
"""
from __future__ import annotations

import json
from typing import Dict, Iterable, List, Mapping, Sequence, Tuple, Union

import numpy as np


from posecontract.dataset_format import (SPLITS_DIRNAME, Split, UnknownSplitError,  # noqa: F401
                                      list_splits, load_split, safe_name, splits_dir)

_REQUIRED_KEYS = ("clip_key", "dataset", "actor", "motion_class")


def _index_clips(clips: Iterable[Mapping]) -> Dict[str, Tuple[str, str, str]]:
    """clip_key -> (dataset, actor, motion_class); entries sharing a key must agree."""
    index: Dict[str, Tuple[str, str, str]] = {}
    for entry in clips:
        missing = [key for key in _REQUIRED_KEYS if key not in entry]
        if missing:
            raise ValueError(f"clip entry {dict(entry)!r} lacks {missing}")
        key = str(entry["clip_key"])
        labels = (str(entry["dataset"]), str(entry["actor"]), str(entry["motion_class"]))
        if index.setdefault(key, labels) != labels:
            raise ValueError(f"clip {key!r} appears with different labels: {index[key]} and "
                             f"{labels}")
    if not index:
        raise ValueError("no clips to split")
    return index


def _unique_names(labels: Sequence[str], prefix: str) -> Dict[str, str]:
    """label -> ``prefix + safe_name(label)``, numbered where sanitising (or case) collides."""
    names: Dict[str, str] = {}
    taken = set()
    for label in sorted(labels):
        name = base = prefix + safe_name(label)
        n = 2
        while name.lower() in taken:  # case-insensitive file systems
            name, n = f"{base}-{n}", n + 1
        taken.add(name.lower())
        names[label] = name
    return names


def _held_out(name: str, description: str, index: Mapping[str, Tuple], test_keys) -> Split:
    test = set(test_keys)
    return Split(name, description, [k for k in index if k not in test], sorted(test))


def random_split(clips: Iterable[Mapping], seed: int = 0, test_fraction: float = 0.2,
                 name: str = "random") -> Split:
    """Seeded split by clip: round(test_fraction * N) clips (at least one) held out."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    keys = sorted(_index_clips(clips))
    num_test = min(max(1, int(round(test_fraction * len(keys)))), len(keys) - 1)
    order = np.random.default_rng(seed).permutation(len(keys))
    test = [keys[i] for i in order[:num_test]]
    return Split(name, f"random {test_fraction:.0%} of clips held out (seed {seed})",
                 [keys[i] for i in order[num_test:]], test)


def actor_split(clips: Iterable[Mapping], test_actors: Iterable[Union[str, Tuple[str, str]]],
                name: str = "") -> Split:
    """Hold out the clips of `test_actors`, train on all others.

    test_actors: each a ``(dataset, actor)`` pair, a qualified ``"<dataset>_<actor>"`` string
                 (``"hdm05_mm"``), or a bare actor name if only one dataset has it (``"mm"``).
    name:        defaults to ``actor_out_<qualified>_<qualified>...``.
    """
    index = _index_clips(clips)
    actors = sorted({(d, a) for d, a, _ in index.values() if a})
    by_qualified = {f"{d}_{a}": (d, a) for d, a in actors}
    chosen = []
    for wanted in test_actors:
        if isinstance(wanted, tuple):
            match = [wanted] if wanted in actors else []
        elif wanted in by_qualified:
            match = [by_qualified[wanted]]
        else:
            match = [(d, a) for d, a in actors if a == wanted]
        if len(match) != 1:
            problem = "is ambiguous" if match else "is unknown"
            raise ValueError(f"actor {wanted!r} {problem}; actors: {sorted(by_qualified)}")
        chosen.append(match[0])
    if not chosen:
        raise ValueError("actor_split needs at least one test actor")
    qualified = [f"{d}_{a}" for d, a in sorted(set(chosen))]
    name = name or "actor_out_" + "_".join(safe_name(q) for q in qualified)
    test = [k for k, (d, a, _) in index.items() if (d, a) in set(chosen)]
    return _held_out(name, f"actors {', '.join(qualified)} held out", index, test)


def classes_only(split: Split, clips: Iterable[Mapping], classes: Iterable[str],
                 name: str = "") -> Split:
    """`split` with only the clips of the motion classes `classes` on either side: training
    on the motions a task needs (e.g. the actions of a benchmark), validating on the same.

    clips: manifest records or clip entries (clip_key, dataset, actor, motion_class).
    name: defaults to ``<split>_classes_<class>_<class>...``. ValueError naming the split
    for a class no clip has, or a side left empty.
    """
    index = _index_clips(clips)
    classes = sorted(set(classes))
    known = sorted({c for _, _, c in index.values() if c})
    unknown = [c for c in classes if c not in known]
    if not classes or unknown:
        raise ValueError(f"split {split.name!r}: motion classes {unknown or classes} not in "
                         f"the dataset; it has {known}")
    keep = {k for k, (_, _, c) in index.items() if c in classes}
    name = name or f"{split.name}_classes_" + "_".join(safe_name(c) for c in classes)
    train = [k for k in split.train if k in keep]
    test = [k for k in split.test if k in keep]
    if not train or not test:
        raise ValueError(f"split {split.name!r} restricted to {classes} leaves its "
                         f"{'train' if not train else 'test'} side empty")
    return Split(name, f"{split.description}; only motion classes {', '.join(classes)}",
                 train, test)


def make_splits(clips: Iterable[Mapping], seed: int = 0,
                test_fraction: float = 0.2) -> Dict[str, Split]:
    """Every standard split of `clips` (see the module docstring), keyed by split name.

    clips: dicts with at least ``clip_key``, ``dataset``, ``actor``, ``motion_class``;
           several entries may share a clip key (one per avatar/camera) if their labels agree.
    """
    clips = list(clips)
    index = _index_clips(clips)
    candidates = [random_split(clips, seed, test_fraction)] if len(index) > 1 else []

    actors = {(d, a) for d, a, _ in index.values() if a}
    actor_names = _unique_names([f"{d}_{a}" for d, a in actors], "actor_out_")
    for dataset, actor in sorted(actors):
        test = [k for k, (d, a, _) in index.items() if (d, a) == (dataset, actor)]
        candidates.append(_held_out(actor_names[f"{dataset}_{actor}"],
                                    f"actor {actor!r} of {dataset} held out", index, test))

    classes = {c for _, _, c in index.values() if c}
    class_names = _unique_names(classes, "class_out_")
    for motion_class in sorted(classes):
        test = [k for k, (_, _, c) in index.items() if c == motion_class]
        candidates.append(_held_out(class_names[motion_class],
                                    f"motion class {motion_class!r} held out", index, test))

    datasets = sorted({d for d, _, _ in index.values()})
    dataset_names = _unique_names(datasets, "")
    for train_set in datasets:
        for test_set in datasets:
            if train_set != test_set:
                candidates.append(Split(
                    f"cross_dataset_{dataset_names[train_set]}_to_{dataset_names[test_set]}",
                    f"train on {train_set}, test on {test_set}",
                    [k for k, (d, _, _) in index.items() if d == train_set],
                    [k for k, (d, _, _) in index.items() if d == test_set]))

    splits = {}
    for split in candidates:
        assert not set(split.train) & set(split.test), split.name
        if split.train and split.test:
            splits[split.name] = split
    return splits


def write_splits(dataset_dir, splits: Union[Mapping[str, Split], Iterable[Split]]) -> list:
    """Write each split to ``<dataset_dir>/splits/<name>.json`` atomically; returns their
    paths (`pathlib.Path`; URLs as strings). dataset_dir: a folder, URL or `synth.storage.Store`.

    Each file is written to a temporary file in the same folder, then renamed over the
    target (on an object store: one put), so a reader never sees a half-written split.
    Other files there are left alone.
    """
    from .storage import open_store

    if isinstance(splits, Mapping):
        splits = splits.values()
    store = open_store(dataset_dir)
    paths = []
    for split in splits:
        rel = f"{SPLITS_DIRNAME}/{split.name}.json"
        store.write_bytes(rel, (json.dumps(split.to_dict(), indent=1) + "\n").encode())
        paths.append(store.path(rel) if store.is_local else store.url(rel))
    return paths
