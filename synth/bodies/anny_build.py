"""Building Anny bodies (runs ONLY in its own process: `python -m synth.bodies build`).

Anny (NAVER, Apache-2.0; https://github.com/naver/anny) is a parametric human body model
built on MakeHuman: a 13,718-vertex mesh rigged with 104 bones whose shape follows
phenotype parameters (gender, age, muscle, weight, height, proportions, each in [0, 1]).
It runs on PyTorch and NVIDIA Warp, which carry their own LLVM/OpenMP: this module must not
be imported by a process that imports TensorFlow or pyrender (`synth.bodies.cache` reads
what it writes with NumPy alone).

For each `BodySpec`:
- gender is 0 (male) or 1 (female), as in Anny's `PHENOTYPE_VARIATIONS` order; the age in
  years maps to Anny's age parameter through Anny's own calibrated "morphological age"
  mapping (`anny/data/shape_calibration`);
- muscle and proportions are passed through (muscle pulled towards average at extrapolated
  weights, `AnnyBuilder.effective`);
- the height parameter stays at `HEIGHT_PARAMETER` and the body is scaled uniformly (about
  the point between the soles) to the spec's stature. Anny's height parameter mostly
  stretches the thigh (thigh/stature 0.19 at 0.1, 0.24 at 0.5, 0.26 at 0.7; measured on
  Anny 0.6.2), so solving it for stature gave average adults thighs 15 % shorter than their
  shanks, against roughly equal lengths in joint-centre references (de Leva 1996;
  HumanEva-I and Human3.6M subjects). A stature that needs a scale outside `SCALE_RANGE` is
  refused;
- the weight parameter is solved by bisection in [0, `MAX_WEIGHT`] (Anny extrapolates its
  weight blend shapes beyond 1: heavier, still human shapes) so the BMI (mass = mesh volume
  x 980 kg/m^3, as Anny's `Anthropometry`) after scaling is the spec's, as far as that range
  allows; the BMI reached is stored;
- joint centres come from the rig's bone heads (`CANONICAL_FROM_BONES`), skinning weights
  are summed onto the canonical segments (`_segment_of_bone`), and landmarks come from Anny's
  COCO keypoint regressor (vertex blends) and from the rig.

A spec the model cannot reach (a stature too far from Anny's own for that sex and age)
raises `BodyBuildError` naming the body and the problem.
"""
from __future__ import annotations

import json
import pathlib
from typing import Dict, List, Sequence

import numpy as np

from ..avatars import CANONICAL_JOINTS
from . import cache
from .population import BodySpec

_DENSITY = 980.0  # kg/m^3, the value of Anny's `Anthropometry.mass`
# Anny's height parameter at which its segment proportions match joint-centre references
# (thigh/shank about 1, thigh about 0.24 of stature; see `experiments/body_population.py`).
HEIGHT_PARAMETER = 0.5
SCALE_RANGE = (0.75, 1.25)  # uniform scale allowed around Anny's own stature
MAX_WEIGHT = 2.0  # weight parameter's upper end (extrapolated beyond Anny's 1)


class BodyBuildError(ValueError):
    """A body the model cannot build; the message names the body and the problem."""


def _side(name: str, s: str) -> str:
    return name.replace("{S}", s.upper()).replace("{s}", s)


# Canonical joint -> the Anny rig bones whose heads it averages.
CANONICAL_FROM_BONES: Dict[str, tuple] = {
    "spine": ("spine02",),           # thoracolumbar junction, about 0.13 x stature above hips
    "thorax": ("neck01",),           # base of the neck
    "neck_nose": ("head",),          # skull base (head bone's head, atlanto-occipital)
    **{_side(k, s): tuple(_side(b, s) for b in v) for s in "lr" for k, v in {
        "{s}_hip": ("upperleg01.{S}",), "{s}_knee": ("lowerleg01.{S}",),
        "{s}_ankle": ("foot.{S}",),
        "{s}_toe": tuple(f"toe{i}-1.{{S}}" for i in range(1, 6)),  # ball of the foot (MTPs)
        "{s}_shoulder": ("upperarm01.{S}",), "{s}_elbow": ("lowerarm01.{S}",),
        "{s}_wrist": ("wrist.{S}",)}.items()},
}


