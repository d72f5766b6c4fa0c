"""Finding mocap clips and loading any of them into a `Motion` with its source metadata.

Naming conventions understood (case-insensitive extensions):

- HDM05: ``HDM_<actor>_<class>_<idx>_<fps>.amc`` with skeleton ``HDM_<actor>.asf`` beside it;
  dataset "hdm05", motion_class ``<class>``, fps from the name.
- CMU: ``<subject>_<trial>.amc`` with ``<subject>.asf`` beside it; labels from a
  ``trials.csv`` (columns subject, trial, description, fps) in the clip's folder or a parent,
  or given; dataset "cmu", actor ``<subject>``, description and motion_class from the csv,
  fps from the csv else 120.
- Other AMC: skeleton ``<stem>.asf`` or the folder's only ``.asf``; dataset "acclaim", 120 fps.
- BVH: ``<subject>_<trial>.bvh`` -> dataset "cmu" (labels from trials.csv when one is found),
  otherwise "bvh"; actor ``<subject>`` or the file stem; fps from the frame time; up axis,
  unit and path-carrying joint as `synth.bvh.read_bvh` finds them.

Every clip then loses its leading frames that break continuity (a T-pose first frame,
`synth.continuity`).

`clip_id` is always the file stem.
"""
from __future__ import annotations

import csv
import functools
import os
import pathlib
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from synth import acclaim, bvh, continuity, joint_maps
from synth.motion import MocapError, Motion, source_metadata

DEFAULT_ACCLAIM_FPS = 120.0
_HDM05 = re.compile(r"^HDM_(?P<actor>[^_]+)_(?P<cls>.+)_(?P<idx>\d+)_(?P<fps>\d+)$", re.I)
_CMU = re.compile(r"^(?P<subject>\d+)_(?P<trial>\d+)$")

Labels = Mapping[Tuple[str, str], Dict[str, str]]


def find_clips(mocap_dir) -> List[pathlib.Path]:
    """All .amc / .bvh files (any case) under `mocap_dir`, recursively, sorted.

    Symbolic links to folders are followed (each real folder is read once, so a link loop
    ends); hidden files (a name starting with ".") are left out.
    """
    root = pathlib.Path(mocap_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"mocap folder {root} does not exist")
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        found.extend(pathlib.Path(folder) / name for name in files
                     if not name.startswith(".")
                     and os.path.splitext(name)[1].lower() in (".amc", ".bvh"))
    return sorted(p for p in found if p.is_file())


def _key(subject: str, trial: str) -> Tuple[str, str]:
    """Zero padding does not matter: ("02", "01") == ("2", "1")."""
    return (str(int(subject)) if subject.isdigit() else subject,
            str(int(trial)) if trial.isdigit() else trial)


