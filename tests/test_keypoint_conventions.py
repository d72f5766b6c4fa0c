"""Keypoint conventions on the built-in bodies: geometry against each convention's targets,
rigid attachment to bones, and clear errors for bad definitions and missing landmarks."""
import dataclasses

import numpy as np
import pytest

from posecontract.conventions import (BODY_FRAME_TARGETS, CONVENTIONS,
                                      HUMANEVA_HIPS_FORWARD_MM,
                                      LANDMARKS, REFERENCE_HEIGHT,
                                      BonePoint, Joint, KeypointConvention, Landmark,
                                      get_convention, parse_conventions)
from posecontract.layouts import COCO_17, H36M_17
from synth.avatars import CANONICAL_JOINTS, get_avatars
from synth.keypoints import ConventionEvaluator, pelvis_frame
from synth.mocap_io import load_motion
from synth.render import canonical_indices
from synth.resample import resample
from synth.retarget import Retargeter


@pytest.fixture(scope="module")
def walk_evaluators(cmu_dir):
    """Real CMU walks (subject 02 trial 01, subject 05 trial 01) on every built-in avatar."""
    out = []
    for subject, trial in (("02", "01"), ("05", "01")):
        motion = resample(load_motion(cmu_dir / subject / f"{subject}_{trial}.amc"), 25.0)
        retargeter = Retargeter(motion, canonical_indices(motion, None))
        out += [ConventionEvaluator(retargeter(avatar)) for avatar in get_avatars()]
    return out


def _frame(name, positions):
    layout = get_convention(name).layout
    return pelvis_frame(positions, 0, layout.index("r_hip"), layout.index("l_hip"),
                        layout.index("thorax"))


def _mean_at_reference(evaluators, name):
    """(K, 3) mean pelvis-frame positions over clips and bodies, scaled to 1.75 m."""
    return np.mean([_frame(name, e.positions(name)).mean(0) * REFERENCE_HEIGHT / e.body.height
                    for e in evaluators], axis=0)


def test_every_avatar_provides_every_landmark():
    from posecontract.conventions import CANONICAL_JOINTS as CONVENTION_JOINTS
    assert CONVENTION_JOINTS == CANONICAL_JOINTS
    for avatar in get_avatars():
        landmarks = avatar.landmarks()
        assert set(landmarks) == set(LANDMARKS)
        assert all(np.shape(p) == (3,) and np.all(np.isfinite(p)) for p in landmarks.values())


def test_h36m_hips_are_wide_level_and_centred_on_the_pelvis(walk_evaluators):
    layout = get_convention("h36m17").layout
    widths = []
    for evaluator in walk_evaluators:
        p = evaluator.positions("h36m17")
        right, left = p[:, layout.index("r_hip")], p[:, layout.index("l_hip")]
        widths.append(np.linalg.norm(right - left, axis=-1).mean())
        # The pelvis is the mid-hip point, in every frame.
        np.testing.assert_allclose(p[:, 0], 0.5 * (right + left), atol=1e-9)
        f = _frame("h36m17", p)
        # Hips level with the pelvis: no height or depth offset, in every frame.
        assert np.abs(f[:, layout.index("r_hip"), 1:]).max() < 1e-6
    assert abs(np.mean(widths) - 0.26) < 0.03, widths
    # Wider than the femoral heads (the hip joint centres: about 0.17 m).
    hip_centres = [np.linalg.norm(e.body_landmarks["l_hip_centre"]
                                  - e.body_landmarks["r_hip_centre"]) for e in walk_evaluators]
    assert np.mean(widths) > np.mean(hip_centres) + 0.05


@pytest.mark.parametrize("name", sorted(BODY_FRAME_TARGETS))
def test_convention_geometry_matches_its_targets(walk_evaluators, name):
    """Hips in the pelvis frame, upper-body points relative to the thorax (where the trunk
    ends is the body's proportion, not the convention's definition)."""
    layout = get_convention(name).layout
    means = _mean_at_reference(walk_evaluators, name)
    targets = {k: np.array(v) for k, v in BODY_FRAME_TARGETS[name].items()}
    thorax = means[layout.index("thorax")]
    for keypoint, target in targets.items():
        ours = means[layout.index(keypoint)]
        if keypoint.endswith("hip"):
            error = np.linalg.norm(ours - target)
            tolerance = 0.012
        elif keypoint != "thorax":
            ours, target = ours - thorax, target - targets["thorax"]
            # The mid-line targets' x is a recording asymmetry we do not reproduce; real
            # HumanEva-I's shoulders are themselves 35 mm asymmetric, its head 37 mm higher
            # on Validate/ than on Train/.
            error = np.linalg.norm(ours[1:] - target[1:])
            tolerance = 0.045 if "shoulder" in keypoint or name == "humaneva15" else 0.03
        else:
            continue
        assert error < tolerance, (keypoint, ours, target)