def _segment_of_bone(bone: str) -> str:
    """The canonical joint whose incoming segment an Anny bone's vertices move with."""
    side = "l" if bone.endswith(".L") else "r" if bone.endswith(".R") else ""
    base = bone.split(".")[0]
    if base == "pelvis":
        return f"{side}_hip"
    if base in ("spine05", "spine04", "spine03"):
        return "spine"
    if base in ("spine02", "spine01"):
        return "thorax"
    if base.startswith("neck"):
        return "neck_nose"
    if base in ("clavicle", "shoulder01"):
        return f"{side}_shoulder"
    if base.startswith("upperarm"):
        return f"{side}_elbow"
    if base.startswith(("lowerarm", "wrist", "finger", "metacarpal")):
        return f"{side}_wrist"
    if base.startswith("upperleg"):
        return f"{side}_knee"
    if base.startswith("lowerleg"):
        return f"{side}_ankle"
    if base.startswith(("foot", "toe")):
        return f"{side}_toe"
    return "head"  # head, eyes and anything above the neck


def build_bodies(specs: Sequence[BodySpec], cache_dir, batch: int = 64) -> List[pathlib.Path]:
    """Builds every spec not yet in `cache_dir`; returns the body files of all specs."""
    builder = AnnyBuilder()
    paths = [cache.body_file(cache_dir, s.key(builder.version)) for s in specs]
    todo = [i for i, p in enumerate(paths) if not p.is_file()]
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        for i, arrays in zip(chunk, builder.build([specs[i] for i in chunk])):
            cache.write_body(paths[i], arrays)
    return paths


