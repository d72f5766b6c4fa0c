"""BVH reader producing `synth.motion.Motion`.

`bvhio.readAsBvh` reads the hierarchy (offsets, channels, end sites, frame time) from a copy
whose joints are renamed ``J0, J1, ...``: bvhio cuts names at the first space, and 3ds Max
Biped rigs name joints ``Bip01 L Thigh``; the whole names are read here. The motion block is
checked and converted here, vectorised: bvhio's per-key Python loop costs about 0.5 s for a
3000-frame clip, and it silently skips channel names it does not know and loops forever when
the file has fewer rows than ``Frames:``.

Semantics: a joint's rotation channels, in file order, compose intrinsically
(``Zrotation Xrotation Yrotation`` -> ``R = Rz Rx Ry``), the same as bvhio. Position channels
on any joint replace its OFFSET (Bandai-Namco's set writes six channels on every joint);
the deepest joint whose position channels move carries the body's path and becomes the
root, the joints above it (Blender's ``ROOT Armature`` with ``CHANNELS 0``) are dropped and
their transform folded into the path (see `_reroot`). Each End Site becomes a joint ``<joint>_end``.

Axes: the world is Z up. Most BVH files are Y up and are rotated +90 degrees about X (as
`synth.acclaim` does); Blender writes Z-up armatures without converting, and those are kept
as they are. ``up="auto"`` tells the two apart from the body (`detect_up_axis`).

Units: BVH declares none. ``scale`` is metres per file unit, or ``"auto"``: the candidate of
`SCALE_CANDIDATES` that makes the rest skeleton's largest extent closest (in ratio) to
`TYPICAL_HEIGHT_M`.
"""
from __future__ import annotations

import pathlib
import tempfile
import warnings
from typing import Dict, List, Optional, Union

import numpy as np
from scipy.spatial.transform import Rotation

from synth import joint_maps
from synth.kinematics import forward_kinematics
from synth.motion import MocapError, Motion, Skeleton, parse_value_rows, read_text_lines

with warnings.catch_warnings():  # bvhio's "import glm" warns about PyGLM's future rename
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import bvhio

Y_UP_TO_Z_UP = Rotation.from_euler("x", 90, degrees=True)
_TO_Z_UP = {"y": Y_UP_TO_Z_UP, "z": Rotation.identity()}
UP_AXES = ("auto", "y", "z")
TYPICAL_HEIGHT_M = 1.7
SCALE_CANDIDATES: Dict[str, float] = {
    "m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu_asf": 0.0254 / 0.45}
_CHANNELS = {f"{a}{kind}" for a in "XYZ" for kind in ("position", "rotation")}


def _split(path: pathlib.Path):
    """(hierarchy lines, frame count, frame time, motion rows as token lists)."""
    lines = read_text_lines(path)
    first = next((line.split() for line in lines if line.strip()), [""])
    if first[0].upper() != "HIERARCHY":
        raise MocapError(path, "does not start with HIERARCHY (not a BVH file?)")
    try:
        motion = next(i for i, line in enumerate(lines) if line.strip().upper() == "MOTION")
    except StopIteration:
        raise MocapError(path, "no MOTION section") from None
    rest = [line for line in lines[motion + 1:] if line.strip()]
    if len(rest) < 2 or not rest[0].strip().startswith("Frames:") \
            or not rest[1].strip().startswith("Frame Time:"):
        raise MocapError(path, "MOTION must be followed by 'Frames: N' and 'Frame Time: T'")
    try:
        frame_count = int(rest[0].split(":", 1)[1])
        frame_time = float(rest[1].split(":", 1)[1])
    except ValueError:
        raise MocapError(path, f"cannot read {rest[0].strip()!r} / {rest[1].strip()!r}") from None
    if frame_count < 1:
        raise MocapError(path, f"header says {frame_count} frames")
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise MocapError(path, f"frame time {frame_time} is not positive")
    rows = rest[2:]
    if len(rows) < frame_count:
        raise MocapError(path, f"motion has {len(rows)} rows but header says "
                               f"{frame_count} frames")
    return lines[:motion], frame_count, frame_time, [r.split() for r in rows[:frame_count]]