def test_thorax_sits_by_the_shoulders_as_in_the_real_data(walk_evaluators):
    # Human3.6M: thorax about 15 mm below the shoulders (issue 9); HumanEva-I Train/: 19 mm
    # above them and 35 mm in front.
    for name, (dz, dy) in (("h36m17", (-0.015, 0.010)), ("humaneva15", (0.019, 0.035))):
        layout = get_convention(name).layout
        means = _mean_at_reference(walk_evaluators, name)
        shoulders = 0.5 * (means[layout.index("l_shoulder")] + means[layout.index("r_shoulder")])
        thorax = means[layout.index("thorax")]
        assert abs((thorax - shoulders)[2] - dz) < 0.02, name
        assert abs((thorax - shoulders)[1] - dy) < 0.03, name


def test_humaneva_hips_are_narrow_and_its_head_high(walk_evaluators):
    layout = get_convention("humaneva15").layout
    means = _mean_at_reference(walk_evaluators, "humaneva15")
    width = np.linalg.norm(means[layout.index("r_hip")] - means[layout.index("l_hip")])
    assert abs(width - 0.094) < 0.010
    # Real HumanEva-I's thorax-head bone is rigid and 317 mm long (Train/, mean over
    # chunks; within-chunk std 2 mm); fitted to mean positions it came out 250-260 mm.
    heads = [np.linalg.norm(p[:, layout.index("head")] - p[:, layout.index("thorax")],
                            axis=-1) * REFERENCE_HEIGHT / e.body.height
             for e in walk_evaluators for p in [e.positions("humaneva15")]]
    # (the head turns with the source rig's head: 322 mm on CMU subject 02, 282 on 05)
    assert abs(np.mean([h.mean() for h in heads]) - 0.317) < 0.02, [h.mean() for h in heads]
    assert max(h.std() for h in heads) < 0.010  # nearly rigid (HumanEva-I: 2 mm)
    # Its pelvis lies behind the hips: 50 mm.
    assert abs(means[layout.index("l_hip"), 1] - 0.050) < 0.01


def test_coco_face_points_sit_on_the_head_where_annotators_put_them(walk_evaluators):
    for evaluator in walk_evaluators:
        p = evaluator.positions("coco17")
        h36m = evaluator.positions("h36m17")
        # Body frame from the Human3.6M hips and thorax of the same frames.
        both = np.concatenate([h36m, p], axis=1)
        f = pelvis_frame(both, 0, H36M_17.index("r_hip"), H36M_17.index("l_hip"),
                         H36M_17.index("thorax"))[:, 17:].mean(0)
        at = {n: f[i] for i, n in enumerate(COCO_17.names)}
        assert at["nose"][1] > at["l_eye"][1] > at["l_ear"][1]  # nose ahead, ears behind
        assert at["nose"][1] > at["r_eye"][1] > at["r_ear"][1]
        assert at["l_eye"][2] > at["nose"][2] and at["r_eye"][2] > at["nose"][2]
        assert at["l_eye"][0] < at["nose"][0] < at["r_eye"][0]  # x points to the right
        assert at["l_ear"][0] < at["l_eye"][0] and at["r_ear"][0] > at["r_eye"][0]
        eye_gap = np.linalg.norm(at["l_eye"] - at["r_eye"]) / evaluator.body.height
        assert 0.03 < eye_gap < 0.045  # interpupillary 63 mm at 1.75 m
        # Hips between the femoral heads and the greater trochanters.
        hip_width = np.linalg.norm(at["l_hip"] - at["r_hip"])
        lm = evaluator.body_landmarks
        assert (np.linalg.norm(lm["l_hip_centre"] - lm["r_hip_centre"]) < hip_width
                < np.linalg.norm(lm["l_greater_trochanter"] - lm["r_greater_trochanter"]))


