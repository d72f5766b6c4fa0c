"""Target skeletons: the bone lengths of known people, measured once and trained towards.

A lifter reads depth from foreshortening, and foreshortening is only as good as its idea of
how long each bone is. A lifter trained on synthetic bodies learns their proportions; on real
people it then errs by the difference (`experiments/sim_to_real_bodies.py`). When the people a
lifter will see are known (a lab's subjects, a team's athletes, a benchmark's training
subjects), their bone lengths can be measured from any 3D of them and the synthetic motion
re-proportioned to them at training time (`python -m vp3dkeras.train --skeletons FILE`,
`vp3dkeras.data.bone_jitter.BoneJitter`): only lengths travel, never poses.

A skeletons file is JSON (no pickles), written by `python -m vp3dkeras.skeletons`:

    {"format": "vp3dkeras-skeletons/1", "layout": "humaneva15", "unit": "m",
     "bones": ["hip-thorax", ...],              # "parent-joint", layout order, root left out
     "skeletons": {"Train/S1": [0.483, ...], ...},
     "source": "..."}                            # what was measured

Lengths are each subject's mean over its frames of |joint - parent|, in metres (distances:
the same in any frame, world or camera, root-relative or not). A subject is what the source
calls one: a VideoPose3D set's subject (`Train/S1`), a synth dataset's mocap actor
(`hdm05_bd`, every body it was retargeted onto together).
"""
from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile
from typing import Dict, List, Tuple

import numpy as np

from posecontract.layouts import JointLayout

FORMAT = "vp3dkeras-skeletons/1"


def bone_names(layout: JointLayout) -> List[str]:
    """"parent-joint" of every bone, in `layout.bones()` order (as `bone_length_report`)."""
    return [f"{layout.names[p]}-{layout.names[c]}" for p, c in layout.bones()]


def _children(layout: JointLayout) -> np.ndarray:
    """The joint index at the end of every bone, in `layout.bones()` order."""
    return np.array([c for _, c in layout.bones()], np.int64)


def measure_skeletons(source) -> Dict[str, np.ndarray]:
    """Each subject's mean bone lengths in a source with 3D.

    source: a `vp3dkeras.data.sequences.SequenceSource` (its 3D in metres). Returns subject ->
    (J,) float64 metres, the entry of joint k the mean over all the subject's frames of
    |pose[k] - pose[parent(k)]|, 0 for the root. ValueError when the source has no 3D.
    """
    from vp3dkeras.metrics import bone_lengths
    if not source.has_3d:
        raise ValueError(f"{source.name}: measuring skeletons needs 3D poses")
    layout = source.codec.layout
    sums: Dict[str, np.ndarray] = {}
    counts: Dict[str, int] = {}
    for index, ref in enumerate(source.refs):
        lengths = bone_lengths(source.load(index).poses_3d, layout)  # (T, bones)
        sums[ref.subject] = sums.get(ref.subject, 0.0) + lengths.sum(0)
        counts[ref.subject] = counts.get(ref.subject, 0) + len(lengths)
    out = {}
    for subject in sorted(sums):
        out[subject] = np.zeros(layout.num_joints)
        out[subject][_children(layout)] = sums[subject] / max(counts[subject], 1)
    return out


def save_skeletons(path, layout: JointLayout, skeletons: Dict[str, np.ndarray],
                   source: str) -> None:
    """Writes a skeletons file (see the module docstring) atomically: a temporary name in
    the same folder, then a rename. skeletons: subject -> (J,) metres, root entry ignored."""
    child = _children(layout)
    document = {"format": FORMAT, "layout": layout.name, "unit": "m",
                "bones": bone_names(layout),
                "skeletons": {s: [round(float(v), 5) for v in np.asarray(l)[child]]
                              for s, l in skeletons.items()},
                "source": source}
    path = pathlib.Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; --out names the skeletons file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=1)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def load_skeletons(path, layout: JointLayout) -> Tuple[List[str], np.ndarray]:
    """(subject names, (S, J) bone lengths in metres, root column 0) of a skeletons file.

    The file's bones must be `layout`'s bones by name (its joint order may differ only if
    the bone names still match, they are looked up by name). ValueError, one line naming the
    file, for: a missing or unreadable file, not JSON, another format, a layout whose bones
    the file lacks, no skeletons, or a length that is not a finite number in (0.01, 2) m.
    """
    path = pathlib.Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such skeletons file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable JSON skeletons file ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path}: not a skeletons file (format {FORMAT!r} expected)")
    if document.get("unit", "m") != "m":
        raise ValueError(f"{path}: unit {document.get('unit')!r}; skeletons are in metres")
    names = document.get("bones")
    skeletons = document.get("skeletons")
    if not isinstance(names, list) or not isinstance(skeletons, dict) or not skeletons:
        raise ValueError(f"{path}: needs a list 'bones' and at least one entry in 'skeletons'")
    wanted = bone_names(layout)
    missing = [b for b in wanted if b not in names]
    if missing:
        raise ValueError(f"{path}: skeletons of layout {document.get('layout')!r} lack "
                         f"{layout.name}'s bones {missing}")
    columns = [names.index(b) for b in wanted]
    child = _children(layout)
    subjects, table = [], []
    for subject, lengths in skeletons.items():
        if not isinstance(lengths, list) or len(lengths) != len(names):
            raise ValueError(f"{path}: skeleton {subject!r} has "
                             f"{len(lengths) if isinstance(lengths, list) else 'no'} lengths "
                             f"for {len(names)} bones")
        row = np.zeros(layout.num_joints)
        for k, column in zip(child, columns):
            value = lengths[column]
            try:  # a JSON integer may be too large for a float; true/false are not lengths
                usable = (isinstance(value, (int, float)) and not isinstance(value, bool)
                          and math.isfinite(value) and 0.01 < value < 2.0)
            except OverflowError:
                usable = False
            if not usable:
                raise ValueError(f"{path}: skeleton {subject!r} bone {names[column]!r} is "
                                 f"{value!r}; lengths are metres in (0.01, 2)")
            row[k] = value
        subjects.append(subject)
        table.append(row)
    return subjects, np.stack(table)
