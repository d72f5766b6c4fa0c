"""Keypoint conventions on our bodies against their targets and against real HumanEva-I.

For each convention with targets (`posecontract.conventions.BODY_FRAME_TARGETS`) prints the
mean keypoint positions in the convention's own pelvis frame (x towards its right hip, y
forward, z up towards its thorax; millimetres, scaled to the 1.75 m reference stature),
averaged over real CMU walks retargeted onto the five built-in avatars, beside the target.
For `humaneva15` it also measures the same means on the real HumanEva-I subjects
(../shared/real/humaneva, the Validate/ chunks: the targets come from Train/) and reports
the per-keypoint distance and its mean.

    python experiments/convention_geometry.py [--shared ../shared] [--calibrate]

`--calibrate` prints, for every `BonePoint` keypoint with a target, the offset from its
origin that would put its mean on the target (how the offsets in `posecontract.conventions`
were set).
"""
from __future__ import annotations

import argparse
import os
import pathlib
from typing import Dict, List

import numpy as np

from posecontract.conventions import (BODY_FRAME_TARGETS, REFERENCE_HEIGHT, BonePoint, Joint,
                                      KeypointConvention, get_convention)
from posecontract.layouts import HUMANEVA_15
from synth.keypoints import ConventionEvaluator, pelvis_frame
from synth.render import ClipChain, RenderSettings, clip_key_for, load_clip
from synth.resample import resample

#: HumanEva-I's 15 names on the canonical joint centres: what datasets held before
#: conventions, for comparison.
JOINT_CENTRES_AS_HUMANEVA = KeypointConvention(
    "joint_centres_as_humaneva15", HUMANEVA_15, tuple(Joint(n) for n in HUMANEVA_15.names))

#: Real CMU walks (subject, trial), `trials.csv` description "walk".
WALKS = (("02", "01"), ("02", "02"), ("05", "01"), ("16", "15"), ("16", "21"), ("16", "31"))


def frame_of(convention, positions: np.ndarray) -> np.ndarray:
    """(T, K, 3) -> the convention's pelvis frame (root, hips, thorax)."""
    layout = get_convention(convention).layout
    return pelvis_frame(positions, 0, layout.index("r_hip"), layout.index("l_hip"),
                        layout.index("thorax"))


def _idx(name: str) -> int:
    return HUMANEVA_15.index(name)


#: Definition-level measures of HumanEva-I's skeleton, on (15, 3) pelvis-frame means.
LOCAL_MEASURES = {
    "hip width": lambda p: np.linalg.norm(p[_idx("l_hip")] - p[_idx("r_hip")]),
    "hips in front of the pelvis": lambda p: 0.5 * (p[_idx("l_hip")] + p[_idx("r_hip")])[1],
    "hips above the pelvis": lambda p: 0.5 * (p[_idx("l_hip")] + p[_idx("r_hip")])[2],
    "thorax above the shoulders": lambda p: (
        p[_idx("thorax")] - 0.5 * (p[_idx("l_shoulder")] + p[_idx("r_shoulder")]))[2],
    "thorax in front of the shoulders": lambda p: (
        p[_idx("thorax")] - 0.5 * (p[_idx("l_shoulder")] + p[_idx("r_shoulder")]))[1],
    "head above the thorax": lambda p: (p[_idx("head")] - p[_idx("thorax")])[2],
    "head in front of the thorax": lambda p: (p[_idx("head")] - p[_idx("thorax")])[1],
    "shoulder width": lambda p: np.linalg.norm(p[_idx("l_shoulder")] - p[_idx("r_shoulder")]),
}


def synthetic_means(cmu_dir: pathlib.Path, conventions: List[str], calibrate: bool = False
                    ) -> Dict[str, np.ndarray]:
    """Convention -> (K, 3) mean pelvis-frame positions at the reference stature, metres;
    with `calibrate`, also '<name>:origins' -> the same for each BonePoint's origin."""
    sums: Dict[str, List[np.ndarray]] = {}
    for subject, trial in WALKS:
        settings = RenderSettings(fps=25.0)  # every built-in avatar
        motion = resample(load_clip(cmu_dir / subject / f"{subject}_{trial}.amc", settings),
                          settings.fps)
        chain = ClipChain(motion, clip_key_for(motion), settings)
        for index, avatar in enumerate(chain.bodies):
            evaluator = ConventionEvaluator(chain.film(index).clip)
            scale = REFERENCE_HEIGHT / avatar.height
            for name in conventions:
                convention = get_convention(name)
                positions = evaluator.positions(convention)
                sums.setdefault(name, []).append(frame_of(name, positions).mean(0) * scale)
                if name == "humaneva15":
                    centres = evaluator.positions(JOINT_CENTRES_AS_HUMANEVA)
                    sums.setdefault("centres", []).append(
                        frame_of(name, centres).mean(0) * scale)
                if calibrate:
                    bare = []
                    for keypoint, d in zip(convention.names, convention.definitions):
                        if isinstance(d, BonePoint):
                            d = BonePoint(d.bone, (0.0, 0.0, 0.0), d.origin_name(), d.measure)
                        bare.append(d)
                    origins = positions.copy()
                    for k, d in enumerate(bare):
                        if isinstance(d, BonePoint):
                            origins[:, k] = evaluator.attached(
                                d.bone, evaluator._rest_point(name, convention.names[k],
                                                              d.origin_name()))
                    layout = convention.layout
                    both = np.concatenate([positions, origins], axis=1)
                    k = layout.num_joints
                    f = pelvis_frame(both, 0, layout.index("r_hip"), layout.index("l_hip"),
                                     layout.index("thorax"))[:, k:]
                    sums.setdefault(name + ":origins", []).append(f.mean(0) * scale)
    return {k: np.mean(v, axis=0) for k, v in sums.items()}