def test_points_move_rigidly_with_their_bones(walk_evaluators):
    evaluator = walk_evaluators[0]
    canonical = evaluator.clip.canonical_positions
    # A point placed on a bone's end joint follows that joint in every frame: the bone's
    # rotation carrier and the rest-pose transfer are right.
    for bone, joint in (("l_shank", "l_ankle"), ("r_forearm", "r_wrist"),
                        ("l_thigh", "l_knee"), ("r_upper_arm", "r_elbow")):
        point = evaluator.attached(bone, evaluator.body_rest[CANONICAL_JOINTS.index(joint)])
        np.testing.assert_allclose(point, canonical[:, CANONICAL_JOINTS.index(joint)],
                                   atol=1e-6, err_msg=bone)
    # Landmarks keep their distances to their bone's joints.
    nose = evaluator.attached("head", evaluator.body_landmarks["nose"])
    for joint in ("neck_nose", "head"):
        d = np.linalg.norm(nose - canonical[:, CANONICAL_JOINTS.index(joint)], axis=-1)
        assert np.ptp(d) < 1e-6
    heel = evaluator.attached("l_foot", evaluator.body_landmarks["l_heel"])
    d = np.linalg.norm(heel - canonical[:, CANONICAL_JOINTS.index("l_toe")], axis=-1)
    assert np.ptp(d) < 1e-6


def test_a_point_along_a_bone_stays_on_it_at_its_fraction(walk_evaluators):
    """`BonePoint.along` places a point at a fraction of its bone, beyond the end joint for
    along > 0 from it: on every body and in every frame it lies on the elbow -> wrist line,
    that fraction of the forearm past the wrist."""
    forearm = (CANONICAL_JOINTS.index("l_elbow"), CANONICAL_JOINTS.index("l_wrist"))
    names = H36M_17.names
    definitions = tuple(BonePoint("l_forearm", origin="l_wrist", along=0.25)
                        if n == "l_wrist" else Joint(n) for n in names)
    convention = KeypointConvention("wrist_beyond", H36M_17, definitions)
    for evaluator in walk_evaluators[::3]:
        elbow, wrist = (evaluator.clip.canonical_positions[:, j] for j in forearm)
        point = evaluator.positions(convention)[:, names.index("l_wrist")]
        np.testing.assert_allclose(point, wrist + 0.25 * (wrist - elbow), atol=1e-6)
    with pytest.raises(ValueError, match="along nan"):
        KeypointConvention("bad", H36M_17, (BonePoint("pelvis", along=float("nan")),)
                           + (Joint("hip"),) * 16)


def test_acclaim17_is_the_canonical_joint_centres(walk_evaluators):
    evaluator = walk_evaluators[0]
    np.testing.assert_array_equal(evaluator.positions("acclaim17"),
                                  evaluator.clip.canonical_positions[:, :17])


def test_a_body_without_a_needed_landmark_is_refused(walk_evaluators):
    evaluator = walk_evaluators[0]

    @dataclasses.dataclass(frozen=True)
    class Faceless:
        avatar: object
        name: str = "faceless"

        def __getattr__(self, item):
            return getattr(self.avatar, item)

        def landmarks(self):
            return {k: v for k, v in self.avatar.landmarks().items() if k != "nose"}

    body = Faceless(evaluator.body)
    faceless = ConventionEvaluator(evaluator.clip, body)
    with pytest.raises(ValueError) as error:
        faceless.positions("coco17")
    message = str(error.value)
    assert "\n" not in message
    for word in ("coco17", "'nose'", "faceless"):
        assert word in message
    faceless.positions("acclaim17")  # needs no landmark


def test_bad_definitions_and_names_get_one_line_errors():
    with pytest.raises(ValueError, match="landmark 'third_eye'"):
        KeypointConvention("bad", H36M_17, (Landmark("third_eye"),) + (Joint("hip"),) * 16)
    with pytest.raises(ValueError, match="bone 'tail'"):
        KeypointConvention("bad", H36M_17, (BonePoint("tail"),) + (Joint("hip"),) * 16)
    with pytest.raises(ValueError, match="17 keypoints but 1 definitions"):
        KeypointConvention("bad", H36M_17, (Joint("hip"),))
    with pytest.raises(ValueError, match="unknown keypoint convention 'mpii16'"):
        parse_conventions("h36m17,mpii16")
    assert parse_conventions(" h36m17, coco17,h36m17") == ("h36m17", "coco17")
    assert {"h36m17", "coco17", "humaneva15", "acclaim17"} <= set(CONVENTIONS)


