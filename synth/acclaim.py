"""Acclaim ASF (skeleton) / AMC (motion) reader producing `synth.motion.Motion`.

Skeleton semantics. Joints sit at bone *starts*: joint 0 ``"root"``; one joint per ASF bone,
named by the bone, whose rest offset from its parent joint is the parent bone's
``direction * length`` (zero for bones hanging off the root); and an end-site joint
``<bone>_end`` after each leaf bone (offset: the leaf's ``direction * length``). Joints are in
depth-first order of ``:hierarchy``.

Rotation semantics (Acclaim's own definition). A bone's rotation relative to its parent, in
world-aligned rest frames, is ``L = C M C^-1``: ``C`` is the bone's ``axis`` rotation, ``M``
the AMC dof rotation. Both are composed so that the first-listed axis is applied first
(``axis 0 0 20 XYZ`` -> ``C = Rz Ry Rx``; ``dof rx rz`` -> ``M = Rz Rx``, column vectors). The
root uses ``:root order`` for ``M`` and ``orientation`` with ``axis`` for ``C``; its
translation is ``position`` plus the AMC ``TX TY TZ`` values.

Units: ASF lengths and the root translation are in units of ``1 / length`` inch
(``:units length 0.45``: one unit = 0.0254 / 0.45 m); angles follow ``:units angle`` in the
ASF and ``:DEGREES`` / ``:RADIANS`` in the AMC (default: the ASF's).

World frame: the source is Y-up; everything is rotated into the Z-up world by conjugation
with ``A`` = +90 degrees about X ((x, y, z) -> (x, -z, y)), so identity rotations give the
upright rest pose. Per-bone translation / length dofs (``tx ty tz l``) are read and checked but
not represented (a `Skeleton` has fixed offsets); no CMU or HDM05 bone has them.
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Dict, List, Optional, Tuple

import numpy as np
from scipy.spatial.transform import Rotation

from synth import joint_maps
from synth.kinematics import quat_conjugate, quat_multiply
from synth.motion import MocapError, Motion, Skeleton, parse_value_rows, read_text_lines

INCH = 0.0254
Y_UP_TO_Z_UP = Rotation.from_euler("x", 90, degrees=True)
_ROTATION_DOFS = ("rx", "ry", "rz")
_KNOWN_DOFS = ("rx", "ry", "rz", "tx", "ty", "tz", "l")


@dataclasses.dataclass
class AsfBone:
    """One ASF bone in source (Y-up) coordinates.

    direction: (3,) unit vector; length: ASF units; axis: (3,) radians applied in
    `axis_order` (e.g. "XYZ"); dofs: lower-case dof names in file order ("rx", "tz", "l").
    """

    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str
    dofs: Tuple[str, ...]


@dataclasses.dataclass
class AsfSkeleton:
    """A parsed ASF file and the `Skeleton` (Z-up, metres) built from it.

    metres_per_unit: metres per ASF length unit; angle_unit: "deg" or "rad";
    root_order: lower-case root dofs in AMC value order; root_axis: order of `root_orientation`
    (radians); root_position: (3,) ASF units; children: bone -> child bones ("root" included);
    joint_bones: (J,) per skeleton joint the bone whose rotation it carries, "" for end sites.
    """

    path: str
    name: str
    metres_per_unit: float
    angle_unit: str
    root_order: Tuple[str, ...]
    root_axis: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    bones: Dict[str, AsfBone]
    children: Dict[str, List[str]]
    skeleton: Skeleton
    joint_bones: List[str]


def _floats(path, tokens, what: str, count: Optional[int] = None) -> np.ndarray:
    if count is not None and len(tokens) != count:
        raise MocapError(path, f"{what}: expected {count} numbers, got {len(tokens)}")
    try:
        values = np.array([float(t) for t in tokens])
    except ValueError:
        raise MocapError(path, f"{what}: {' '.join(tokens)!r} is not numeric") from None
    if not np.all(np.isfinite(values)):
        raise MocapError(path, f"{what}: non-finite value in {' '.join(tokens)!r}")
    return values


def _axis_order(path, token: str, what: str) -> str:
    order = token.upper()
    if len(order) != 3 or sorted(order) != ["X", "Y", "Z"]:
        raise MocapError(path, f"{what}: rotation order {token!r} is not a permutation of XYZ")
    return order


def _sections(path, lines: List[str]) -> Dict[str, List[Tuple[int, List[str]]]]:
    """':keyword' -> its (line number, tokens) lines; comments and blank lines dropped."""
    sections: Dict[str, List[Tuple[int, List[str]]]] = {}
    current = None
    for number, line in enumerate(lines, 1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if tokens[0].startswith(":"):
            current = tokens[0][1:].lower()
            if current in sections:
                raise MocapError(path, f"line {number}: section ':{current}' appears twice")
            sections[current] = [(number, tokens[1:])] if len(tokens) > 1 else []
        elif current is None:
            raise MocapError(path, f"line {number}: {line.strip()!r} outside any ':section' "
                                   f"(not an ASF file?)")
        else:
            sections[current].append((number, tokens))
    return sections


def _parse_units(path, entries) -> Tuple[float, str]:
    metres_per_unit, angle = INCH, "deg"
    for number, tokens in entries:
        key = tokens[0].lower()
        value = tokens[1] if len(tokens) > 1 else ""
        if key == "length":
            try:
                scale = float(value)
            except ValueError:
                raise MocapError(path, f"line {number}: unknown units {value!r} for length "
                                       f"(expected a number: ASF units per inch)") from None
            if not (np.isfinite(scale) and scale > 0):
                raise MocapError(path, f"line {number}: length unit {value!r} must be positive")
            metres_per_unit = INCH / scale
        elif key == "angle":
            angle = {"deg": "deg", "degree": "deg", "degrees": "deg",
                     "rad": "rad", "radian": "rad", "radians": "rad"}.get(value.lower())
            if angle is None:
                raise MocapError(path, f"line {number}: unknown units {value!r} for angle "
                                       f"(expected deg or rad)")
    return metres_per_unit, angle


def _parse_root(path, entries, to_radians: float):
    order, axis = ("tx", "ty", "tz", "rx", "ry", "rz"), "XYZ"
    position, orientation = np.zeros(3), np.zeros(3)
    for number, tokens in entries:
        key = tokens[0].lower()
        where = f"line {number}: root {key}"
        if key == "order":
            order = tuple(t.lower() for t in tokens[1:])
            bad = [t for t in order if t not in _KNOWN_DOFS or t == "l"]
            if bad or len(set(order)) != len(order):
                raise MocapError(path, f"{where}: not understood: {' '.join(tokens[1:])!r}")
        elif key == "axis":
            axis = _axis_order(path, tokens[1] if len(tokens) > 1 else "", where)
        elif key == "position":
            position = _floats(path, tokens[1:], where, 3)
        elif key == "orientation":
            orientation = _floats(path, tokens[1:], where, 3) * to_radians
    return order, axis, position, orientation


def _parse_bones(path, entries, to_radians: float) -> Dict[str, AsfBone]:
    bones: Dict[str, AsfBone] = {}
    fields: Optional[Dict[str, Tuple[int, List[str]]]] = None
    start = 0
    for number, tokens in entries:
        key = tokens[0].lower()
        if key == "begin":
            if fields is not None:
                raise MocapError(path, f"line {number}: 'begin' inside the bone opened at "
                                       f"line {start}")
            fields, start = {}, number
        elif key == "end":
            if fields is None:
                raise MocapError(path, f"line {number}: 'end' without 'begin'")
            bone = _make_bone(path, start, fields, to_radians)
            if bone.name in bones or bone.name == "root":
                raise MocapError(path, f"line {start}: bone name {bone.name!r} used twice")
            bones[bone.name] = bone
            fields = None
        elif fields is None:
            raise MocapError(path, f"line {number}: {' '.join(tokens)!r} outside begin/end")
        elif key.startswith("("):
            continue  # continuation lines of 'limits'
        else:
            fields[key] = (number, tokens[1:])
    if fields is not None:
        raise MocapError(path, f"line {start}: bone block has no 'end' (file truncated?)")
    return bones


def _make_bone(path, start: int, fields, to_radians: float) -> AsfBone:
    if "name" not in fields or not fields["name"][1]:
        raise MocapError(path, f"line {start}: bone has no name")
    name = fields["name"][1][0]
    for key in ("direction", "length"):
        if key not in fields:
            raise MocapError(path, f"line {start}: bone {name!r} has no {key}")
    number, tokens = fields["direction"]
    direction = _floats(path, tokens, f"line {number}: bone {name!r} direction", 3)
    norm = np.linalg.norm(direction)
    number, tokens = fields["length"]
    length = float(_floats(path, tokens, f"line {number}: bone {name!r} length", 1)[0])
    if norm == 0 and length != 0:
        raise MocapError(path, f"line {number}: bone {name!r} has a zero direction")
    axis, order = np.zeros(3), "XYZ"
    if "axis" in fields:
        number, tokens = fields["axis"]
        where = f"line {number}: bone {name!r} axis"
        if len(tokens) != 4:
            raise MocapError(path, f"{where}: expected 3 angles and an order, e.g. "
                                   f"'axis 0 0 20 XYZ'")
        axis = _floats(path, tokens[:3], where, 3) * to_radians
        order = _axis_order(path, tokens[3], where)
    dofs: Tuple[str, ...] = ()
    if "dof" in fields:
        number, tokens = fields["dof"]
        dofs = tuple(t.lower() for t in tokens)
        bad = [t for t in dofs if t not in _KNOWN_DOFS]
        if bad or len(set(dofs)) != len(dofs):
            raise MocapError(path, f"line {number}: bone {name!r} dof {' '.join(tokens)!r} "
                                   f"not understood")
    return AsfBone(name, direction / norm if norm > 0 else direction, length, axis, order, dofs)


def _parse_hierarchy(path, entries, bones) -> Dict[str, List[str]]:
    children: Dict[str, List[str]] = {"root": []}
    parent_of: Dict[str, str] = {}
    for number, tokens in entries:
        if tokens[0].lower() in ("begin", "end"):
            continue
        parent, kids = tokens[0], tokens[1:]
        if parent != "root" and parent not in bones:
            raise MocapError(path, f"line {number}: hierarchy names unknown bone {parent!r}")
        for kid in kids:
            if kid not in bones:
                raise MocapError(path, f"line {number}: hierarchy names unknown bone {kid!r}")
            if kid in parent_of:
                raise MocapError(path, f"line {number}: bone {kid!r} has two parents")
            parent_of[kid] = parent
            children.setdefault(parent, []).append(kid)
    orphans = [b for b in bones if b not in parent_of]
    if orphans:
        raise MocapError(path, f"bones {orphans} are not attached in :hierarchy")
    return children


def _build_skeleton(path, bones, children, metres_per_unit):
    names, parents, offsets, joint_bones = ["root"], [-1], [np.zeros(3)], ["root"]

    def visit(bone: str, parent_joint: int, offset: np.ndarray, depth: int):
        if depth > len(bones):
            raise MocapError(path, f"hierarchy has a cycle through bone {bone!r}")
        index = len(names)
        names.append(bone)
        parents.append(parent_joint)
        offsets.append(offset)
        joint_bones.append(bone)
        tip = bones[bone].direction * bones[bone].length
        kids = children.get(bone, [])
        for kid in kids:
            visit(kid, index, tip, depth + 1)
        if not kids:
            names.append(bone + "_end")
            parents.append(index)
            offsets.append(tip)
            joint_bones.append("")

    for bone in children["root"]:
        visit(bone, 0, np.zeros(3), 1)
    offsets = Y_UP_TO_Z_UP.apply(np.array(offsets) * metres_per_unit)
    try:
        return Skeleton(names, np.array(parents), offsets), joint_bones
    except ValueError as err:
        raise MocapError(path, str(err)) from None


def read_asf(path) -> AsfSkeleton:
    """Parse an ASF skeleton file."""
    path = pathlib.Path(path)
    sections = _sections(path, read_text_lines(path))
    for needed in ("bonedata", "hierarchy"):
        if needed not in sections:
            raise MocapError(path, f"no :{needed} section")
    metres_per_unit, angle = _parse_units(path, sections.get("units", []))
    to_radians = np.pi / 180 if angle == "deg" else 1.0
    order, axis, position, orientation = _parse_root(path, sections.get("root", []), to_radians)
    bones = _parse_bones(path, sections["bonedata"], to_radians)
    if not bones:
        raise MocapError(path, "no bones in :bonedata")
    children = _parse_hierarchy(path, sections["hierarchy"], bones)
    name = sections["name"][0][1][0] if sections.get("name") else ""
    skeleton, joint_bones = _build_skeleton(path, bones, children, metres_per_unit)
    return AsfSkeleton(str(path), name, metres_per_unit, angle, order, axis, position,
                       orientation, bones, children, skeleton, joint_bones)


def _frames(path, lines: List[str]):
    """Header keywords and, per frame, {bone: value tokens}; checks structure."""
    keywords, frames, numbers = set(), [], []
    current: Optional[Dict[str, List[str]]] = None
    for line_number, line in enumerate(lines, 1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        head = tokens[0]
        if head.startswith(":"):
            if current is not None:
                raise MocapError(path, f"line {line_number}: header keyword {head!r} after "
                                       f"the first frame")
            keywords.add(head.upper())
        elif len(tokens) == 1 and head.isdigit():
            numbers.append(int(head))
            current = {}
            frames.append(current)
        elif current is None:
            raise MocapError(path, f"line {line_number}: {line.strip()[:40]!r} before the "
                                   f"first frame number")
        elif head in current:
            raise MocapError(path, f"frame {numbers[-1]}: bone {head!r} appears twice")
        else:
            current[head] = tokens[1:]
    if not frames:
        raise MocapError(path, "no frames")
    steps = np.diff(numbers)
    if np.any(steps != 1):
        k = int(np.argmax(steps != 1))
        raise MocapError(path, f"frame numbers jump from {numbers[k]} to {numbers[k + 1]}")
    return keywords, frames, numbers


def _bone_values(path, frames, numbers, bone: str, count: int) -> np.ndarray:
    """(T, count) float values of `bone` over all frames, with precise error messages."""
    try:
        rows = [frame[bone] for frame in frames]
    except KeyError:
        k = next(i for i, frame in enumerate(frames) if bone not in frame)
        if k == len(frames) - 1 and len(frames[k]) < len(frames[0]):
            raise MocapError(path, f"frame {numbers[k]}: bone {bone!r} missing "
                                   f"(file ends inside the last frame: truncated?)") from None
        raise MocapError(path, f"frame {numbers[k]}: bone {bone!r} missing") from None
    if any(len(row) != count for row in rows):
        k = next(i for i, row in enumerate(rows) if len(row) != count)
        raise MocapError(path, f"frame {numbers[k]}: bone {bone!r} has {len(rows[k])} values, "
                               f"expected {count}")
    return parse_value_rows(path, rows, [f"frame {n} (bone {bone!r})" for n in numbers])


def _local_quaternions(axis_rotation: Rotation, dofs, values, to_radians) -> np.ndarray:
    """(T, 4) w-first Z-up local rotation A C M C^-1 A^-1 from the rotation dofs.

    M composes the dof rotations extrinsically, the first listed applied first."""
    frame = (Y_UP_TO_Z_UP * axis_rotation).as_quat(scalar_first=True)
    motion = np.zeros((len(values), 4))
    motion[:, 0] = 1.0
    for i, dof in enumerate(dofs):
        if dof not in _ROTATION_DOFS:
            continue
        half = 0.5 * to_radians * values[:, i]
        step = np.zeros((len(values), 4))
        step[:, 0] = np.cos(half)
        step[:, 1 + "xyz".index(dof[1])] = np.sin(half)
        motion = quat_multiply(step, motion)
    return quat_multiply(quat_multiply(frame, motion), quat_conjugate(frame))


def _amc_values(path, lines: List[str], counts: Dict[str, int], asf: AsfSkeleton):
    """Header keywords and {bone: (T, count) float values} of an AMC file."""
    regular = _regular_amc_values(lines, counts)
    if regular is not None:
        return regular
    # Anything unusual: the line-by-line parse, which names the exact problem.
    keywords, frames, numbers = _frames(path, lines)
    unknown = sorted({bone for frame in frames for bone in frame} - set(asf.bones) - {"root"})
    if unknown:
        k = next(i for i, f in enumerate(frames) if unknown[0] in f)
        raise MocapError(path, f"frame {numbers[k]}: bone {unknown[0]!r} is not in the "
                               f"skeleton {asf.path}")
    return keywords, {bone: _bone_values(path, frames, numbers, bone, count)
                      for bone, count in counts.items()}


def _regular_amc_values(lines: List[str], counts: Dict[str, int]):
    """The fast path for the usual file: every frame lists the same bones in the same order
    and every value is a finite number. Returns None for anything else."""
    start = next((i for i, line in enumerate(lines) if line.strip().isdigit()), None)
    if start is None:
        return None
    keywords = set()
    for line in lines[:start]:
        tokens = line.split()
        if tokens and tokens[0].startswith(":"):
            keywords.add(tokens[0].upper())
        elif tokens and not tokens[0].startswith("#"):
            return None
    body = [line for line in lines[start:] if line.strip()]
    period = next((i for i, line in enumerate(body[1:], 1) if line.strip().isdigit()),
                  len(body))
    if len(body) % period:
        return None
    names = [line.split(None, 1)[0] for line in body[1:period]]
    if sorted(names) != sorted(counts) or len(set(names)) != len(names):
        return None
    numbers = body[0::period]
    if not all(n.strip() == str(k) for k, n in enumerate(numbers, int(numbers[0]))):
        return None
    values = {}
    for offset, name in enumerate(names, 1):
        rows = body[offset::period]
        prefix = len(name)
        if not all(row.startswith(name) and row[prefix:prefix + 1].isspace() for row in rows):
            return None
        try:
            table = np.array(" ".join(row[prefix:] for row in rows).split(), dtype=np.float64)
        except ValueError:
            return None
        if table.size != len(rows) * counts[name] or not np.all(np.isfinite(table)):
            return None
        values[name] = table.reshape(len(rows), counts[name])
    return keywords, values


def read_amc(path, asf, fps: float = 120.0, source: Optional[Dict[str, str]] = None,
             rig: Optional[str] = None) -> Motion:
    """Parse an AMC motion file against `asf` (an `AsfSkeleton` or ASF path) into a `Motion`.

    fps: the clip's frame rate (AMC files do not store it). source: `Motion.source`
    (default: just the path). rig: `Motion.rig` (default: the detected built-in map, or "").
    """
    path = pathlib.Path(path)
    if not isinstance(asf, AsfSkeleton):
        asf = read_asf(asf)
    counts = {"root": len(asf.root_order)}
    counts.update({b.name: len(b.dofs) for b in asf.bones.values() if b.dofs})
    keywords, values = _amc_values(path, read_text_lines(path), counts, asf)
    values, trimmed = _trim_blank_frames(values)
    if ":RADIANS" in keywords and ":DEGREES" in keywords:
        raise MocapError(path, "header says both :DEGREES and :RADIANS")
    angle = ("rad" if ":RADIANS" in keywords else "deg" if ":DEGREES" in keywords
             else asf.angle_unit)
    to_radians = np.pi / 180 if angle == "deg" else 1.0

    num_frames = len(values["root"])
    rotations = np.zeros((num_frames, asf.skeleton.num_joints, 4))
    rotations[..., 0] = 1.0
    root_values = values["root"]
    root_axis = Rotation.from_euler(asf.root_axis.lower(), asf.root_orientation)
    rotations[:, 0] = _local_quaternions(root_axis, asf.root_order, root_values, to_radians)
    translation = np.tile(asf.root_position, (num_frames, 1))
    for i, dof in enumerate(asf.root_order):
        if dof[0] == "t":
            translation[:, "xyz".index(dof[1])] += root_values[:, i]
    root_translation = Y_UP_TO_Z_UP.apply(translation * asf.metres_per_unit)

    for j, bone_name in enumerate(asf.joint_bones):
        if j == 0 or bone_name not in counts:
            continue
        bone = asf.bones[bone_name]
        axis_rotation = Rotation.from_euler(bone.axis_order.lower(), bone.axis)
        rotations[:, j] = _local_quaternions(axis_rotation, bone.dofs, values[bone_name],
                                             to_radians)

    if rig is None:
        found = joint_maps.find_rig(asf.skeleton)
        rig = found.name if found else ""
    source = dict(source) if source else {"path": str(path)}
    if trimmed:
        source["trimmed_frames"] = str(trimmed)
    return Motion(asf.skeleton.copy(), rotations, root_translation, float(fps), rig, source)


def _trim_blank_frames(values: Dict[str, np.ndarray]):
    """Drops leading and trailing frames in which every value is exactly zero: some CMU
    clips (e.g. 09_10) start with such frames, a rest pose at the origin that the capture
    never recorded. Returns the values and the number of frames dropped."""
    blank = np.all(np.concatenate(list(values.values()), axis=1) == 0.0, axis=1)
    if blank.all():  # a clip that is nothing but the rest pose: keep it as it is
        return values, 0
    first = int(np.argmax(~blank))
    last = len(blank) - int(np.argmax(~blank[::-1]))
    trimmed = first + len(blank) - last
    return {bone: v[first:last] for bone, v in values.items()}, trimmed
