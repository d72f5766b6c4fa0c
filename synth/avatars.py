"""Built-in avatars: body proportions, a canonical skeleton and a skinned mesh.

Every avatar shares one topology: the 17 joints of `posecontract.layouts.H36M_17` plus the two
toes (`CANONICAL_JOINTS`). An avatar is defined by its height and a few proportion factors;
segment lengths follow anthropometric fractions of height (Drillis & Contini), scaled per
body part, so legs, torso, arms, shoulders and hips differ between avatars.

Retargeting (`synth.retarget`) gives a source skeleton these segment lengths; the mesh is
built around the retargeted rest pose, so body and skeleton always agree.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import trimesh

from posecontract.layouts import H36M_17

CANONICAL_JOINTS: Tuple[str, ...] = H36M_17.names + ("l_toe", "r_toe")
CANONICAL_PARENTS: Tuple[int, ...] = H36M_17.parents + (H36M_17.index("l_ankle"),
                                                        H36M_17.index("r_ankle"))
# (parent joint, child joint) of every segment, parents before children.
SEGMENTS: Tuple[Tuple[str, str], ...] = tuple(
    (CANONICAL_JOINTS[p], CANONICAL_JOINTS[c]) for c, p in enumerate(CANONICAL_PARENTS) if p >= 0)

# Segment length as a fraction of standing height, and the body part whose factor scales it.
_SEGMENT_FRACTIONS: Dict[str, Tuple[float, str]] = {
    "hip": (0.052, "hips"),          # pelvis centre -> hip joint
    "knee": (0.245, "legs"),         # thigh
    "ankle": (0.246, "legs"),        # shin
    "toe": (0.085, "legs"),          # ankle -> ball of the foot
    "spine": (0.125, "torso"),
    "thorax": (0.135, "torso"),
    "neck_nose": (0.065, "torso"),
    "head": (0.072, "head"),
    # thorax (neck base) -> glenohumeral centre, sloping down 0.0145 H: the joint centre
    # sits at 0.793 H, about 0.025 H (45 mm) below the acromion (0.818 H, Drillis & Contini
    # 1966), so hip joints -> shoulders is 0.263 H (460 mm at 1.75 m; HumanEva-I Train/:
    # 465 mm). It rose 0.0145 H before, putting the joint at acromion height.
    "shoulder": (0.098, "shoulders"),
    "elbow": (0.172, "arms"),        # upper arm
    "wrist": (0.150, "arms"),        # forearm
}


def _segment_kind(child: str) -> str:
    return child[2:] if child[:2] in ("l_", "r_") else child


@dataclasses.dataclass(frozen=True)
class Avatar:
    """A body: nominal height (m), per-part length factors and girth (mesh thickness)."""

    name: str
    height: float
    legs: float = 1.0
    torso: float = 1.0
    arms: float = 1.0
    shoulders: float = 1.0
    hips: float = 1.0
    head: float = 1.0
    girth: float = 1.0
    skin_colour: Tuple[float, float, float] = (0.80, 0.62, 0.50)

    def segment_length(self, parent: str, child: str) -> float:
        """Length in metres of the segment parent -> child (names from CANONICAL_JOINTS)."""
        fraction, part = _SEGMENT_FRACTIONS[_segment_kind(child)]
        return fraction * self.height * getattr(self, part)

    def leg_length(self) -> float:
        """Thigh plus shin, metres: the ratio of these scales a clip's root path."""
        return self.segment_length("l_hip", "l_knee") + self.segment_length("l_knee", "l_ankle")

    def rest_positions(self) -> np.ndarray:
        """(19, 3) canonical joints in a T-pose facing -Y, Z up, feet on z=0, metres."""
        directions = {
            "hip": (1, 0, -0.35), "knee": (0, 0, -1), "ankle": (0, 0, -1), "toe": (0, -0.9, -0.45),
            "spine": (0, 0.05, 1), "thorax": (0, -0.05, 1), "neck_nose": (0, -0.25, 1),
            "head": (0, 0.3, 1), "shoulder": (1, 0, -0.15), "elbow": (1, 0, 0), "wrist": (1, 0, 0),
        }
        positions = np.zeros((len(CANONICAL_JOINTS), 3))
        for (parent, child) in SEGMENTS:
            d = np.array(directions[_segment_kind(child)], dtype=float)
            if child.startswith("r_"):
                d[0] = -d[0]
            d /= np.linalg.norm(d)
            # The person faces -Y, so their left is +X.
            p, c = CANONICAL_JOINTS.index(parent), CANONICAL_JOINTS.index(child)
            positions[c] = positions[p] + d * self.segment_length(parent, child)
        ankle_height = 0.039 * self.height * self.legs
        feet = [CANONICAL_JOINTS.index(n) for n in ("l_ankle", "r_ankle")]
        positions[:, 2] -= positions[feet, 2].min() - ankle_height
        return positions

    def trunk_rest_positions(self) -> np.ndarray:
        """(19, 3) this avatar's own rest joints, which retargeting gives the trunk segments
        (pelvis to hip joints, spine, neck, head, clavicles: `synth.retarget.
        body_trunk_offsets`), as for Anny bodies. Without it the trunk kept the mocap rig's
        layout (an Acclaim root 8 cm above its hip joints, clavicles rising to the acromion),
        so the posed shoulders sat 50 mm above where this avatar's landmarks put them."""
        return self.rest_positions()

    def standing_height(self) -> float:
        """Floor to top of head in the rest pose, metres (head joint plus the skull above it)."""
        rest = self.rest_positions()
        return float(rest[CANONICAL_JOINTS.index("head"), 2] + self.head_radius())

    def head_radius(self) -> float:
        return 0.06 * self.height * self.head

    def landmarks(self) -> Dict[str, np.ndarray]:
        """Rest-pose positions (3,) of every `posecontract.conventions.LANDMARKS` entry, in the
        frame of `rest_positions()` (T-pose facing -Y, person's left +X, Z up), metres.

        Proportions (fractions of stature H, scaled by the avatar's part factors):
        - pelvis: the root is taken as the pelvis centre (mid-way between the mid-ASIS and
          mid-PSIS points, at ASIS height), inter-ASIS breadth PW = 0.14 H and pelvis depth
          PD = 0.09 H (adult means about 0.24 m and 0.16 m). The hip joint centres are the
          canonical hip joints, about which the thighs rotate (0.530 H above the floor,
          Drillis & Contini 1966's trochanter height); a separate Harrington et al. 2007
          regression point 54 mm lower made pelvis-fixed hip keypoints slide against the
          thigh (8.8 mm within-clip spread of the hip-knee length) and the trunk 50 mm long.
        - greater trochanter 0.040 H lateral and 0.008 H below the hip joint centre (femoral
          neck and offset, about 70 mm).
        - head: vertex on the skull sphere above the head joint (`standing_height`); eyes
          0.064 H below the vertex (Drillis & Contini 1966: eye height 0.936 H), 0.036 H apart
          (interpupillary distance 63 mm, Dodgson 2004); tragion (ear) 0.006 H below eye
          level, bitragion breadth 0.079 H (about 138 mm); eyes 0.045 H and the nose tip
          0.068 H in front of the tragion plane, the nose tip 0.090 H below the vertex; chin
          (gnathion) 0.130 H below the vertex (head height, Drillis & Contini).
        - acromion 0.021 H above and 0.006 H lateral of the shoulder joint centre.
        - foot (length 0.152 H, Drillis & Contini): heel 0.030 H behind the ankle, big toe
          tip 0.035 H and little toe tip 0.018 H ahead of the ball of the foot.
        """
        rest = self.rest_positions()
        at = {name: rest[i] for i, name in enumerate(CANONICAL_JOINTS)}
        h = self.height
        pw, pd = 0.14 * h * self.hips, 0.09 * h * self.hips
        forward, up = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])
        out: Dict[str, np.ndarray] = {}
        for side, sign in (("l", 1.0), ("r", -1.0)):  # the person's left is +X
            lateral = np.array([sign, 0.0, 0.0])
            mid_asis = at["hip"] + forward * 0.5 * pd
            hip_centre = at[f"{side}_hip"].copy()  # the thigh's centre of rotation
            out[f"{side}_asis"] = mid_asis + lateral * 0.5 * pw
            out[f"{side}_hip_centre"] = hip_centre
            out[f"{side}_greater_trochanter"] = hip_centre + h * (0.040 * lateral - 0.008 * up)
            out[f"{side}_shoulder_centre"] = at[f"{side}_shoulder"].copy()
            out[f"{side}_acromion"] = at[f"{side}_shoulder"] + h * (0.006 * lateral + 0.021 * up)
            ankle, toe = at[f"{side}_ankle"], at[f"{side}_toe"]
            sole = 0.008 * h * self.legs
            out[f"{side}_heel"] = np.array([ankle[0], ankle[1] + 0.030 * h * self.legs, sole])
            out[f"{side}_big_toe"] = toe + h * self.legs * (0.035 * forward - 0.008 * lateral)
            out[f"{side}_big_toe"][2] = sole
            out[f"{side}_small_toe"] = toe + h * self.legs * (0.018 * forward + 0.022 * lateral)
            out[f"{side}_small_toe"][2] = sole * 0.75
        out["pelvis_centre"] = 0.5 * (out["l_hip_centre"] + out["r_hip_centre"])
        out["neck_base"] = at["thorax"].copy()
        out["mid_shoulder"] = 0.5 * (out["l_shoulder_centre"] + out["r_shoulder_centre"])

        hh = h * self.head
        vertex = at["head"] + up * self.head_radius()
        tragion_y = 0.5 * (at["head"][1] + at["neck_nose"][1])
        eye_z = vertex[2] - 0.064 * hh
        out["head_top"] = vertex
        out["chin"] = np.array([0.0, tragion_y - 0.050 * hh, vertex[2] - 0.130 * hh])
        out["nose"] = np.array([0.0, tragion_y - 0.068 * hh, vertex[2] - 0.090 * hh])
        for side, sign in (("l", 1.0), ("r", -1.0)):
            out[f"{side}_eye"] = np.array([sign * 0.018 * hh, tragion_y - 0.045 * hh, eye_z])
            out[f"{side}_ear"] = np.array([sign * 0.0395 * hh, tragion_y, eye_z - 0.006 * hh])
        for name in ("head_top", "chin", "nose", "l_eye", "r_eye", "l_ear", "r_ear"):
            out[name][0] += at["head"][0]
        return out

    def mesh(self, rest_positions: np.ndarray | None = None) -> "SkinnedMesh":
        """Skinned mesh around `rest_positions` (19, 3) (default: this avatar's T-pose)."""
        rest = self.rest_positions() if rest_positions is None else np.asarray(rest_positions)
        return build_skinned_mesh(rest, self._radii(), self.head_radius())

    def _radii(self) -> Dict[str, float]:
        """Capsule radius per segment kind, metres."""
        g, h = self.girth, self.height
        return {"hip": 0.055 * h * g, "knee": 0.042 * h * g, "ankle": 0.030 * h * g,
                "toe": 0.020 * h * g, "spine": 0.085 * h * g, "thorax": 0.080 * h * g,
                "neck_nose": 0.030 * h * g, "head": 0.0, "shoulder": 0.035 * h * g,
                "elbow": 0.028 * h * g, "wrist": 0.022 * h * g}