def _humaneva_train_means():
    """(15, 3) mean pelvis-frame positions of real HumanEva-I, Train/ chunks only (Validate/
    is the sim-to-real test set), read with the project's restricted reader."""
    from conftest import shared_dir
    from vp3dkeras.data.vp3d_format import restricted_load_npz
    path = shared_dir() / "real" / "humaneva" / "data_3d_humaneva15.npz"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    data = restricted_load_npz(path)["positions_3d"]
    return np.concatenate([_frame("humaneva15", np.asarray(a, dtype=np.float64))
                           for name, subject in data.items() if name.startswith("Train/")
                           for a in subject.values()]).mean(0)


def test_humaneva_trunk_and_shoulders_match_real_humaneva(walk_evaluators):
    """Pelvis -> thorax and hip keypoints -> shoulders as on real HumanEva-I (Train/): 480
    and 465 mm. Before the thorax hung from the shoulder joint centres and the capsule trunks
    took the avatars' own layout these were 562 and 547 mm on capsule bodies (shoulder joints
    at acromion height, the Acclaim root 8 cm above the hip joints)."""
    layout = get_convention("humaneva15").layout
    real = _humaneva_train_means()
    ours = _mean_at_reference(walk_evaluators, "humaneva15")

    def measures(p):
        hips = 0.5 * (p[layout.index("l_hip")] + p[layout.index("r_hip")])
        shoulders = 0.5 * (p[layout.index("l_shoulder")] + p[layout.index("r_shoulder")])
        return np.linalg.norm(p[layout.index("thorax")]), (shoulders - hips)[2]

    (trunk, rise), (real_trunk, real_rise) = measures(ours), measures(real)
    assert abs(trunk - real_trunk) < 0.015, (trunk, real_trunk)
    assert abs(rise - real_rise) < 0.030, (rise, real_rise)


def test_capsule_shoulder_joints_sit_below_the_acromion_and_trunk_follows_the_avatar(
        walk_evaluators):
    """Glenohumeral centres 0.793 H above the floor, 0.263 H above the hip joints (acromion
    0.818 H, Drillis & Contini 1966, less about 45 mm); the retargeted trunk keeps the
    avatar's layout whatever the mocap rig's clavicles do."""
    for avatar in get_avatars():
        rest = avatar.rest_positions()
        shoulder = rest[CANONICAL_JOINTS.index("l_shoulder")]
        hip = rest[CANONICAL_JOINTS.index("l_hip")]
        # (per-avatar torso and leg factors move it by up to 0.03 H)
        assert abs(shoulder[2] / avatar.height - 0.793) < 0.035, avatar.name
        assert shoulder[2] < avatar.landmarks()["l_acromion"][2]
        np.testing.assert_allclose(avatar.landmarks()["l_hip_centre"], hip)
    for e in walk_evaluators:
        p = e.clip.canonical_positions
        shoulders = 0.5 * (p[:, CANONICAL_JOINTS.index("l_shoulder")]
                           + p[:, CANONICAL_JOINTS.index("r_shoulder")])
        hips = 0.5 * (p[:, CANONICAL_JOINTS.index("l_hip")] + p[:, CANONICAL_JOINTS.index("r_hip")])
        distance = np.linalg.norm(shoulders - hips, axis=-1).mean() / e.body.height
        assert 0.24 < distance < 0.29, (e.body.name, distance)


def test_h36m_spine_splits_the_trunk_as_in_human36m(walk_evaluators):
    """Human3.6M's pelvis->spine and spine->thorax bones are 233 and 257 mm: the spine point
    0.475 of the way from the pelvis to the thorax, whatever the trunk's length."""
    layout = get_convention("h36m17").layout
    means = _mean_at_reference(walk_evaluators, "h36m17")
    spine, thorax = means[layout.index("spine")], means[layout.index("thorax")]
    assert abs(np.linalg.norm(spine) / (np.linalg.norm(spine) + np.linalg.norm(thorax - spine))
               - 233 / (233 + 257)) < 0.02


def _segment_angle_deg(body_frame_poses, layout, start, end):
    """Mean over frames and sides of the `start` -> `end` direction's forward angle from the
    trunk axis (pointing down), degrees, of (T, K, 3) poses in their own pelvis frame."""
    angles = []
    for s in "lr":
        segment = (body_frame_poses[:, layout.index(f"{s}_{end}")]
                   - body_frame_poses[:, layout.index(f"{s}_{start}")])
        angles.append(np.degrees(np.arctan2(segment[:, 1], -segment[:, 2])))
    return float(np.mean(angles))