def _check_channels(path, hierarchy: List[str]) -> int:
    """Validate CHANNELS lines before bvhio (which skips unknown names); total count."""
    joint, total = "?", 0
    for number, line in enumerate(hierarchy, 1):
        tokens = line.split()
        if tokens and tokens[0] in ("ROOT", "JOINT"):
            joint = tokens[1] if len(tokens) > 1 else "?"
        elif tokens and tokens[0] == "CHANNELS":
            for name in tokens[2:]:
                if name not in _CHANNELS:
                    raise MocapError(path, f"line {number}: BVH channel {name!r} of joint "
                                           f"{joint!r} not understood")
            total += len(tokens) - 2
    return total


def _read_hierarchy(path: pathlib.Path, hierarchy: List[str]):
    """bvhio's parse of the header only (also sidesteps its platform-encoding open)."""
    header = "\n".join(hierarchy) + "\nMOTION\nFrames: 0\nFrame Time: 1\n"
    with tempfile.TemporaryDirectory() as tmp:
        header_path = pathlib.Path(tmp) / "header.bvh"
        header_path.write_text(header, encoding="utf-8")
        try:
            return bvhio.readAsBvh(str(header_path), loadKeyFrames=False)
        except (SyntaxError, ValueError, IndexError) as err:
            # bvhio's debug info holds the offending line (its line numbers are unreliable).
            info = err.args[1] if len(err.args) > 1 else None
            where = f" at {info[3].strip()!r}" if isinstance(info, tuple) and len(info) > 3 else ""
            raise MocapError(path, f"hierarchy not understood: {err.args[0]}{where}") from None


def _joint_names(hierarchy: List[str]) -> List[str]:
    """ROOT/JOINT names in file order, whole (3ds Max Biped rigs have ``Bip01 L Thigh``)."""
    names = []
    for line in hierarchy:
        tokens = line.split(None, 1)
        if tokens and tokens[0] in ("ROOT", "JOINT"):
            names.append(tokens[1].strip() if len(tokens) > 1 else "")
    return names


def _placeholder_header(hierarchy: List[str]) -> List[str]:
    """The hierarchy with joint k renamed ``J<k>``: bvhio cuts names at the first space."""
    out, k = [], 0
    for line in hierarchy:
        tokens = line.split(None, 1)
        if tokens and tokens[0] in ("ROOT", "JOINT"):
            out.append(f"{tokens[0]} J{k}")
            k += 1
        else:
            out.append(line)
    return out


def _end_site_owners(hierarchy: List[str]) -> set:
    """Names of the joints that own an 'End Site' block (bvhio gives every joint a default)."""
    stack, pending, owners = [], None, set()
    for line in hierarchy:
        tokens = line.split()
        if not tokens:
            continue
        if tokens[0] in ("ROOT", "JOINT"):
            pending = tokens[1] if len(tokens) > 1 else ""
        elif tokens[0] == "End":
            if stack:
                owners.add(stack[-1])
            pending = None
        elif tokens[0] == "{":
            stack.append(pending)
        elif tokens[0] == "}" and stack:
            stack.pop()
    return owners


def _values(path, rows: List[List[str]], channel_count: int) -> np.ndarray:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    if np.any(lengths != channel_count):
        k = int(np.argmax(lengths != channel_count))
        raise MocapError(path, f"motion row {k + 1} has {lengths[k]} values, the hierarchy "
                               f"declares {channel_count} channels")
    return parse_value_rows(path, rows, [f"frame {k + 1}" for k in range(len(rows))])


def frame_rate(frame_time: float) -> float:
    """1 / frame_time, snapped to a whole number when the file rounded it (.0083333 -> 120)."""
    fps = 1.0 / frame_time
    return float(round(fps)) if abs(fps - round(fps)) < 1e-4 * fps else fps


def auto_scale(rest_positions: np.ndarray) -> float:
    """Metres per file unit: the candidate putting the rest skeleton's size nearest 1.7 m."""
    extent = float(np.max(np.ptp(rest_positions, axis=0)))
    if extent <= 0:
        return 1.0
    factors = np.array(list(SCALE_CANDIDATES.values()))
    return float(factors[np.argmin(np.abs(np.log(extent * factors / TYPICAL_HEIGHT_M)))])