@dataclasses.dataclass
class SkinnedMesh:
    """A triangle mesh bound to the canonical skeleton for linear blend skinning.

    vertices: (V, 3) float64 rest-pose positions, metres.
    faces:    (F, 3) int triangle indices.
    weights:  (V, 19) float64 skinning weights (rows sum to 1). Column c is the segment that
              ends at canonical joint c (parent(c) -> c); column 0 (the root has no incoming
              segment) stays zero. The skull belongs to the "head" segment.
    skin:     optional (V,) bool, vertices drawn in skin colour whatever the clothing (the
              hands of a body whose hands move with the forearm segment).
    bind:     optional (19, 3, 4) rigid transforms [R | t] per segment taking the mesh's own
              rest pose onto the skeleton's rest pose it is skinned to (a body modelled in
              another pose, `synth.bodies`); None when the mesh is built in that rest pose.
    """

    vertices: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    bind: Optional[np.ndarray] = None
    skin: Optional[np.ndarray] = None  # (V,) bool: always skin-coloured (hands), or None

    def trimesh(self) -> trimesh.Trimesh:
        return trimesh.Trimesh(self.vertices, self.faces, process=False)

    def bound(self) -> "SkinnedMesh":
        """This mesh carried onto the skeleton's rest pose by its bind transforms (blended
        with the skinning weights); itself when it has none."""
        if self.bind is None:
            return self
        blended = np.einsum("vc,cij->vij", self.weights, self.bind)
        vertices = np.einsum("vij,vj->vi", blended[..., :3], self.vertices) + blended[..., 3]
        return SkinnedMesh(vertices, self.faces, self.weights, skin=self.skin)