def _humaneva_train(action_prefix="", subject=""):
    """(T, 15, 3) float64 world poses, metres, of HumanEva-I's Train/ chunks whose action
    starts with `action_prefix` (of subject Train/`subject` when given), one array per
    chunk."""
    from conftest import shared_dir
    from vp3dkeras.data.vp3d_format import restricted_load_npz
    data = restricted_load_npz(shared_dir() / "real" / "humaneva" / "data_3d_humaneva15.npz")
    return [np.asarray(poses, np.float64) for name, actions in data["positions_3d"].items()
            if name.startswith("Train/" + subject)
            for action, poses in actions.items() if action.startswith(action_prefix)]


def _distance_by_angle(chunks, layout, start, end, angle_of, edges):
    """Mean `start`-`end` distance (mm) per bin of `angle_of(pelvis-frame poses, side)`
    (degrees), both sides and all chunks pooled per chunk-and-side, then averaged."""
    per_bin = [[] for _ in edges[:-1]]
    for poses in chunks:
        body = _frame("humaneva15", poses)
        for s in "lr":
            length = np.linalg.norm(body[:, layout.index(f"{s}_{end}")]
                                    - body[:, layout.index(f"{s}_{start}")], axis=-1) * 1000
            angle = angle_of(body, s)
            for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
                inside = (angle >= lo) & (angle < hi)
                if inside.sum() >= 10:
                    per_bin[k].append(length[inside].mean() - length.mean())
    return [float(np.mean(b)) for b in per_bin]


def test_humaneva_hip_points_lie_in_front_of_the_thighs_centre_of_rotation():
    """A point in front of the femoral head comes closer to the knee as the thigh swings
    forward: HumanEva-I's hip-knee distance shrinks by 10+ mm from a thigh 10 degrees behind
    the trunk axis to one 20 degrees in front of it, while its knee-ankle distance, a knee
    point on the knee's axis, changes by under 10 mm from a straight knee to a 40-degree one."""
    layout = get_convention("humaneva15").layout
    chunks = _humaneva_train()

    def thigh_angle(body, s):
        thigh = body[:, layout.index(f"{s}_knee")] - body[:, layout.index(f"{s}_hip")]
        return np.degrees(np.arctan2(thigh[:, 1], -thigh[:, 2]))

    def knee_flexion(body, s):
        hip, knee, ankle = (body[:, layout.index(f"{s}_{n}")] for n in ("hip", "knee", "ankle"))
        a, b = knee - hip, ankle - knee
        cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    behind, _, ahead = _distance_by_angle(chunks, layout, "hip", "knee", thigh_angle,
                                          [-20, -5, 15, 35])
    assert behind - ahead > 10.0, (behind, ahead)
    straight, _, bent = _distance_by_angle(chunks, layout, "knee", "ankle", knee_flexion,
                                           [0, 10, 30, 50])
    assert abs(straight - bent) < 10.0, (straight, bent)


def test_humaneva_ankles_sit_in_front_of_the_ankle_joints_as_its_shanks_say(walk_evaluators):
    """Walking, HumanEva-I's shanks lean about 10 degrees back from the trunk axis (Train/).
    Real CMU walks on our bodies with the ankles at the joint centres leaned about 20 back;
    ankle points 80 mm in front of them in the shank (HUMANEVA_ANKLES_FORWARD_MM) bring ours
    within a few degrees of it."""
    layout = get_convention("humaneva15").layout
    walks = np.concatenate(_humaneva_train("Walking"))
    real = _segment_angle_deg(_frame("humaneva15", walks), layout, "knee", "ankle")
    assert -14.0 < real < -6.0, real
    ours = np.mean([_segment_angle_deg(_frame("humaneva15", e.positions("humaneva15")), layout,
                                       "knee", "ankle") for e in walk_evaluators])
    assert abs(ours - real) < 3.0, (ours, real)
    at_joints = dataclasses.replace(
        get_convention("humaneva15"), name="humaneva15_ankles_at_joints",
        definitions=tuple(Joint(n) if n in ("l_ankle", "r_ankle") else d
                          for n, d in zip(layout.names,
                                          get_convention("humaneva15").definitions)))
    before = np.mean([_segment_angle_deg(_frame("humaneva15", e.positions(at_joints)), layout,
                                         "knee", "ankle") for e in walk_evaluators])
    assert before < real - 7.0, (before, real)


