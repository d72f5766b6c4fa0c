"""Keypoint conventions as data: which point of a body each keypoint of a dataset stands for.

A *convention* (Human3.6M's 17 joints, COCO's 17 keypoints, HumanEva-I's 15, ...) is a
`posecontract.layouts.JointLayout` (names, parents, left/right pairs) plus one *definition*
per keypoint, saying where on an avatar's body that keypoint lies:

- `Joint(name)`: a joint centre of the generator's canonical skeleton (`CANONICAL_JOINTS`,
  the names `synth.avatars` and `synth.joint_maps` use);
- `Landmark(name)`: a named anatomical landmark from the fixed vocabulary `LANDMARKS`
  (nose, eyes, ears, femoral heads, ...). Each body provides the rest-pose position of the
  landmarks it knows (`landmarks()` on a body); each landmark moves rigidly with one
  canonical bone (`BONES`);
- `BonePoint(bone, offset, origin)`: a point fixed in a canonical bone's frame, for dataset
  definitions that are no anatomical landmark (Human3.6M's hips sit 266 mm apart, wider than
  the femoral heads; its "neck/nose" points towards the nose). Its rest position is the rest
  position of `origin` (a canonical joint or a landmark) plus `offset` in the *body frame*,
  times the body's stature when `measure == "height"`, plus `along` times the bone's rest
  vector (start joint -> end joint): `along=0.1` on a forearm lies a tenth of that forearm
  beyond `origin` towards the hand, on any body and rest pose.

**Body frame** (used by every offset and by `BODY_FRAME_TARGETS`): x towards the person's
right, y forward (where the person faces), z up, in the rest pose; it is right-handed. The
generator's rest pose (`synth.avatars.Avatar.rest_positions`) faces -Y with the person's left
at +X, so a body-frame vector (x, y, z) is (-x, -y, z) there (`body_to_rest`).

A body (the capsule avatars of `synth.avatars`, Anny bodies, ...) offers `name`, `height`
(stature, metres), `rest_positions()` ((19, 3) `CANONICAL_JOINTS`, metres) and `landmarks()`
(landmark name -> (3,) rest position, same frame). A convention that needs a landmark the
body lacks is refused by `KeypointConvention.check_body` with one line naming the
convention, the keypoint, the landmark and the body.

Pure data and NumPy: both `synth` (which evaluates conventions on retargeted clips,
`synth.keypoints`) and `vp3dkeras` (which trains between conventions) import it, and it
imports neither.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from posecontract.layouts import ACCLAIM_17, COCO_17, H36M_17, HUMANEVA_15, JointLayout

#: Joint centres of the generator's canonical skeleton: the 17 joints of today's layout plus
#: the two toes (balls of the feet). Same order as `synth.avatars.CANONICAL_JOINTS`.
CANONICAL_JOINTS: Tuple[str, ...] = H36M_17.names + ("l_toe", "r_toe")

#: Canonical bones: name -> (start joint, end joint). A bone's frame is rigid with the body
#: part between the two joints; "pelvis" is the root's frame (start = end = the root, its
#: axes from the spine and the hip joints).
BONES: Dict[str, Tuple[str, str]] = {
    "pelvis": ("hip", "spine"),
    "abdomen": ("hip", "spine"),
    "chest": ("spine", "thorax"),
    "neck": ("thorax", "neck_nose"),
    "head": ("neck_nose", "head"),
    "l_clavicle": ("thorax", "l_shoulder"), "r_clavicle": ("thorax", "r_shoulder"),
    "l_upper_arm": ("l_shoulder", "l_elbow"), "r_upper_arm": ("r_shoulder", "r_elbow"),
    "l_forearm": ("l_elbow", "l_wrist"), "r_forearm": ("r_elbow", "r_wrist"),
    "l_thigh": ("l_hip", "l_knee"), "r_thigh": ("r_hip", "r_knee"),
    "l_shank": ("l_knee", "l_ankle"), "r_shank": ("r_knee", "r_ankle"),
    "l_foot": ("l_ankle", "l_toe"), "r_foot": ("r_ankle", "r_toe"),
}


@dataclasses.dataclass(frozen=True)
class LandmarkSpec:
    """One vocabulary landmark: the bone it moves rigidly with and what it is, anatomically."""

    bone: str
    description: str


def _sided(entries: Mapping[str, Tuple[str, str]]) -> Dict[str, LandmarkSpec]:
    """`l_x`/`r_x` pairs from entries written once with the side as `{s}` / `{side}`."""
    out: Dict[str, LandmarkSpec] = {}
    for name, (bone, description) in entries.items():
        for s, side in (("l", "left"), ("r", "right")):
            out[name.format(s=s)] = LandmarkSpec(bone.format(s=s), description.format(side=side))
    return out


#: The landmark vocabulary: every name a `Landmark` definition may use, with its bone.
#: A body provides rest positions for some or all of them (`landmarks()`).
LANDMARKS: Dict[str, LandmarkSpec] = {
    "pelvis_centre": LandmarkSpec("pelvis", "midpoint of the two hip joint centres"),
    "nose": LandmarkSpec("head", "tip of the nose (pronasale), on the face's surface"),
    "head_top": LandmarkSpec("head", "top of the skull (vertex), on the surface"),
    "chin": LandmarkSpec("head", "lowest point of the chin (gnathion), on the surface"),
    "neck_base": LandmarkSpec("chest", "centre of the neck at its base, between the "
                                       "suprasternal notch and C7"),
    "mid_shoulder": LandmarkSpec("chest", "midpoint of the two glenohumeral joint centres"),
    **_sided({
        "{s}_eye": ("head", "centre of the {side} eye (pupil), on the face's surface"),
        "{s}_ear": ("head", "{side} ear canal entrance (tragion), on the head's surface"),
        "{s}_hip_centre": ("pelvis", "{side} hip joint centre (femoral head), placed by the "
                                     "Harrington et al. 2007 regression on pelvis size"),
        "{s}_asis": ("pelvis", "{side} anterior superior iliac spine, on the surface"),
        "{s}_greater_trochanter": ("{s}_thigh", "{side} greater trochanter, lateral bony "
                                                "prominence of the femur"),
        "{s}_shoulder_centre": ("{s}_upper_arm", "{side} glenohumeral joint centre (humeral "
                                                 "head)"),
        "{s}_acromion": ("{s}_clavicle", "{side} acromion, top of the shoulder, on the "
                                         "surface"),
        "{s}_heel": ("{s}_foot", "back of the {side} heel (pternion), at the sole"),
        "{s}_big_toe": ("{s}_foot", "tip of the {side} big toe"),
        "{s}_small_toe": ("{s}_foot", "tip of the {side} little toe"),
    }),
}

#: Stature the height-scaled offsets below are written at (metres): an offset of `_mm(x)` is
#: x millimetres on a 1.75 m body and scales with the body's stature.
REFERENCE_HEIGHT = 1.75


def _mm(*xyz_mm: float) -> Tuple[float, float, float]:
    """Millimetres at `REFERENCE_HEIGHT` -> a fraction of stature (for measure="height")."""
    return tuple(v / 1000.0 / REFERENCE_HEIGHT for v in xyz_mm)


@dataclasses.dataclass(frozen=True)
class Joint:
    """A canonical joint centre (a name in `CANONICAL_JOINTS`)."""

    name: str


@dataclasses.dataclass(frozen=True)
class Landmark:
    """A vocabulary landmark (a name in `LANDMARKS`); the body must provide it."""

    name: str


@dataclasses.dataclass(frozen=True)
class BonePoint:
    """A point fixed in `bone`'s frame (a name in `BONES`).

    Rest position = rest position of `origin` (a canonical joint or a landmark; default the
    bone's start joint) + `offset` (body frame: x right, y forward, z up), in metres when
    `measure == "m"` or as a fraction of the body's stature when `measure == "height"`,
    + `along` x (rest position of the bone's end joint - that of its start joint), a
    fraction of the bone's own length along it (unitless; may be negative).
    """

    bone: str
    offset: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    origin: Optional[str] = None
    measure: str = "height"
    along: float = 0.0

    def origin_name(self) -> str:
        return self.origin or BONES[self.bone][0]


Definition = Union[Joint, Landmark, BonePoint]


@dataclasses.dataclass(frozen=True)
class KeypointConvention:
    """A dataset's keypoints: a layout plus one body definition per keypoint.

    layout:      names, parents and left/right pairs (`l_`/`r_` prefixes).
    definitions: one `Joint` / `Landmark` / `BonePoint` per layout name, layout order.
    source:      where the definitions come from (papers, dataset documentation, measures).
    """

    name: str
    layout: JointLayout
    definitions: Tuple[Definition, ...]
    description: str = ""
    source: str = ""

    def __post_init__(self):
        problems = validate_definitions(self.name, self.layout.names, self.definitions)
        if problems:
            raise ValueError(problems[0])

    @property
    def names(self) -> Tuple[str, ...]:
        return self.layout.names

    @property
    def num_keypoints(self) -> int:
        return self.layout.num_joints

    def required_landmarks(self) -> Dict[str, str]:
        """Keypoint name -> landmark name for every landmark this convention needs (a
        `Landmark` definition or a `BonePoint` whose origin is a landmark)."""
        out = {}
        for keypoint, definition in zip(self.names, self.definitions):
            if isinstance(definition, Landmark):
                out[keypoint] = definition.name
            elif isinstance(definition, BonePoint) and definition.origin_name() in LANDMARKS:
                out[keypoint] = definition.origin_name()
        return out

    def check_body(self, available: Iterable[str], body: str) -> None:
        """ValueError (one line naming convention, keypoint, landmark and body) when the body
        lacks a landmark this convention needs."""
        available = set(available)
        for keypoint, landmark in self.required_landmarks().items():
            if landmark not in available:
                raise ValueError(f"keypoint convention {self.name!r}: keypoint {keypoint!r} "
                                 f"needs landmark {landmark!r}, which body {body!r} lacks")


def validate_definitions(name: str, keypoints: Sequence[str],
                         definitions: Sequence[Definition]) -> List[str]:
    """Problems (one line each) with a convention's definitions; empty when sound."""
    if len(keypoints) != len(definitions):
        return [f"keypoint convention {name!r}: {len(keypoints)} keypoints but "
                f"{len(definitions)} definitions"]
    problems = []
    for keypoint, d in zip(keypoints, definitions):
        where = f"keypoint convention {name!r}: keypoint {keypoint!r}"
        if isinstance(d, Joint):
            if d.name not in CANONICAL_JOINTS:
                problems.append(f"{where} names joint {d.name!r}, not a canonical joint "
                                f"({', '.join(CANONICAL_JOINTS)})")
        elif isinstance(d, Landmark):
            if d.name not in LANDMARKS:
                problems.append(f"{where} names landmark {d.name!r}, not in the vocabulary")
        elif isinstance(d, BonePoint):
            if d.bone not in BONES:
                problems.append(f"{where} names bone {d.bone!r}; bones: {', '.join(BONES)}")
            elif d.origin_name() not in CANONICAL_JOINTS and d.origin_name() not in LANDMARKS:
                problems.append(f"{where} has origin {d.origin_name()!r}, neither a canonical "
                                f"joint nor a landmark")
            if d.measure not in ("m", "height"):
                problems.append(f"{where} has measure {d.measure!r}; use 'm' or 'height'")
            if len(d.offset) != 3 or not np.all(np.isfinite(d.offset)):
                problems.append(f"{where} has offset {d.offset!r}; give three finite numbers")
            if not np.isfinite(d.along):
                problems.append(f"{where} has along {d.along!r}; give a finite number")
        else:
            problems.append(f"{where} has definition {d!r}; use Joint, Landmark or BonePoint")
    return problems


def body_to_rest(vectors: np.ndarray) -> np.ndarray:
    """(..., 3) body-frame vectors (x right, y forward, z up) -> the generator's rest frame
    (person's left +X, facing -Y, Z up)."""
    return np.asarray(vectors, dtype=np.float64) * np.array([-1.0, -1.0, 1.0])


def pelvis_axes(positions: np.ndarray, root: int, right_hip: int, left_hip: int,
                top: int) -> np.ndarray:
    """(..., K, 3) positions -> (..., 3, 3) rotations whose *rows* are a convention's own
    pelvis-frame axes in the positions' frame: x from the left to the right hip, z from
    `root` towards `top` (the thorax) made orthogonal to x, y = z x x (forward). The body
    frame of `BODY_FRAME_TARGETS`; ``axes @ (p - p_root)`` gives body-frame coordinates."""
    positions = np.asarray(positions, dtype=np.float64)
    x = positions[..., right_hip, :] - positions[..., left_hip, :]
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    z = positions[..., top, :] - positions[..., root, :]
    z -= (z * x).sum(-1, keepdims=True) * x
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    return np.stack([x, np.cross(z, x), z], axis=-2)


# --- Today's joints: the Acclaim skeleton's joint centres, kept for comparison. ---
ACCLAIM17 = KeypointConvention(
    "acclaim17", ACCLAIM_17, tuple(Joint(n) for n in ACCLAIM_17.names),
    "the generator's canonical joint centres (Acclaim/CMU bone starts) in Human3.6M order",
    "synth.joint_maps: the start of each named ASF/BVH bone; head = the head bone's end")


def _h36m_definitions() -> Dict[str, Definition]:
    # Human3.6M (issue 9, mean positions in its pelvis frame over S1-S11 ground truth): pelvis
    # at the mid-hip point, hips (+-133, 0, 0) mm: 266 mm apart, level with the pelvis, wider
    # than the femoral heads; thorax (29, 0, 478), neck/nose (38, 82, 549), head (52, 38, 640);
    # shoulders, elbows, wrists, knees and ankles agree with joint centres within 12-37 mm.
    # Each point is defined relative to the anatomy next to it, so that it sits right on any
    # body whatever its trunk length (body proportions are the bodies' business):
    # - pelvis at the midpoint of the hip joint centres, hips 133 mm to each side, level;
    # - thorax 15 mm below the shoulders' level (478 vs about 493 mm for the shoulders, which
    #   agree with ours) and 10 mm in front of them: from the midpoint of the glenohumeral
    #   centres (0, 10, -15) mm. (It hung from the neck base before, which sits 25 mm below
    #   the shoulders on capsule bodies but about 90 mm above them on Anny bodies: Anny's
    #   thorax came out 70 mm high and its thorax-shoulder bones 199 mm instead of 151.)
    # - neck/nose and head keep their measured offsets from the thorax, (0, 82, 71) and
    #   (0, 38, 162) mm, and turn with the head; the rest-pose offsets, (0, 129, 77) and
    #   (0, 65, 166) mm from the thorax, put the means there on real CMU walks retargeted
    #   onto the built-in avatars (`experiments/convention_geometry.py`): the head pitches
    #   forward of our rest pose while walking. Human3.6M's means include sitting and bending
    #   actions, so upright, these points may sit a little forward.
    # - spine: Human3.6M's pelvis->spine and spine->thorax bones are 233 and 257 mm (mean bone
    #   lengths, as in VideoPose3D's Human3.6M skeleton): 0.475 of the way up, 212 mm above
    #   the pelvis at our mean pelvis-to-thorax distance (446 mm at 1.75 m since the thorax
    #   hangs from the shoulder joints; 549 mm and 261 mm before,
    #   experiments/convention_geometry.py).
    # The x of the mid-line joints (29-52 mm) is a mean asymmetry of the recordings and is
    # not reproduced.
    pelvis = "pelvis_centre"
    return {
        "hip": Landmark("pelvis_centre"),
        "r_hip": BonePoint("pelvis", _mm(133, 0, 0), pelvis),
        "l_hip": BonePoint("pelvis", _mm(-133, 0, 0), pelvis),
        "r_knee": Joint("r_knee"), "l_knee": Joint("l_knee"),
        "r_ankle": Joint("r_ankle"), "l_ankle": Joint("l_ankle"),
        "spine": BonePoint("abdomen", _mm(0, 0, 212), pelvis),
        "thorax": BonePoint("chest", _mm(0, 10, -15), "mid_shoulder"),
        "neck_nose": BonePoint("head", _mm(0, 139, 62), "mid_shoulder"),
        "head": BonePoint("head", _mm(0, 75, 151), "mid_shoulder"),
        "l_shoulder": Joint("l_shoulder"), "r_shoulder": Joint("r_shoulder"),
        "l_elbow": Joint("l_elbow"), "r_elbow": Joint("r_elbow"),
        "l_wrist": Joint("l_wrist"), "r_wrist": Joint("r_wrist"),
    }


#: How far in front of the femoral heads (mm at 1.75 m) HumanEva-I's hip points lie: the
#: thighs' angle to its trunk axis (`_humaneva_definitions`).
HUMANEVA_HIPS_FORWARD_MM = 70.0

#: How far in front of the ankle joint centre (mm at 1.75 m, fixed in the shank) HumanEva-I's
#: ankle points lie: the shanks' angle to its trunk axis (`_humaneva_definitions`).
HUMANEVA_ANKLES_FORWARD_MM = 80.0

#: How far lateral of the knee and ankle joint centres (mm at 1.75 m, fixed in the thigh and
#: the shank) HumanEva-I's knee and ankle points lie (`_humaneva_definitions`).
HUMANEVA_KNEES_LATERAL_MM = 25.0
HUMANEVA_ANKLES_LATERAL_MM = 30.0

#: How far below the knee joint centre HumanEva-I's knee points lie, as a fraction of the
#: shank (fixed in it), and how far past the wrist joint its wrist points lie, as a fraction
#: of the forearm (fixed in it): its shank/thigh and forearm/upper-arm length ratios
#: (`_humaneva_definitions`).
HUMANEVA_KNEES_DOWN_SHANK = 0.04
HUMANEVA_WRISTS_PAST_FOREARM = 0.09


def _humaneva_definitions() -> Dict[str, Definition]:
    # HumanEva-I: mean positions of its 15 joints in its pelvis frame (x towards the right
    # hip, z up towards the thorax), measured on the Train/ chunks of
    # ../shared/real/humaneva/data_3d_humaneva15.npz (4,729 frames; Validate/ is kept for
    # checking, experiments/convention_geometry.py): hips (+-47, 50, -4) mm, thorax
    # (6, 0, 480), head (28, 20, 721), shoulders (-155, -41, 474) and (190, -28, 448).
    # Relative to the anatomy next to each point:
    # - hips 94 mm apart (narrower than the femoral heads), level with the hip joint centres
    #   and `HUMANEVA_HIPS_FORWARD_MM` in front of them; the pelvis 50 mm behind the hips'
    #   midpoint and 4 mm above. Where the hips sit front to back is set by the thighs, which
    #   the pelvis-frame means above cannot see: with HumanEva-I's hips at the femoral heads,
    #   real CMU walks retargeted onto our bodies hold their thighs 20 degrees forward of the
    #   trunk axis (pelvis -> thorax) on average, HumanEva-I's Train/ walks 4 (S1 9, S2 1,
    #   S3 1); and HumanEva-I's actors standing still with straight knees (< 12 degrees) hold
    #   their thighs 4-11 degrees *behind* the vertical, where anatomical thighs stand within
    #   a few degrees of it. Both say its hip points lie in front of the femoral heads; 70 mm
    #   brings the walks' mean thigh angle to HumanEva-I's (experiments/sim_to_real_errors.py
    #   --coverage, `thigh flexion`; tests/test_keypoint_conventions.py: 3 degrees against 4).
    #   A synthetic-trained lifter's P1 on Validate/ went from 74.3 to 65.3 mm
    #   (experiments/results/sim_to_real/results.md, hips_at_femoral_heads/). HumanEva-I's
    #   own thighs agree on the direction, less on the amount: its hip-knee distance is
    #   15 mm shorter with the thigh 25 degrees in front of the trunk axis than 12 behind,
    #   as a point about 25 mm in front of the thigh's centre of rotation makes it; the
    #   rest of the thighs' lean may be how its actors hold their pelvis (tests/
    #   test_keypoint_conventions.py, `..._in_front_of_the_thighs_centre_of_rotation`);
    # - knees `HUMANEVA_KNEES_LATERAL_MM` lateral of the knee joint centres and
    #   `HUMANEVA_KNEES_DOWN_SHANK` of the shank below them, fixed in the shank: the
    #   knee-ankle distance changes by 2 mm from a straight to a 40-degree knee (a point
    #   fixed in the thigh off the knee's axis would move with the flexion) while the
    #   hip-knee distance shrinks by 13 mm from a straight to a 70-90 degree knee (partly
    #   the hip points' doing, above). Lower by 4 % of the shank (16 mm on a 1.75 m body)
    #   gives our bodies HumanEva-I's shank/thigh ratio: 0.95 (Train/ S1 0.93, S2 1.00,
    #   S3 0.92), where joint centres give 1.02;
    # - wrists `HUMANEVA_WRISTS_PAST_FOREARM` of the forearm past the wrist joint centres,
    #   fixed in the forearm: HumanEva-I's forearms are 0.95 of its upper arms (S1 0.95,
    #   S2 0.98, S3 0.93), joint centres give 0.87 on our bodies (anthropometric tables
    #   0.79, Drillis & Contini 1966). Both ratios: tests/test_keypoint_conventions.py.
    #   Body proportions are the largest part of the sim-to-real gap that is left:
    #   HumanEva-I's own Train/ motion, filmed by our camera sampler, scores P1 35 mm on
    #   Validate/ with its subjects' bone lengths, 39 with those lengths jittered (stature
    #   +-10 %, each bone +-4 %), 53 with our capsule bodies' lengths and 66 with Anny's
    #   (experiments/results/sim_to_real/bodies.md);
    # - ankles `HUMANEVA_ANKLES_LATERAL_MM` lateral of and `HUMANEVA_ANKLES_FORWARD_MM` in
    #   front of the ankle joint centres, fixed in the shank. Walking, HumanEva-I's shanks
    #   lean 10 degrees back from its trunk axis on average (Train/: S1 10, S2 12, S3 9) and
    #   its knees reach 11 degrees of apparent hyperextension (5th percentile); real CMU walks
    #   on our bodies with the ankles at the joint centres lean 20 back and reach 1 degree of
    #   flexion, and standing still with straight knees their shanks lean 15-18 degrees back
    #   from the vertical against HumanEva-I's 5-10. 80 mm forward brings both to HumanEva-I's
    #   (walking -10 against -10, standing -5 to -11). Side to side, HumanEva-I walks with
    #   its knees 195 mm and ankles 170 mm apart (Train/, pelvis frame; chunks 182-216 and
    #   118-216 mm); the 37 CMU walks of ../shared/mocap on our bodies, with joint centres,
    #   147 and 113. 25 and 30 mm to each side bring them to 195 and 171, the lateral
    #   epicondyle and malleolus side of the joints where markers sit. A synthetic-trained
    #   lifter's bias on Validate/ said the same before: knees 23 mm and ankles 27 mm too
    #   close to the midline, ankles 42-54 mm too far back (experiments/sim_to_real_errors.py);
    #   P1 65.3 -> 63.0 mm with both, 60.9 with the knees and wrists above
    #   (experiments/results/sim_to_real/results.md);
    # - shoulders at the glenohumeral centres (their height above the hips, 461 mm, is the
    #   anthropometric one: Drillis & Contini acromion 0.818 H minus trochanter 0.530 H, less
    #   about 40 mm from acromion to joint centre, is 464 mm at 1.75 m);
    # - thorax 19 mm above the shoulders' mean height and 35 mm in front of them: from the
    #   midpoint of the glenohumeral centres (landmark mid_shoulder) (0, 35, 19) mm. It hung
    #   from the neck base before, which is 25 mm below the shoulders on capsule bodies but
    #   about 90 mm above them on Anny bodies (Anny's neck01 joint): Anny's trunk (pelvis to
    #   thorax) came out 596 mm against 480 real (experiments/convention_bone_lengths.py);
    # - head 317 mm from the thorax: HumanEva-I's thorax-head bone is rigid (mean 317 mm,
    #   within-chunk std 2 mm, Train/; experiments/convention_bone_lengths.py), about
    #   310 mm straight up in an upper-trunk frame (x between the shoulders); the mean
    #   pelvis-frame position (0, 20, 241) averages differently leaning trunks and is
    #   shorter, and fitting it gave a 219-260 mm head bone. Rest-pose offset from the
    #   thorax (0, 57, 312) mm, turning with the head, so (0, 92, 331) from mid_shoulder.
    pelvis, forward = "pelvis_centre", HUMANEVA_HIPS_FORWARD_MM
    knee_out, ankle_out = HUMANEVA_KNEES_LATERAL_MM, HUMANEVA_ANKLES_LATERAL_MM
    ankle_forward = HUMANEVA_ANKLES_FORWARD_MM
    knee_down, wrist_past = HUMANEVA_KNEES_DOWN_SHANK, HUMANEVA_WRISTS_PAST_FOREARM
    return {
        "hip": BonePoint("pelvis", _mm(0, forward - 50, 4), pelvis),
        "thorax": BonePoint("chest", _mm(0, 35, 19), "mid_shoulder"),
        "l_shoulder": Joint("l_shoulder"), "r_shoulder": Joint("r_shoulder"),
        "l_elbow": Joint("l_elbow"), "r_elbow": Joint("r_elbow"),
        "l_wrist": BonePoint("l_forearm", origin="l_wrist", along=wrist_past),
        "r_wrist": BonePoint("r_forearm", origin="r_wrist", along=wrist_past),
        "l_hip": BonePoint("pelvis", _mm(-47, forward, 0), pelvis),
        "r_hip": BonePoint("pelvis", _mm(47, forward, 0), pelvis),
        "l_knee": BonePoint("l_shank", _mm(-knee_out, 0, 0), "l_knee", along=knee_down),
        "r_knee": BonePoint("r_shank", _mm(knee_out, 0, 0), "r_knee", along=knee_down),
        "l_ankle": BonePoint("l_shank", _mm(-ankle_out, ankle_forward, 0), "l_ankle"),
        "r_ankle": BonePoint("r_shank", _mm(ankle_out, ankle_forward, 0), "r_ankle"),
        "head": BonePoint("head", _mm(0, 92, 331), "mid_shoulder"),
    }


def _coco_definitions() -> Dict[str, Definition]:
    # COCO keypoints (Lin et al. 2014, keypoint annotation guidelines): the face points are
    # the visible nose tip, eye centres and ear (tragus) on the head's surface; shoulders,
    # elbows, wrists, knees and ankles are marked at the visible joint centres. Hips are
    # marked at the hip as seen from outside, lateral of the femoral head: we place them
    # 28 mm (at 1.75 m) lateral of and 8 mm below the hip joint centre, about half-way to the
    # greater trochanter, fixed to the pelvis (the femoral head barely moves with the thigh).
    return {
        "nose": Landmark("nose"), "l_eye": Landmark("l_eye"), "r_eye": Landmark("r_eye"),
        "l_ear": Landmark("l_ear"), "r_ear": Landmark("r_ear"),
        "l_shoulder": Landmark("l_shoulder_centre"), "r_shoulder": Landmark("r_shoulder_centre"),
        "l_elbow": Joint("l_elbow"), "r_elbow": Joint("r_elbow"),
        "l_wrist": Joint("l_wrist"), "r_wrist": Joint("r_wrist"),
        "l_hip": BonePoint("pelvis", _mm(-28, 0, -8), "l_hip_centre"),
        "r_hip": BonePoint("pelvis", _mm(28, 0, -8), "r_hip_centre"),
        "l_knee": Joint("l_knee"), "r_knee": Joint("r_knee"),
        "l_ankle": Joint("l_ankle"), "r_ankle": Joint("r_ankle"),
    }


def _ordered(layout: JointLayout, defs: Mapping[str, Definition]) -> Tuple[Definition, ...]:
    return tuple(defs[n] for n in layout.names)


H36M17 = KeypointConvention(
    "h36m17", H36M_17, _ordered(H36M_17, _h36m_definitions()),
    "Human3.6M's 17 joints as its ground truth places them (Ionescu et al. 2014)",
    "mean Human3.6M joint positions in its pelvis frame (issue 9); bone lengths as in "
    "VideoPose3D's Human3.6M skeleton")
HUMANEVA15 = KeypointConvention(
    "humaneva15", HUMANEVA_15, _ordered(HUMANEVA_15, _humaneva_definitions()),
    "HumanEva-I's 15 joints (Sigal, Balan & Black 2010)",
    "mean joint positions in the pelvis frame of ../shared/real/humaneva (VideoPose3D layout)")
COCO17 = KeypointConvention(
    "coco17", COCO_17, _ordered(COCO_17, _coco_definitions()),
    "COCO's 17 keypoints, where annotators and 2D detectors put them",
    "COCO keypoint annotation guidelines (Lin et al. 2014); hip placement: see _coco_definitions")

CONVENTIONS: Dict[str, KeypointConvention] = {
    c.name: c for c in (H36M17, COCO17, HUMANEVA15, ACCLAIM17)}

#: What `python -m synth.render` writes when `--keypoints` is not given.
DEFAULT_CONVENTIONS: Tuple[str, ...] = ("h36m17", "coco17")

#: Targets of the conventions' geometry: convention -> keypoint -> mean position in the
#: convention's own pelvis frame (body frame axes, origin at its root keypoint, x towards
#: its right hip), metres, as measured on the real datasets (sources in the definition
#: functions above). Points of the upper body sit where our bodies' trunks put them; compare
#: them relative to the thorax (`tests/test_keypoint_conventions.py`).
BODY_FRAME_TARGETS: Dict[str, Dict[str, Tuple[float, float, float]]] = {
    "h36m17": {"r_hip": (0.133, 0.0, 0.0), "l_hip": (-0.133, 0.0, 0.0),
               "thorax": (0.0, 0.0, 0.478), "neck_nose": (0.0, 0.082, 0.549),
               "head": (0.0, 0.038, 0.640)},
    # humaneva15's head has no position target: its mean position (0.028, 0.020, 0.721)
    # averages differently leaning trunks; its thorax-head bone (317 mm, rigid) is the target.
    "humaneva15": {"r_hip": (0.047, 0.050, -0.004), "l_hip": (-0.047, 0.050, -0.004),
                   "thorax": (0.006, 0.0, 0.480),
                   "r_shoulder": (0.190, -0.028, 0.448), "l_shoulder": (-0.155, -0.041, 0.474)},
}


def get_convention(name: Union[str, KeypointConvention]) -> KeypointConvention:
    """A built-in convention by name; ValueError listing the known ones."""
    if isinstance(name, KeypointConvention):
        return name
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown keypoint convention {name!r}; known: "
                         f"{', '.join(CONVENTIONS)}") from None


def parse_conventions(text: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """'h36m17,coco17' (or a list) -> validated, de-duplicated names in the given order."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    if not names:
        raise ValueError("no keypoint convention given; known: " + ", ".join(CONVENTIONS))
    for n in names:
        get_convention(n)
    return tuple(dict.fromkeys(names))