@functools.lru_cache(maxsize=8)
def _read_trials(path: pathlib.Path, mtime: float) -> Dict[Tuple[str, str], Dict[str, str]]:
    labels = {}
    with open(path, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = {"subject", "trial", "description"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: trials csv lacks columns {sorted(missing)}")
        for row in reader:
            labels[_key(row["subject"].strip(), row["trial"].strip())] = {
                "description": (row.get("description") or "").strip(),
                "fps": (row.get("fps") or "").strip()}
    return labels


def read_trials(path) -> Dict[Tuple[str, str], Dict[str, str]]:
    """CMU labels: (subject, trial) without zero padding -> {"description", "fps"} strings."""
    path = pathlib.Path(path).resolve()
    return dict(_read_trials(path, path.stat().st_mtime))


def _find_trials(clip: pathlib.Path) -> Optional[pathlib.Path]:
    for folder in clip.resolve().parents:
        candidate = folder / "trials.csv"
        if candidate.is_file():
            return candidate
    return None


def _find_file(folder: pathlib.Path, name: str) -> Optional[pathlib.Path]:
    """`folder/name`, compared case-insensitively."""
    exact = folder / name
    if exact.is_file():
        return exact
    lower = name.lower()
    return next((p for p in folder.iterdir() if p.name.lower() == lower and p.is_file()), None)


def _skeleton_for(path: pathlib.Path, name: str) -> pathlib.Path:
    asf = _find_file(path.parent, name)
    if asf is None:
        raise MocapError(path, f"skeleton file {name} not found beside the clip")
    return asf


def _labels_for(path: pathlib.Path, labels) -> Labels:
    if labels is None:
        found = _find_trials(path)
        return read_trials(found) if found else {}
    if isinstance(labels, (str, pathlib.Path)):
        return read_trials(labels)
    return {_key(str(subject), str(trial)): label for (subject, trial), label in labels.items()}


# Coarse classes for CMU's free-text descriptions, so class-held-out splits hold out an
# activity ("run"), not one wording of it ("Run Side Step Left"). The keyword that appears
# first in the description wins; martial-arts terms are the karate moves subject 135 shows.
_CMU_CLASS_KEYWORDS = {
    "walk": "walk", "run": "run", "jog": "run", "jump": "jump", "hop": "jump", "leap": "jump",
    "dance": "dance", "cartwheel": "cartwheel", "box": "boxing", "punch": "boxing",
    "strike": "boxing", "sword": "swordplay", "balance": "balance", "wash": "wash",
    "motorcycle": "motorcycle", "range of motion": "range_of_motion",
    "empi": "martial_arts", "geri": "martial_arts", "uke": "martial_arts",
    "oiduki": "martial_arts", "heian": "martial_arts", "barai": "martial_arts",
}


def cmu_motion_class(description: str) -> str:
    """A coarse motion class ("walk", "run", "jump", ...) for a CMU description; the
    description's first word when no keyword matches, "" for an empty description."""
    text = description.lower()
    found = [(text.find(k), cls) for k, cls in _CMU_CLASS_KEYWORDS.items() if k in text]
    if found:
        return min(found)[1]
    words = re.findall(r"[a-z]+", text)
    return words[0] if words else ""


def _acclaim(path: pathlib.Path, labels) -> Motion:
    stem = path.stem
    hdm = _HDM05.match(stem)
    cmu = _CMU.match(stem)
    if hdm:
        asf = _skeleton_for(path, f"HDM_{hdm['actor']}.asf")
        fps = float(hdm["fps"])
        meta = source_metadata(path, "hdm05", hdm["actor"], hdm["cls"], stem)
    elif cmu:
        asf = _skeleton_for(path, f"{cmu['subject']}.asf")
        label = _labels_for(path, labels).get(_key(cmu["subject"], cmu["trial"]), {})
        try:
            fps = float(label.get("fps") or DEFAULT_ACCLAIM_FPS)
        except ValueError:
            raise MocapError(path, f"trials csv fps {label['fps']!r} is not a number") from None
        description = label.get("description", "")
        meta = source_metadata(path, "cmu", cmu["subject"], cmu_motion_class(description),
                               stem, description)
    else:
        asf = _find_file(path.parent, stem + ".asf")
        if asf is None:
            candidates = [p for p in path.parent.iterdir() if p.suffix.lower() == ".asf"]
            if len(candidates) != 1:
                raise MocapError(path, f"cannot tell which .asf belongs to this clip "
                                       f"({len(candidates)} in its folder, none named "
                                       f"{stem}.asf)")
            asf = candidates[0]
        fps = DEFAULT_ACCLAIM_FPS
        meta = source_metadata(path, "acclaim", "", "", stem)
    return acclaim.read_amc(path, acclaim.read_asf(asf), fps=fps, source=meta)


def _bvh(path: pathlib.Path, labels, scale, up, candidates) -> Motion:
    stem = path.stem
    cmu = _CMU.match(stem)
    if cmu:
        label = _labels_for(path, labels).get(_key(cmu["subject"], cmu["trial"]), {})
        description = label.get("description", "")
        meta = source_metadata(path, "cmu", cmu["subject"], cmu_motion_class(description),
                               stem, description)
    else:
        meta = source_metadata(path, "bvh", stem, "", stem)
    return bvh.read_bvh(path, scale=scale, source=meta, up=up, joint_map=candidates)


JointMapSpec = Union[str, pathlib.Path, joint_maps.JointMap]


def load_motion(path, labels: Union[None, str, pathlib.Path, Labels] = None,
                bvh_scale: Union[float, str] = "auto",
                joint_map: Union[None, JointMapSpec, Sequence[JointMapSpec]] = None,
                bvh_up: str = "auto", drop_breaks: bool = True) -> Motion:
    """Load an .amc or .bvh clip (any case) with its `Motion.source` filled in.

    labels: CMU trials.csv path, or a mapping (subject, trial) -> {"description", "fps"} like
    `read_trials` returns (default: a trials.csv found in the clip's folder or a parent).
    bvh_scale, bvh_up: see `synth.bvh.read_bvh` (``scale``, ``up``).
    joint_map: a `JointMap`, built-in name or JSON path, or a sequence of them (several rigs
    in one folder): the first whose joints the skeleton has is used, else the built-in map
    that fits. The motion's `rig` is the map's name; a skeleton that fits none raises
    `MocapError` naming what each map lacks.
    drop_breaks: drop leading frames that break continuity (a T-pose first frame,
    `synth.continuity`); their number goes to ``source["dropped_leading_frames"]``.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise MocapError(path, "file not found")
    if path.stat().st_size == 0:  # before looking for its skeleton: that is not the problem
        raise MocapError(path, "empty file")
    suffix = path.suffix.lower()
    try:
        if joint_map is None:
            specs = []
        elif isinstance(joint_map, (str, pathlib.Path, joint_maps.JointMap)):
            specs = [joint_map]
        else:
            specs = list(joint_map)
        candidates = [joint_maps.get_joint_map(spec) for spec in specs]
        if suffix == ".amc":
            motion = _acclaim(path, labels)
        elif suffix == ".bvh":
            motion = _bvh(path, labels, bvh_scale, bvh_up, candidates)
        else:
            raise MocapError(path, f"unknown mocap file type {path.suffix!r} "
                                   f"(expected .amc or .bvh)")
        chosen = joint_maps.choose_joint_map(motion.skeleton, candidates)
        if chosen is None:
            if len(candidates) == 1:
                joint_maps.joint_indices(motion.skeleton, candidates[0])  # names what is missing
            lacks = "; ".join(f"{m.name} lacks {m.missing_joints(motion.skeleton)[:6]}"
                              for m in candidates)
            if not candidates:
                joint_maps.detect_rig(motion.skeleton)  # names what each built-in lacks
            raise MocapError(path, f"skeleton fits none of the joint maps given ({lacks}) "
                                   f"nor a built-in one")
    except (ValueError, OSError) as err:
        if isinstance(err, MocapError):
            raise
        raise MocapError(path, str(err)) from None
    motion = motion.with_(rig=chosen.name)
    return continuity.drop_leading_break(motion) if drop_breaks else motion
