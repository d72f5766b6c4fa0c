"""Seeded sampling of body phenotypes from a realistic human population (NumPy only).

A `BodySpec` is what a person is (sex, age, stature, body-mass index, muscularity,
proportions); `synth.bodies.anny_build` turns it into an Anny body whose mesh has that
stature and, within the model's range, that BMI.

Adults (18-70 years, uniform age; 50 % female) follow the US National Health and Nutrition
Examination Survey 2015-2018 (Fryar, Carroll, Gu, Afful, Ogden: "Anthropometric reference
data for children and adults: United States, 2015-2018", NCHS Vital Health Stat 3(46), 2021):

- stature: normal, mean 175.3 cm (men) / 161.3 cm (women) as published there; standard
  deviations 7.6 / 7.1 cm, the within-sex spread of its 5th-95th percentiles (about
  +-1.645 SD); truncated at +-2.5 SD.
- BMI: log-normal with median 28.0 (men) / 28.3 (women) and a log-SD of 0.20 (published
  means 29.1 / 29.6 kg/m^2, right-skewed), truncated to 16-50 kg/m^2.

The builder reaches the drawn BMI where Anny's weight scale allows (`synth.bodies.
anny_build`); the BMI a body reaches is recorded beside the one drawn.

Children (`children=True`: a share of the draws, 5-17 years) take their median stature per
year of age from the WHO 2007 growth reference (de Onis et al., Bull WHO 85:660-667, 2007;
`_CHILD_STATURE_CM` below, values rounded to 1 cm) with a 5 % coefficient of variation, and
a BMI around 17 +- 2.5.

Muscularity and proportions have no survey behind them: they are spread around the body
model's mid value (Beta(3, 3)) so bodies vary beyond stature and weight.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import List

import numpy as np

SEXES = ("female", "male")
ADULT_AGE_RANGE = (18.0, 70.0)
CHILD_AGE_RANGE = (5.0, 17.999)
_ADULT_STATURE_CM = {"male": (175.3, 7.6), "female": (161.3, 7.1)}
_ADULT_BMI_MEDIAN = {"male": 28.0, "female": 28.3}
_ADULT_BMI_LOG_SD = 0.20
_BMI_RANGE = (16.0, 50.0)
# WHO 2007 height-for-age medians, cm, at whole years 5..18 (girls, boys).
_CHILD_STATURE_CM = {
    "female": (109, 115, 121, 127, 133, 138, 144, 151, 157, 160, 162, 163, 163, 163),
    "male": (110, 116, 122, 128, 133, 139, 144, 150, 156, 163, 169, 173, 175, 176),
}


@dataclasses.dataclass(frozen=True)
class BodySpec:
    """One person to build.

    sex: "female" or "male"; age: years; stature: metres, floor to top of head;
    bmi: body-mass index drawn for this person, kg/m^2;
    muscle, proportions: in [0, 1], the body model's own scales (0.5 = average).
    """

    sex: str
    age: float
    stature: float
    bmi: float
    muscle: float = 0.5
    proportions: float = 0.5

    def __post_init__(self):
        problems = []
        if self.sex not in SEXES:
            problems.append(f"sex {self.sex!r} is not one of {SEXES}")
        values = {"age": self.age, "stature": self.stature, "bmi": self.bmi,
                  "muscle": self.muscle, "proportions": self.proportions}
        bad = [k for k, v in values.items() if not math.isfinite(float(v))]
        if bad:
            problems.append(f"{', '.join(bad)} not finite")
        else:
            if not 1.0 <= self.age <= 110.0:
                problems.append(f"age {self.age:g} years outside 1-110")
            if not 0.5 <= self.stature <= 2.6:
                problems.append(f"stature {self.stature:g} m outside 0.5-2.6 m")
            if not 10.0 <= self.bmi <= 70.0:
                problems.append(f"BMI {self.bmi:g} outside 10-70")
            for k in ("muscle", "proportions"):
                if not 0.0 <= values[k] <= 1.0:
                    problems.append(f"{k} {values[k]:g} outside [0, 1]")
        if problems:
            raise ValueError("invalid body: " + "; ".join(problems))

    def to_json(self) -> dict:
        return {"sex": self.sex, "age": round(float(self.age), 4),
                "stature": round(float(self.stature), 5), "bmi": round(float(self.bmi), 4),
                "muscle": round(float(self.muscle), 5),
                "proportions": round(float(self.proportions), 5)}

    @classmethod
    def from_json(cls, data: dict) -> "BodySpec":
        try:
            return cls(str(data["sex"]), float(data["age"]), float(data["stature"]),
                       float(data["bmi"]), float(data.get("muscle", 0.5)),
                       float(data.get("proportions", 0.5)))
        except (KeyError, TypeError) as error:
            raise ValueError(f"invalid body description {data!r}: {error}") from None

    def key(self, builder_version: str) -> str:
        """Content address of the body this spec gives with a given builder/model version:
        16 hex digits of SHA-256 over the rounded spec and the version."""
        text = json.dumps([self.to_json(), builder_version], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def sample_bodies(count: int, seed: int, children: bool = False,
                  child_share: float = 0.25) -> List[BodySpec]:
    """`count` bodies drawn from the population above with `np.random.default_rng(seed)`.

    children: include children (5-17 years) as `child_share` of the draws (adults only by
    default). The same (count, seed, children) always gives the same list, and the first k
    bodies of a longer list equal those of a shorter one.
    """
    if count < 0:
        raise ValueError(f"body count must be >= 0, got {count}")
    rng = np.random.default_rng([seed, 0xB0D1E5])
    return [sample_body(rng, children, child_share) for _ in range(count)]


def sample_body(rng: np.random.Generator, children: bool = False,
                child_share: float = 0.25) -> BodySpec:
    """One body; every choice drawn from `rng` in a fixed order."""
    sex = SEXES[int(rng.integers(2))]
    is_child = bool(rng.uniform() < child_share) and children
    muscle, proportions = rng.beta(3.0, 3.0, size=2)
    if is_child:
        age = rng.uniform(*CHILD_AGE_RANGE)
        median = np.interp(age, np.arange(5, 19), _CHILD_STATURE_CM[sex]) / 100.0
        stature = median * (1.0 + 0.05 * _truncated_normal(rng, 2.5))
        z = _truncated_normal(rng, 2.5)
        bmi = float(np.clip(17.0 + 2.5 * z, 13.0, 26.0))
    else:
        age = rng.uniform(*ADULT_AGE_RANGE)
        mean, sd = _ADULT_STATURE_CM[sex]
        stature = (mean + sd * _truncated_normal(rng, 2.5)) / 100.0
        z = _truncated_normal(rng, 3.0)
        bmi = float(np.clip(_ADULT_BMI_MEDIAN[sex] * math.exp(_ADULT_BMI_LOG_SD * z),
                            *_BMI_RANGE))
    return BodySpec(sex, float(age), float(stature), float(bmi), float(muscle),
                    float(proportions))


def _truncated_normal(rng: np.random.Generator, limit: float) -> float:
    """A standard normal draw re-drawn until |z| <= limit."""
    while True:
        z = float(rng.standard_normal())
        if abs(z) <= limit:
            return z
