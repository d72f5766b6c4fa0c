"""The Anny bodies of a default dataset against published adult anthropometry.

    python experiments/body_population.py [MOCAP_DIR ...] [--pool 100] [--per-clip 5]
        [--seed 0] [--cache DIR] [--out experiments/results/body_population.md]

Builds (in a child process, `python -m synth.bodies build`) the body pool a default
`python -m synth.render --bodies anny` run uses, counts the distinct bodies the clips of
MOCAP_DIR (default: ../shared/mocap/hdm05 and ../shared/mocap/cmu) are put on, and compares
the bodies' statures, BMIs and segment lengths with:

- NHANES 2015-2018 (Fryar et al. 2021, NCHS Vital Health Stat 3(46)): mean stature 175.3 cm
  (men) / 161.3 cm (women), mean BMI 29.1 / 29.6 kg/m^2, mean waist 102.1 / 97.0 cm (waist
  means as given there; treat as approximate);
- Drillis & Contini (1966) segment lengths as fractions of stature H, as tabulated in
  Winter, "Biomechanics and Motor Control of Human Movement" (4th ed., 2009, Fig. 4.1):
  thigh (hip joint - knee) 0.245 H, leg (knee - ankle) 0.246 H, upper arm 0.186 H, forearm
  0.146 H, foot length 0.152 H, shoulder width 0.259 H, hip width 0.191 H; heights of the
  hip joint 0.530 H, knee 0.285 H, ankle 0.039 H, shoulder 0.818 H, chin 0.870 H, eyes
  0.936 H;
- de Leva (1996, J Biomech 29:1223-1230, Table 1) lengths between joint centres, per sex
  (statures 1.741 m men, 1.735 m women): upper arm 281.7 / 275.1 mm, forearm 268.9 / 264.3,
  thigh 422.2 / 368.5, shank 434.0 / 432.3.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synth.avatars import CANONICAL_JOINTS  # noqa: E402
from synth.bodies import pool  # noqa: E402
from synth.bodies.body import AnnyBody  # noqa: E402
from synth.mocap_io import find_clips, load_motion  # noqa: E402
from synth.motion import MocapError  # noqa: E402
from synth.render import clip_key_for, clip_rng  # noqa: E402

SHARED = ROOT.parent / "shared" / "mocap"
NHANES = {"male": {"stature": 1.753, "bmi": 29.1, "waist": 1.021},
          "female": {"stature": 1.613, "bmi": 29.6, "waist": 0.970}}
DE_LEVA = {  # sex: (stature, {segment: length}), metres
    "male": (1.741, {"upper arm": 0.2817, "forearm": 0.2689, "thigh (hip joint-knee)": 0.4222,
                     "leg (knee-ankle)": 0.4340}),
    "female": (1.735, {"upper arm": 0.2751, "forearm": 0.2643,
                       "thigh (hip joint-knee)": 0.3685, "leg (knee-ankle)": 0.4323}),
}
DRILLIS = {  # name: (fraction of stature, how it is measured on a body)
    "thigh (hip joint-knee)": 0.245, "leg (knee-ankle)": 0.246, "upper arm": 0.186,
    "forearm": 0.146, "foot length (heel-big toe)": 0.152, "shoulder width (acromia)": 0.259,
    "hip width (trochanters)": 0.191, "hip joint height": 0.530, "knee height": 0.285,
    "ankle height": 0.039, "shoulder height (acromion)": 0.818, "chin height": 0.870,
    "eye height": 0.936,
}


def measures(body: AnnyBody) -> dict:
    j = {n: p for n, p in zip(CANONICAL_JOINTS, body.rest_positions())}
    lm = body.landmarks()

    def both(f):
        return 0.5 * (f("l") + f("r"))

    def dist(a, b):
        return float(np.linalg.norm(a - b))

    return {
        "thigh (hip joint-knee)": both(lambda s: dist(j[f"{s}_hip"], j[f"{s}_knee"])),
        "leg (knee-ankle)": both(lambda s: dist(j[f"{s}_knee"], j[f"{s}_ankle"])),
        "upper arm": both(lambda s: dist(j[f"{s}_shoulder"], j[f"{s}_elbow"])),
        "forearm": both(lambda s: dist(j[f"{s}_elbow"], j[f"{s}_wrist"])),
        "foot length (heel-big toe)": both(lambda s: dist(lm[f"{s}_heel"][:2],
                                                          lm[f"{s}_big_toe"][:2])),
        "shoulder width (acromia)": dist(lm["l_acromion"], lm["r_acromion"]),
        "hip width (trochanters)": dist(lm["l_greater_trochanter"], lm["r_greater_trochanter"]),
        "hip joint height": both(lambda s: j[f"{s}_hip"][2]),
        "knee height": both(lambda s: j[f"{s}_knee"][2]),
        "ankle height": both(lambda s: j[f"{s}_ankle"][2]),
        "shoulder height (acromion)": both(lambda s: lm[f"{s}_acromion"][2]),
        "chin height": float(lm["chin"][2]),
        "eye height": both(lambda s: lm[f"{s}_eye"][2]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mocap_dirs", type=pathlib.Path, nargs="*",
                        default=[SHARED / "hdm05", SHARED / "cmu"])
    parser.add_argument("--pool", type=int, default=100)
    parser.add_argument("--per-clip", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=pathlib.Path, default=None)
    parser.add_argument("--out", type=pathlib.Path,
                        default=ROOT / "experiments" / "results" / "body_population.md")
    args = parser.parse_args()
    cache_dir = args.cache or pathlib.Path(tempfile.mkdtemp(prefix="bodies-"))
    specs = pool.pool_specs(args.pool, args.seed, False)
    pool.ensure_built(cache_dir, specs)

    lines = ["# Anny bodies of a default dataset vs published adult anthropometry", "",
             f"`python experiments/body_population.py` (pool {args.pool}, {args.per_clip} "
             f"bodies per clip, seed {args.seed}).", ""]
    for mocap in args.mocap_dirs:
        used, clips = set(), 0
        for path in find_clips(mocap):
            try:
                key = clip_key_for(load_motion(path))
            except MocapError:
                continue
            clips += 1
            used.update(b.name for b in pool.clip_bodies(
                cache_dir, specs, clip_rng(args.seed, key, 0, stream=2), args.per_clip))
        lines.append(f"- `{mocap.name}`: {clips} clips x {args.per_clip} bodies = "
                     f"{clips * args.per_clip} records on **{len(used)} distinct bodies**.")
    bodies = [AnnyBody(f) for f in pool.pool_files(cache_dir, specs)]
    lines += ["", "## Stature, BMI, waist (mean +- SD over the pool)", "",
              "| sex | n | stature drawn (m) | stature built (m) | NHANES mean | BMI drawn | "
              "BMI built | NHANES BMI | waist (m) | NHANES waist |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for sex in ("male", "female"):
        group = [b for b in bodies if b.spec["sex"] == sex]
        if not group:
            continue

        def ms(values):
            return f"{np.mean(values):.3f} +- {np.std(values):.3f}"

        lines.append(
            f"| {sex} | {len(group)} | {ms([b.spec['stature'] for b in group])} | "
            f"{ms([b.height for b in group])} | {NHANES[sex]['stature']:.3f} | "
            f"{np.mean([b.spec['bmi'] for b in group]):.1f} | "
            f"{np.mean([b.measures['bmi'] for b in group]):.1f} "
            f"({min(b.measures['bmi'] for b in group):.1f}-"
            f"{max(b.measures['bmi'] for b in group):.1f}) | {NHANES[sex]['bmi']} | "
            f"{ms([b.measures['waist'] for b in group])} | {NHANES[sex]['waist']} |")
    lines += ["", "## Segment lengths and heights as fractions of stature", "",
              "| measure | Drillis & Contini | bodies, mean +- SD | min-max | "
              "at 1.75 m (mm): D&C vs bodies |", "|---|---|---|---|---|"]
    table = [measures(b) for b in bodies]
    for name, fraction in DRILLIS.items():
        ratios = np.array([m[name] / b.height for m, b in zip(table, bodies)])
        lines.append(f"| {name} | {fraction:.3f} | {ratios.mean():.3f} +- {ratios.std():.3f} | "
                     f"{ratios.min():.3f}-{ratios.max():.3f} | {1750 * fraction:.0f} vs "
                     f"{1750 * ratios.mean():.0f} |")
    lines += ["", "## Limb segments between joint centres, per sex, vs de Leva (1996)", "",
              "| segment | men: de Leva / bodies (fraction of stature) | "
              "women: de Leva / bodies |", "|---|---|---|"]
    for name in DE_LEVA["male"][1]:
        cells = []
        for sex in ("male", "female"):
            stature, lengths = DE_LEVA[sex]
            ratios = [m[name] / b.height for m, b in zip(table, bodies)
                      if b.spec["sex"] == sex]
            cells.append(f"{lengths[name] / stature:.3f} / {np.mean(ratios):.3f}")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