def humaneva_means(path: pathlib.Path, part: str = "Validate/") -> np.ndarray:
    """(15, 3) mean pelvis-frame positions of real HumanEva-I (subjects under `part`)."""
    from vp3dkeras.data.vp3d_format import restricted_load_npz  # reads pickles safely

    data = restricted_load_npz(path)["positions_3d"]
    frames = [frame_of("humaneva15", np.asarray(a, dtype=np.float64))
              for name, subject in data.items() if name.startswith(part)
              for a in subject.values()]
    return np.concatenate(frames).mean(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("VP3D_SHARED_DIR", "../shared")))
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    names = ["h36m17", "humaneva15", "coco17", "acclaim17"]
    means = synthetic_means(args.shared / "mocap" / "cmu", names[:2], args.calibrate)
    for name in names[:2]:
        convention = get_convention(name)
        targets = BODY_FRAME_TARGETS.get(name, {})
        print(f"{name}: mean position in its pelvis frame, mm at {REFERENCE_HEIGHT} m "
              f"(ours | target)")
        for k, keypoint in enumerate(convention.names):
            ours = np.round(means[name][k] * 1000).astype(int)
            target = targets.get(keypoint)
            line = f"  {keypoint:11s} {str(ours):18s}"
            if target is not None:
                line += f" | {np.round(np.array(target) * 1000).astype(int)}"
                d = convention.definitions[k]
                if args.calibrate and isinstance(d, BonePoint):
                    origin = means[name + ":origins"][k]
                    offset = (np.array(target) - origin) * 1000
                    line += f"   offset from {d.origin_name()}: {np.round(offset).astype(int)}"
            print(line)
    real_path = args.shared / "real" / "humaneva" / "data_3d_humaneva15.npz"
    if real_path.is_file():
        real = humaneva_means(real_path)
        ours = means["humaneva15"]
        errors = np.linalg.norm(real - ours, axis=-1) * 1000
        print("humaneva15 against real HumanEva-I Validate/ (pelvis frame, mm): "
              "ours | real | distance")
        for k, keypoint in enumerate(get_convention("humaneva15").names):
            print(f"  {keypoint:11s} {str(np.round(ours[k] * 1000).astype(int)):18s} | "
                  f"{str(np.round(real[k] * 1000).astype(int)):18s} | {errors[k]:.0f}")
        print(f"  mean distance {errors[1:].mean():.0f} mm over the 14 non-root keypoints")
        print("  relative to the thorax (trunk length aside): ours | real | distance")
        for k in (2, 5, 14):
            rel_ours, rel_real = (ours[k] - ours[1]) * 1000, (real[k] - real[1]) * 1000
            print(f"  {get_convention('humaneva15').names[k]:11s} "
                  f"{str(np.round(rel_ours).astype(int)):18s} | "
                  f"{str(np.round(rel_real).astype(int)):18s} | "
                  f"{np.linalg.norm(rel_ours - rel_real):.0f}")
        hips = np.linalg.norm(ours[11] - ours[8]) * 1000, np.linalg.norm(real[11] - real[8]) * 1000
        print("  local geometry (mm): real | humaneva15 | canonical joint centres named as "
              "HumanEva-I's")
        for label, measure in LOCAL_MEASURES.items():
            values = [measure(p) * 1000 for p in (real, ours, means["centres"])]
            print(f"  {label:34s} {values[0]:6.0f} | {values[1]:6.0f} | {values[2]:6.0f}")
        print(f"  hip width: ours {hips[0]:.0f} mm, real {hips[1]:.0f} mm; head above thorax: "
              f"ours {(ours[14, 2] - ours[1, 2]) * 1000:.0f} mm, "
              f"real {(real[14, 2] - real[1, 2]) * 1000:.0f} mm")


if __name__ == "__main__":
    main()