def build_skinned_mesh(rest: np.ndarray, radii: Dict[str, float],
                       head_radius: float) -> SkinnedMesh:
    """Capsules along the segments and a sphere for the skull, skinned to the joints."""
    parts: List[trimesh.Trimesh] = []
    owners: List[np.ndarray] = []
    for parent, child in SEGMENTS:
        p, c = CANONICAL_JOINTS.index(parent), CANONICAL_JOINTS.index(child)
        radius = radii[_segment_kind(child)]
        if radius <= 0:
            continue
        part = _capsule_between(rest[p], rest[c], radius)
        parts.append(part)
        owners.append(np.full(len(part.vertices), c))
    head, neck = CANONICAL_JOINTS.index("head"), CANONICAL_JOINTS.index("neck_nose")
    skull = trimesh.creation.icosphere(subdivisions=3, radius=head_radius)
    skull.apply_translation(0.5 * (rest[head] + rest[neck]) + [0, 0, 0.35 * head_radius])
    parts.append(skull)
    owners.append(np.full(len(skull.vertices), head))

    mesh = trimesh.util.concatenate(parts)
    owner = np.concatenate(owners)
    return SkinnedMesh(np.asarray(mesh.vertices, dtype=np.float64),
                       np.asarray(mesh.faces, dtype=np.int64),
                       _blend_weights(np.asarray(mesh.vertices), owner, rest))


