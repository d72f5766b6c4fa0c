"""BVH reader producing `synth.motion.Motion`.

`bvhio.readAsBvh` reads the hierarchy (names, offsets, channels, end sites, frame time). The
motion block is checked and converted here, vectorised: bvhio's per-key Python loop costs
about 0.5 s for a 3000-frame clip, and it silently skips channel names it does not know and
loops forever when the file has fewer rows than ``Frames:``.

Semantics: a joint's rotation channels, in file order, compose intrinsically
(``Zrotation Xrotation Yrotation`` -> ``R = Rz Rx Ry``), the same as bvhio. The root's position
channels replace its OFFSET (a root without them stays at its OFFSET); position channels of
other joints are ignored (a `Skeleton` has fixed offsets). Each End Site becomes a joint
``<joint>_end``. The source is taken as Y-up and rotated into the Z-up world by conjugation
with +90 degrees about X, like `synth.acclaim`.

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
from synth.motion import MocapError, Motion, Skeleton, parse_value_rows, read_text_lines

with warnings.catch_warnings():  # bvhio's "import glm" warns about PyGLM's future rename
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import bvhio

Y_UP_TO_Z_UP = Rotation.from_euler("x", 90, degrees=True)
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


def read_bvh(path, scale: Union[float, str] = "auto",
             source: Optional[Dict[str, str]] = None, rig: Optional[str] = None) -> Motion:
    """Read a BVH file into a `Motion` (Z-up, metres).

    scale: metres per file unit, a key of `SCALE_CANDIDATES`, or "auto".
    source: `Motion.source` (default: just the path). rig: `Motion.rig` (default: the detected
    built-in joint map, or "" when none fits).
    """
    path = pathlib.Path(path)
    hierarchy, frame_count, frame_time, rows = _split(path)
    channel_count = _check_channels(path, hierarchy)
    values = _values(path, rows, channel_count)
    container = _read_hierarchy(path, hierarchy)
    end_sites = _end_site_owners(hierarchy)

    names, parents, offsets, columns = [], [], [], []
    root_position_columns = {}
    column = 0

    def visit(joint, parent: int):
        nonlocal column
        index = len(names)
        names.append(joint.Name)
        parents.append(parent)
        offsets.append([0.0, 0.0, 0.0] if parent < 0 else list(joint.Offset))
        rotation = []
        for channel in joint.Channels:
            if channel.endswith("rotation"):
                rotation.append((channel[0], column))
            elif parent < 0:
                root_position_columns["XYZ".index(channel[0])] = column
            column += 1
        columns.append(rotation)
        for child in joint.Children:
            visit(child, index)
        if joint.Name in end_sites:
            names.append(joint.Name + "_end")
            parents.append(index)
            offsets.append(list(joint.EndSite))
            columns.append([])

    visit(container.Root, -1)
    try:
        skeleton = Skeleton(names, np.array(parents), Y_UP_TO_Z_UP.apply(np.array(offsets)))
    except ValueError as err:
        raise MocapError(path, str(err)) from None
    metres = _metres_per_unit(scale, skeleton)
    skeleton.offsets = skeleton.offsets * metres

    translation = np.tile(np.array(container.Root.Offset), (frame_count, 1))
    for axis, c in root_position_columns.items():
        translation[:, axis] = values[:, c]
    root_translation = Y_UP_TO_Z_UP.apply(translation) * metres
    rotations = np.zeros((frame_count, len(names), 4))
    rotations[..., 0] = 1.0
    for j, rotation in enumerate(columns):
        if rotation:
            seq = "".join(a for a, _ in rotation)  # upper case: intrinsic
            local = Rotation.from_euler(seq, values[:, [c for _, c in rotation]], degrees=True)
            rotations[:, j] = local.as_quat(scalar_first=True)
    # A R A^-1 is R with its axis rotated by A: rotate the quaternions' vector parts.
    rotations[..., 1:] = Y_UP_TO_Z_UP.apply(rotations[..., 1:].reshape(-1, 3)).reshape(
        frame_count, len(names), 3)

    if rig is None:
        found = joint_maps.find_rig(skeleton)
        rig = found.name if found else ""
    return Motion(skeleton, rotations, root_translation, frame_rate(frame_time), rig,
                  dict(source) if source else {"path": str(path)})