def _metres_per_unit(scale: Union[float, str], skeleton: Skeleton) -> float:
    if isinstance(scale, str):
        if scale == "auto":
            return auto_scale(skeleton.rest_positions())
        if scale in SCALE_CANDIDATES:
            return SCALE_CANDIDATES[scale]
        raise ValueError(f"scale must be a number, 'auto' or one of "
                         f"{sorted(SCALE_CANDIDATES)}, got {scale!r}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive, got {scale}")
    return float(scale)


def _joint_tree(container, names_in_file: List[str], end_sites: set):
    """Depth-first (names, parents, offsets, rotation columns, position columns, end-site
    flags) of the file's joints.

    Rotation columns: [(axis letter, value column)] in file order; position columns:
    {axis 0..2: value column}. An End Site becomes a joint ``<joint>_end`` without channels,
    after its owner's children as in the file (bvhio keeps it on its owner).
    """
    names, parents, offsets, rotations, positions, ends = [], [], [], [], [], []
    column = 0
    stack = [(container.Root, -1, False)]
    while stack:
        joint, parent, is_end = stack.pop()
        index = len(names)
        name = names_in_file[int(joint.Name[1:])]
        names.append(name + "_end" if is_end else name)
        parents.append(parent)
        offsets.append(list(joint.EndSite if is_end else joint.Offset))
        ends.append(is_end)
        rotation, position = [], {}
        for channel in () if is_end else joint.Channels:
            if channel.endswith("rotation"):
                rotation.append((channel[0], column))
            else:
                position["XYZ".index(channel[0])] = column
            column += 1
        rotations.append(rotation)
        positions.append(position)
        if is_end:
            continue
        if joint.Name in end_sites:
            stack.append((joint, index, True))  # pushed first: popped after the children
        stack.extend((child, index, False) for child in reversed(joint.Children))
    return (names, np.array(parents), np.array(offsets, dtype=np.float64), rotations,
            positions, np.array(ends))


def _translations(values: np.ndarray, offsets: np.ndarray,
                  position_columns) -> Dict[int, np.ndarray]:
    """joint -> (T, 3) local translation, for joints with position channels: the channels
    replace the OFFSET's components they name."""
    out = {}
    for j, columns in enumerate(position_columns):
        if columns:
            translation = np.tile(offsets[j], (len(values), 1))
            for axis, c in columns.items():
                translation[:, axis] = values[:, c]
            out[j] = translation
    return out


def _local_rotations(values: np.ndarray, rotation_columns) -> np.ndarray:
    """(T, J, 4) local rotations (w, x, y, z) in the file's frame; channels compose in file
    order, intrinsically (``Zrotation Xrotation Yrotation`` -> Rz Rx Ry)."""
    rotations = np.zeros((len(values), len(rotation_columns), 4))
    rotations[..., 0] = 1.0
    for j, columns in enumerate(rotation_columns):
        if columns:
            seq = "".join(a for a, _ in columns)  # upper case: intrinsic
            local = Rotation.from_euler(seq, values[:, [c for _, c in columns]], degrees=True)
            rotations[:, j] = local.as_quat(scalar_first=True)
    return rotations