def test_humaneva_knees_and_ankles_sit_lateral_of_the_joints_as_its_stance_says(
        walk_evaluators):
    """Walking, HumanEva-I's knees are about 195 mm and its ankles 170 mm apart side to side
    (Train/, pelvis frame). CMU walkers differ among themselves by tens of millimetres
    (subjects 02 and 05 here walk narrower than the 37 walks of ../shared/mocap), so the
    tolerance is wide; with the knees and ankles at the joint centres the same walks are
    narrower than HumanEva-I's by far more than that."""
    layout = get_convention("humaneva15").layout

    def separations(positions, convention):
        body = _frame(convention, positions)
        return np.array([(body[:, layout.index(f"r_{j}"), 0]
                          - body[:, layout.index(f"l_{j}"), 0]).mean() * 1000
                         for j in ("knee", "ankle")])

    real = separations(np.concatenate(_humaneva_train("Walking")), "humaneva15")
    assert 170.0 < real[0] < 220.0 and 140.0 < real[1] < 200.0, real
    ours = np.mean([separations(e.positions("humaneva15"), "humaneva15")
                    for e in walk_evaluators], axis=0)
    assert np.all(np.abs(ours - real) < 40.0), (ours, real)
    base = get_convention("humaneva15")
    at_joints = dataclasses.replace(
        base, name="humaneva15_legs_at_joints",
        definitions=tuple(Joint(n) if n.endswith(("_knee", "_ankle")) else d
                          for n, d in zip(layout.names, base.definitions)))
    before = np.mean([separations(e.positions(at_joints), at_joints)
                      for e in walk_evaluators], axis=0)
    assert np.all(real - before > 60.0), (before, real)


def test_humaneva_limb_proportions_match_its_subjects(walk_evaluators):
    """HumanEva-I's shanks are 0.95 of its thighs and its forearms 0.95 of its upper arms
    (Train/ S1-S3: 0.93-1.00 and 0.93-0.98), where joint centres give about 1.0 and 0.85
    (anthropometric tables: shank/thigh 1.0, forearm/upper arm 0.79, Drillis & Contini 1966).
    Its knee points lie below the knee joint, in the shank (HUMANEVA_KNEES_DOWN_SHANK), and
    its wrist points past the wrist joint (HUMANEVA_WRISTS_PAST_FOREARM); on our bodies the
    ratios then match its subjects', where joint centres miss them by 0.05 or more."""
    layout = get_convention("humaneva15").layout

    def ratios(poses):
        def length(a, b):
            return sum(np.linalg.norm(poses[:, layout.index(f"{s}_{b}")]
                                      - poses[:, layout.index(f"{s}_{a}")], axis=-1).mean()
                       for s in "lr")
        return np.array([length("knee", "ankle") / length("hip", "knee"),
                         length("elbow", "wrist") / length("shoulder", "elbow")])

    subjects = [ratios(np.concatenate(_humaneva_train(subject=s))) for s in ("S1", "S2", "S3")]
    assert all(0.90 < r[0] < 1.02 and 0.92 < r[1] < 0.99 for r in subjects), subjects
    real = np.mean(subjects, axis=0)
    ours = np.mean([ratios(e.positions("humaneva15")) for e in walk_evaluators], axis=0)
    assert np.all(np.abs(ours - real) < 0.03), (ours, real)
    base = get_convention("humaneva15")
    centres = dataclasses.replace(
        base, name="humaneva15_limbs_at_joints",
        definitions=tuple(Joint(n) if n.endswith(("_knee", "_ankle", "_wrist")) else d
                          for n, d in zip(layout.names, base.definitions)))
    before = np.mean([ratios(e.positions(centres)) for e in walk_evaluators], axis=0)
    assert np.all(np.abs(before - real) > 0.05), (before, real)