class AnnyBuilder:
    """One Anny model and its helpers; `build` turns specs into body arrays."""

    def __init__(self):
        import anny
        import torch
        from anny.paths import get_anny_root_dir

        self.torch, self.anny = torch, anny
        self.version = cache.builder_version()
        self.model = anny.Anny(extrapolate_phenotypes=True)
        self.model.requires_grad_(False)
        self.faces = self.model.get_triangular_faces().cpu().numpy().astype(np.int32)
        self.labels = list(self.model.bone_labels)
        calibration = torch.load(get_anny_root_dir() / "data" / "shape_calibration" / "boys.pth",
                                 weights_only=True, map_location="cpu")
        mapping = calibration["morphological_age_mapping"]
        self.age_years = mapping["morphological_age_anchors"].numpy()
        self.age_params = mapping["anny_age_anchors"].numpy()
        self.coco = anny.keypoints.KeypointsRegressor.coco(self.model)
        self.anthropometry = anny.Anthropometry(self.model)
        self.weights = self._canonical_weights()

    def anny_age(self, years: np.ndarray) -> np.ndarray:
        """Anny's age parameter for ages in years (Anny's calibrated piecewise-linear map)."""
        return np.interp(years, self.age_years, self.age_params)

    def _canonical_weights(self) -> np.ndarray:
        """(V, 19) Anny's per-vertex bone weights summed per canonical segment."""
        indices = self.model.vertex_bone_indices.cpu().numpy()
        weights = self.model.vertex_bone_weights.cpu().numpy()
        column = np.array([CANONICAL_JOINTS.index(_segment_of_bone(b)) for b in self.labels])
        out = np.zeros((len(indices), len(CANONICAL_JOINTS)))
        rows = np.repeat(np.arange(len(indices)), indices.shape[1])
        np.add.at(out, (rows, column[indices.ravel()]), weights.ravel())
        root_share = out[:, 0].copy()  # the root bone's pelvis vertices: half to each hip
        out[:, 0] = 0.0
        out[:, CANONICAL_JOINTS.index("l_hip")] += 0.5 * root_share
        out[:, CANONICAL_JOINTS.index("r_hip")] += 0.5 * root_share
        return out / out.sum(axis=1, keepdims=True)

    @staticmethod
    def effective(params: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """The parameters handed to Anny: beyond weight 1 Anny extrapolates, and its muscle x
        weight blend shapes extrapolate into bodybuilder shapes, so muscle is pulled to the
        average (0.5) as weight goes from 1 to `MAX_WEIGHT`."""
        keep = np.clip((MAX_WEIGHT - params["weight"]) / (MAX_WEIGHT - 1.0), 0.0, 1.0)
        return {**params, "muscle": 0.5 + (params["muscle"] - 0.5) * keep}

    def _rest(self, params: Dict[str, np.ndarray], full: bool = False):
        torch = self.torch
        kwargs = {k: torch.as_tensor(v, dtype=self.model.dtype)
                  for k, v in self.effective(params).items()}
        coeffs = self.model.get_phenotype_blendshape_coefficients(**kwargs)
        if full:
            return self.model.get_rest_model(coeffs)
        return self.model.get_rest_vertices(coeffs)

    def _measure(self, vertices) -> tuple:
        """Stature (m) and BMI of (B, V, 3) rest vertices."""
        v = vertices.cpu().numpy() if hasattr(vertices, "cpu") else vertices
        stature = v[..., 2].max(axis=1) - v[..., 2].min(axis=1)
        f = self.faces
        volume = np.abs(np.einsum("bfi,bfi->bf", np.cross(v[:, f[:, 0]], v[:, f[:, 1]]),
                                  v[:, f[:, 2]]).sum(axis=1) / 6.0)
        return stature, volume * _DENSITY / stature ** 2

    def build(self, specs: Sequence[BodySpec]) -> List[Dict[str, np.ndarray]]:
        """Body arrays (see `synth.bodies.cache`) for each spec; BodyBuildError when one
        cannot be built."""
        n = len(specs)
        target_h = np.array([s.stature for s in specs])
        params = {
            "gender": np.array([1.0 if s.sex == "female" else 0.0 for s in specs]),
            "age": self.anny_age(np.array([s.age for s in specs])),
            "muscle": np.array([s.muscle for s in specs]),
            "proportions": np.array([s.proportions for s in specs]),
            "weight": np.full(n, 0.5), "height": np.full(n, HEIGHT_PARAMETER),
        }
        stature = self._measure(self._rest(params))[0]
        scale = target_h / stature
        # Weight changes the stature little (under 1 %); scaling multiplies BMI by `scale`.
        params["weight"] = self._solve_weight(params, np.array([s.bmi for s in specs]), scale)
        rest = self._rest(params, full=True)
        stature, bmi = self._measure(rest["rest_vertices"])
        scale = target_h / stature
        for i, spec in enumerate(specs):
            if not SCALE_RANGE[0] <= scale[i] <= SCALE_RANGE[1]:
                raise BodyBuildError(
                    f"body {spec.key(self.version)} ({spec.sex}, {spec.age:.0f} years): "
                    f"cannot be built, stature {spec.stature:.3f} m would scale Anny's "
                    f"{stature[i]:.3f} m body for this sex and age by {scale[i]:.2f} "
                    f"(allowed {SCALE_RANGE[0]}-{SCALE_RANGE[1]})")
        keypoints = self.coco({"vertices": rest["rest_vertices"]}).cpu().numpy()
        waist = self.anthropometry.waist_circumference(rest["rest_vertices"]).cpu().numpy()
        vertices = rest["rest_vertices"].cpu().numpy()
        heads = rest["rest_bone_heads"].cpu().numpy()
        # A uniform scale keeps the shape: BMI (mass / stature^2) scales with it, as does
        # the waist.
        params = self.effective(params)
        return [self._arrays(spec, {k: v[i] for k, v in params.items()}, vertices[i],
                             heads[i], keypoints[i], scale[i], bmi[i] * scale[i],
                             waist[i] * scale[i])
                for i, spec in enumerate(specs)]

    def _solve_weight(self, params, target_bmi: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Weight parameter in [0, MAX_WEIGHT] per body giving `target_bmi` once scaled by
        `scale` (BMI grows with weight); clamped at the range's ends."""
        lo, hi = np.zeros(len(target_bmi)), np.full(len(target_bmi), MAX_WEIGHT)
        for _ in range(14):
            mid = 0.5 * (lo + hi)
            bmi = self._measure(self._rest({**params, "weight": mid}))[1] * scale
            below = bmi < target_bmi
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def _arrays(self, spec, params, vertices, heads, keypoints, scale, bmi, waist) -> dict:
        floor = np.array([0.0, 0.0, vertices[:, 2].min()])
        vertices, heads, keypoints = ((a - floor) * scale for a in (vertices, heads, keypoints))
        stature = float(vertices[:, 2].max())
        bone = {name: heads[i] for i, name in enumerate(self.labels)}
        joints = np.zeros((len(CANONICAL_JOINTS), 3))
        for j, name in enumerate(CANONICAL_JOINTS):
            if name in CANONICAL_FROM_BONES:
                joints[j] = np.mean([bone[b] for b in CANONICAL_FROM_BONES[name]], axis=0)
        hip = CANONICAL_JOINTS.index
        joints[hip("hip")] = 0.5 * (joints[hip("l_hip")] + joints[hip("r_hip")])
        head_vertices = self.weights[:, hip("head")] > 0.5
        landmarks = self._landmarks(vertices, joints, bone, keypoints, head_vertices)
        # The head joint: centre of the cranium, halfway from the ear canals' midpoint to
        # the top of the skull.
        ears = 0.5 * (landmarks["l_ear"] + landmarks["r_ear"])
        joints[hip("head")] = 0.5 * (ears + landmarks["head_top"])
        names = sorted(landmarks)
        measures = {"stature": stature, "bmi": float(bmi), "mass": float(bmi * stature ** 2),
                    "waist": float(waist), "scale": float(scale), "model": "anny",
                    "builder": self.version}
        labels = sorted(params)
        return {
            "joints": joints, "vertices": vertices.astype(np.float32), "faces": self.faces,
            "weights": self.weights.astype(np.float32), "landmark_names": np.array(names),
            "landmarks": np.array([landmarks[k] for k in names]),
            "spec": np.array(json.dumps(spec.to_json(), sort_keys=True)),
            "phenotype_labels": np.array(labels),
            "phenotype": np.array([float(params[k]) for k in labels]),
            "measures": np.array(json.dumps(measures, sort_keys=True)),
        }

    def _landmarks(self, vertices, joints, bone, keypoints, head_vertices) -> dict:
        """Rest positions of the vocabulary landmarks this body provides
        (`posecontract.conventions.LANDMARKS`)."""
        coco = dict(zip(self.coco.labels, keypoints))
        j = {name: joints[i] for i, name in enumerate(CANONICAL_JOINTS)}
        out = {
            "nose": coco["nose"], "head_top": vertices[np.argmax(vertices[:, 2])],
            "neck_base": bone["neck01"], "pelvis_centre": j["hip"],
        }
        # Chin (gnathion): the lowest midline vertex the head bone moves (the throat below
        # it moves with the neck).
        midline = head_vertices & (np.abs(vertices[:, 0]) < 0.006) & (
            vertices[:, 1] < coco["nose"][1] + 0.05)
        if midline.any():
            out["chin"] = vertices[midline][np.argmin(vertices[midline][:, 2])]
        for s, side in (("l", "left"), ("r", "right")):
            out[f"{s}_eye"] = coco[f"{side}_eye"]
            out[f"{s}_ear"] = coco[f"{side}_ear"]
            out[f"{s}_heel"] = coco[f"{side}_heel"]
            out[f"{s}_big_toe"] = coco[f"{side}_big_toe"]
            out[f"{s}_small_toe"] = coco[f"{side}_small_toe"]
            out[f"{s}_hip_centre"] = j[f"{s}_hip"]
            out[f"{s}_shoulder_centre"] = j[f"{s}_shoulder"]
            # Acromion: the highest surface point above the shoulder joint.
            shoulder = j[f"{s}_shoulder"]
            above = np.linalg.norm(vertices[:, :2] - shoulder[:2], axis=1) < 0.025
            above &= vertices[:, 2] > shoulder[2]
            if above.any():
                out[f"{s}_acromion"] = vertices[above][np.argmax(vertices[above][:, 2])]
            # Greater trochanter: the most lateral thigh surface point within 4 cm of the hip
            # joint's height.
            hip = j[f"{s}_hip"]
            thigh = self.weights[:, CANONICAL_JOINTS.index(f"{s}_knee")] > 0.3
            near = thigh & (np.abs(vertices[:, 2] - hip[2] + 0.02) < 0.04)
            if near.any():
                lateral = vertices[near][:, 0] * (1 if s == "l" else -1)
                out[f"{s}_greater_trochanter"] = vertices[near][np.argmax(lateral)]
        return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