def _reroot(path, names, parents, offsets, rotations, translations, ends):
    """Make the joint that carries the clip's path the root.

    Position channels replace a joint's OFFSET. When they hold still (within 1e-3 of the
    largest offset) they simply become its offset. When they move, the deepest moving joint
    carries the body's path and becomes the root; the joints above it (Blender's
    zero-channel ``ROOT Armature``, Bandai-Namco's fixed ``joint_Root`` above a moving
    ``Hips``, a game rig's ground-projected root motion above its hips) are dropped and
    their transform, frame by frame, folded into the new root's path and orientation. They
    must carry nothing else; moving joints on different branches (a stretching bone) are
    refused.

    Returns names, parents, offsets (root's zero), rotations (T, J', 4), root path (T, 3),
    all in the file's frame and units, and the names of the dropped joints.
    """
    size = max(float(np.linalg.norm(offsets, axis=1).max()), 1e-9)
    offsets = offsets.copy()
    for j, translation in translations.items():
        offsets[j] = translation[0]
    root_path = translations.get(0, np.tile(offsets[0], (len(rotations), 1)))
    moving = [j for j, t in sorted(translations.items()) if j > 0
              and np.ptp(t, axis=0).max() > 1e-3 * size]
    if not moving:
        offsets[0] = 0.0
        return names, parents, offsets, rotations, root_path, []
    new_root = moving[-1]  # depth-first order: the deepest one, if they share a branch
    chain = []  # the root down to new_root's parent
    j = parents[new_root]
    while j >= 0:
        chain.append(j)
        j = parents[j]
    chain.reverse()
    stray = [j for j in moving if j != new_root and j not in chain]
    if stray:
        raise MocapError(path, f"joints {names[stray[0]]!r} and {names[new_root]!r} both "
                               f"move through their position channels (a stretching bone); "
                               f"only the joints that carry the body's path may")
    for k in chain:
        others = [names[c] for c in np.flatnonzero(parents == k)
                  if not ends[c] and c not in chain and c != new_root]
        if others:
            raise MocapError(path, f"joint {names[new_root]!r} moves through its position "
                                   f"channels below {names[k]!r}, which also carries "
                                   f"{others[:3]}: only the joint that carries the body's "
                                   f"path and those above it may move (a stretching bone?)")
    # The dropped joints' transform, frame by frame.
    position = root_path.copy()
    orientation = Rotation.from_quat(rotations[:, 0], scalar_first=True)
    for k in chain[1:]:
        position = position + orientation.apply(translations.get(k, offsets[k]))
        orientation = orientation * Rotation.from_quat(rotations[:, k], scalar_first=True)
    path_new = position + orientation.apply(translations[new_root])
    rotations = rotations.copy()
    rotations[:, new_root] = (orientation * Rotation.from_quat(
        rotations[:, new_root], scalar_first=True)).as_quat(scalar_first=True)
    keep = [j for j in range(len(names)) if _is_below(parents, j, new_root)]
    remap = {old: new for new, old in enumerate(keep)}
    new_parents = np.array([-1] + [remap[int(parents[j])] for j in keep[1:]])
    new_offsets = offsets[keep]
    new_offsets[0] = 0.0
    return ([names[j] for j in keep], new_parents, new_offsets, rotations[:, keep], path_new,
            [names[k] for k in chain])


def _is_below(parents: np.ndarray, j: int, ancestor: int) -> bool:
    while j > ancestor:
        j = parents[j]
    return j == ancestor


def _pose_votes(poses: np.ndarray, joint_map: Optional[joint_maps.JointMap],
                skeleton: Skeleton) -> np.ndarray:
    """(N,) "y", "z" or "" (undecided) for poses (N, J, 3) in the file's frame."""
    if joint_map is not None:
        head, l_ankle, r_ankle = (skeleton.index(joint_map.joints[k])
                                  for k in ("head", "l_ankle", "r_ankle"))
        up = poses[:, head] - 0.5 * (poses[:, l_ankle] + poses[:, r_ankle])
        limit = 0.8 * np.linalg.norm(up, axis=-1)  # within 37 degrees of the axis
        y, z = up[:, 1] > limit, up[:, 2] > limit
    else:
        extent = np.ptp(poses, axis=1)
        y, z = extent[:, 1] > 2.0 * extent[:, 2], extent[:, 2] > 2.0 * extent[:, 1]
    return np.where(y, "y", np.where(z, "z", ""))