def test_humaneva_hips_sit_in_front_of_the_femoral_heads_as_its_thighs_say(walk_evaluators):
    """Walking, HumanEva-I's actors hold their thighs about 4 degrees forward of the trunk
    axis (Train/). Real CMU walks on our bodies, with HumanEva-I's hip points at the femoral
    heads, held them about 20 degrees forward; its hips 70 mm in front of the femoral heads
    (HUMANEVA_HIPS_FORWARD_MM) bring ours within a few degrees of it."""
    layout = get_convention("humaneva15").layout
    walks = np.concatenate(_humaneva_train("Walking"))
    real = _segment_angle_deg(_frame("humaneva15", walks), layout, "hip", "knee")
    assert 1.0 < real < 7.0, real
    ours = np.mean([_segment_angle_deg(_frame("humaneva15", e.positions("humaneva15")), layout,
                                       "hip", "knee")
                    for e in walk_evaluators])
    assert abs(ours - real) < 4.0, (ours, real)
    # Hips at the femoral heads (the definition before; the pelvis 50 mm behind them): the
    # same walks lean 12+ degrees further forward.
    back = HUMANEVA_HIPS_FORWARD_MM / 1000.0 / REFERENCE_HEIGHT
    at_heads = dataclasses.replace(
        get_convention("humaneva15"), name="humaneva15_at_heads",
        definitions=tuple(BonePoint("pelvis", (d.offset[0], d.offset[1] - back, d.offset[2]),
                                    d.origin)
                          if n in ("hip", "l_hip", "r_hip") else d
                          for n, d in zip(layout.names, get_convention("humaneva15").definitions)))
    before = np.mean([_segment_angle_deg(_frame("humaneva15", e.positions(at_heads)), layout,
                                         "hip", "knee")
                      for e in walk_evaluators])
    assert before > real + 12.0, (before, real)


def _shoulder_by_elevation(poses, layout, raised_deg=(60, 90), min_frames=20):
    """(thorax-shoulder, upper arm) changes of the mean distances, mm, from the upper arm
    hanging (< 15 degrees from the trunk axis) to raised (`raised_deg`), per side with
    `min_frames` frames in both, of (T, 15, 3) humaneva15 poses."""
    out = []
    for s in "lr":
        shoulder, elbow = poses[:, layout.index(f"{s}_shoulder")], poses[:, layout.index(f"{s}_elbow")]
        thorax = poses[:, layout.index("thorax")]
        down = poses[:, layout.index("hip")] - thorax
        arm = elbow - shoulder
        cosine = (arm * down).sum(-1) / np.linalg.norm(arm, axis=-1) / np.linalg.norm(down, axis=-1)
        angle = np.degrees(np.arccos(np.clip(cosine, -1, 1)))
        hanging, raised = angle < 15, (angle >= raised_deg[0]) & (angle < raised_deg[1])
        if hanging.sum() < min_frames or raised.sum() < min_frames:
            continue
        reach = np.linalg.norm(shoulder - thorax, axis=-1) * 1000
        length = np.linalg.norm(arm, axis=-1) * 1000
        out.append((reach[raised].mean() - reach[hanging].mean(),
                    length[raised].mean() - length[hanging].mean()))
    return np.array(out)


def test_humaneva_shoulder_points_swing_in_as_the_arm_rises_and_ours_do_not(hdm05_dir):
    """HumanEva-I's thorax-shoulder distance is 20-40 mm shorter with the upper arm raised
    60-90 degrees than hanging, while its upper arm keeps its length within 16 mm: its
    shoulder points behave like points up the humerus from the joint, which swing medially
    as the arm rises. Ours are the glenohumeral centres, whose distance to the thorax does
    not change (a real HDM05 reach overhead on a capsule avatar): a measured difference of
    definitions left open (README, "Sim-to-real study")."""
    layout = get_convention("humaneva15").layout
    real = np.concatenate([_shoulder_by_elevation(np.concatenate(_humaneva_train(subject=s)),
                                                  layout) for s in ("S1", "S2", "S3")])
    assert len(real) >= 4, real
    assert np.all(real[:, 0] < -15) and real[:, 0].mean() < -20, real
    assert np.all(np.abs(real[:, 1]) < 16), real
    motion = resample(load_motion(hdm05_dir / "HDM_bd_grabHighR_001_120.amc"), 60.0)
    evaluator = ConventionEvaluator(Retargeter(motion, canonical_indices(motion, None))(
        get_avatars()[1]))
    ours = _shoulder_by_elevation(evaluator.positions("humaneva15"), layout, (60, 180), 5)
    assert len(ours) >= 1, "the reach raises no arm 60 degrees"
    assert np.all(np.abs(ours[:, 0]) < 8), ours