def _capsule_between(a: np.ndarray, b: np.ndarray, radius: float) -> trimesh.Trimesh:
    length = float(np.linalg.norm(b - a))
    capsule = trimesh.creation.capsule(height=max(length, 1e-6), radius=radius, count=[12, 12])
    # trimesh's capsule is centred on the origin along Z.
    transform = trimesh.geometry.align_vectors([0, 0, 1], (b - a) / max(length, 1e-9))
    transform[:3, 3] = 0.5 * (a + b)
    capsule.apply_transform(transform)
    return capsule


def _blend_weights(vertices: np.ndarray, owner: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Rigid weights to each vertex's segment, blended with the parent segment near the joint
    they share, so elbows and knees bend smoothly instead of tearing."""
    weights = np.zeros((len(vertices), len(CANONICAL_JOINTS)))
    weights[np.arange(len(vertices)), owner] = 1.0
    for c, p in enumerate(CANONICAL_PARENTS):
        members = owner == c
        if p <= 0 or not members.any():
            continue
        segment = rest[c] - rest[p]
        along = (vertices[members] - rest[p]) @ segment / max(float(segment @ segment), 1e-12)
        # Over the first 15 % of the segment, hand weight over to the parent segment linearly.
        share = np.clip(0.5 - along / 0.3, 0.0, 0.5)
        weights[members, p] += share
        weights[members, c] -= share
    return weights


AVATARS: Dict[str, Avatar] = {a.name: a for a in (
    Avatar("ava", height=1.52, legs=0.97, torso=1.03, arms=0.97, shoulders=0.90, hips=1.08,
           girth=0.92, skin_colour=(0.93, 0.76, 0.64)),
    Avatar("ben", height=1.76, skin_colour=(0.80, 0.62, 0.50)),
    Avatar("cleo", height=1.70, legs=1.08, torso=0.92, arms=1.02, shoulders=0.94, hips=0.96,
           girth=0.85, skin_colour=(0.45, 0.30, 0.22)),
    Avatar("dan", height=1.63, legs=0.90, torso=1.10, arms=0.94, shoulders=1.15, hips=1.12,
           girth=1.30, skin_colour=(0.68, 0.50, 0.36)),
    Avatar("eli", height=1.93, legs=1.03, torso=0.98, arms=1.06, shoulders=1.08, hips=0.94,
           girth=0.97, skin_colour=(0.87, 0.70, 0.58)),
)}


def get_avatars(names: Sequence[str] | None = None) -> List[Avatar]:
    """Built-in avatars by name (all when `names` is None), with a clear error for typos."""
    if names is None:
        return list(AVATARS.values())
    unknown = [n for n in names if n not in AVATARS]
    if unknown:
        raise ValueError(f"unknown avatar(s) {unknown}; built-in: {sorted(AVATARS)}")
    return [AVATARS[n] for n in names]