def detect_up_axis(skeleton: Skeleton, rotations: np.ndarray,
                   joint_map: Optional[joint_maps.JointMap] = None) -> str:
    """The file's up axis, "y" or "z", from the body: the head is above the feet.

    skeleton, rotations (T, J, 4): the clip in the file's own frame and units.
    Each pose votes: with a `joint_map` that fits, for the axis within 37 degrees of the
    vector from the ankles' midpoint to the head; without one, for the axis along which the
    body is at least twice as tall as it is deep (of Y and Z, the other one is the
    front-back axis in both conventions). The rest skeleton's vote decides, unless 80% of
    the clip's poses (root-relative, up to 200 evenly spaced) vote for the other axis (a
    rest pose stored in other axes than the motion). Without a rest vote (Bandai-Namco's
    rest lays every bone along X) the poses' majority decides; ties and no votes at all give
    "y", BVH's usual convention.
    """
    if joint_map is not None and joint_map.missing_joints(skeleton):
        joint_map = None
    step = max(1, len(rotations) // 200)
    poses, _ = forward_kinematics(skeleton.parents, skeleton.offsets, rotations[::step],
                                  np.zeros((len(rotations[::step]), 3)))
    rest_vote = _pose_votes(skeleton.rest_positions()[None], joint_map, skeleton)[0]
    votes = _pose_votes(poses, joint_map, skeleton)
    count = {axis: int(np.sum(votes == axis)) for axis in ("y", "z")}
    if rest_vote:
        other = "z" if rest_vote == "y" else "y"
        return other if count[other] >= 0.8 * len(votes) else rest_vote
    return "z" if count["z"] > count["y"] else "y"


def read_bvh(path, scale: Union[float, str] = "auto",
             source: Optional[Dict[str, str]] = None, rig: Optional[str] = None,
             up: str = "auto", joint_map=None) -> Motion:
    """Read a BVH file into a `Motion` (world Z up, metres).

    scale: metres per file unit, a key of `SCALE_CANDIDATES`, or "auto".
    up: the file's up axis, "y" (BVH's usual convention), "z" (Blender's Z-up armatures
        written without axis conversion) or "auto" (`detect_up_axis`). A Y-up file is
        rotated +90 degrees about X into the Z-up world; a Z-up file is already in it.
    joint_map: a `JointMap` or a sequence of them, tried in order (then the built-ins) to
        find head and feet for the up axis and to name `Motion.rig`.
    source: `Motion.source` (default: just the path). rig: `Motion.rig` (default: the name
        of the map that fits, or "" when none does).
    The up axis used goes to ``source["up_axis"]``; joints dropped above the one that carries
    the path (see `_reroot`) to ``source["dropped_root_joints"]``.
    Raises MocapError naming the file and the problem.
    """
    path = pathlib.Path(path)
    if up not in UP_AXES:
        raise ValueError(f"up axis must be one of {UP_AXES}, got {up!r}")
    hierarchy, frame_count, frame_time, rows = _split(path)
    channel_count = _check_channels(path, hierarchy)
    values = _values(path, rows, channel_count)
    placeholders = _placeholder_header(hierarchy)
    container = _read_hierarchy(path, placeholders)
    names, parents, offsets, rotation_columns, position_columns, ends = _joint_tree(
        container, _joint_names(hierarchy), _end_site_owners(placeholders))
    rotations = _local_rotations(values, rotation_columns)
    names, parents, offsets, rotations, root_path, dropped = _reroot(
        path, names, parents, offsets, rotations,
        _translations(values, offsets, position_columns), ends)
    try:
        skeleton = Skeleton(names, parents, offsets)
    except ValueError as err:
        raise MocapError(path, str(err)) from None
    metres = _metres_per_unit(scale, skeleton)
    skeleton.offsets = skeleton.offsets * metres
    root_path = root_path * metres

    candidates = [joint_map] if isinstance(joint_map, joint_maps.JointMap) else list(
        joint_map or ())
    found = joint_maps.choose_joint_map(skeleton, candidates)
    if up == "auto":
        up = detect_up_axis(skeleton, rotations, found)
    to_world = _TO_Z_UP[up]
    skeleton.offsets = to_world.apply(skeleton.offsets)
    root_translation = to_world.apply(root_path)
    # A R A^-1 is R with its axis rotated by A: rotate the quaternions' vector parts.
    rotations[..., 1:] = to_world.apply(rotations[..., 1:].reshape(-1, 3)).reshape(
        rotations.shape[:2] + (3,))
    if rig is None:
        rig = found.name if found else ""
    meta = dict(source) if source else {"path": str(path)}
    meta["up_axis"] = up
    if dropped:
        meta["dropped_root_joints"] = ",".join(dropped)
    return Motion(skeleton, rotations, root_translation, frame_rate(frame_time), rig, meta)
