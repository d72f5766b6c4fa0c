"""Detector-like errors for ground-truth 2D keypoints: a training-time augmentation.

Real 2D input comes from a keypoint detector, not from projecting mocap. `DetectorNoise` turns
clean keypoints (..., T, J, 2) into what a detector would plausibly have returned, in four
steps, each seeded by the caller's `numpy.random.Generator`:

1. **Jitter.** Every joint is displaced by Gaussian noise whose root-mean-square 2D distance is
   `level * sigma_j * s`, with `s` the person's size in the image (the square root of the area
   of the keypoints' bounding box, per frame) and `sigma_j` the per-keypoint standard deviation
   relative to object scale that COCO measured from redundant human annotations
   (cocodataset.org "Keypoint Evaluation", the OKS constants `sigmas = [.26, .25, .25, .35,
   .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89] / 10` for nose, eyes,
   ears, shoulders, elbows, wrists, hips, knees, ankles). Joints other layouts add are mapped
   by name (`joint_sigma`): pelvis/spine/thorax are averages of two COCO points (sigma / sqrt 2),
   neck/nose and head use the head points. The noise is correlated in time: an AR(1) process
   per joint and coordinate, `e_t = rho e_{t-1} + sqrt(1 - rho^2) n_t` with
   `rho = exp(-1 / correlation_frames)`, stationary from the first frame.
2. **Left/right swaps** (Ronchi & Perona, ICCV 2017, "inversion" errors): a left joint and its
   right partner exchange positions for a burst of `burst_frames` frames.
3. **Gross errors** (their "miss" errors): a joint lands `gross_distance` (uniform range, in
   units of `s`) away in a random direction for a burst.
4. **Low-confidence joints**: a burst of frames of one joint is marked low-confidence and
   filled as `vp3dkeras.infer` fills a detector's low-score joints (`fill_missing`, the
   batched form of `keypoint_formats.fill_low_confidence`: linear interpolation in time between
   the joint's confident frames, held at the ends).

Rates are fractions of joint-frames (of left/right pair-frames for swaps) affected in the
stationary regime: a burst starts at a frame with probability `q = 1 - (1 - rate) ** (1 /
burst_frames)`, which makes the expected affected fraction exactly `rate`. `level` scales the
jitter and every rate (0 turns the model off; 1 is the default calibration).

Calibration and its limits: the jitter at level 1 equals COCO's *human annotator* spread;
detectors of the CPN/HRNet generation are at or above it. The default swap (1 %), gross
error (1 %) and low-confidence (3 %) rates and the correlation time (3 frames) are
assumptions of the right order for such detectors on unoccluded single people, following
Ronchi & Perona's taxonomy; they were not fitted to a detector's output on our data.

Keypoints may be in pixels or in the normalised coordinates of `PoseCodec.normalize_2d`
(both axes scaled alike), since every displacement is relative to the person's size.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

from posecontract.layouts import JointLayout

#: COCO's per-keypoint standard deviations relative to object scale (cocodataset.org,
#: keypoint evaluation; `sigmas` of pycocotools' COCOeval), by COCO keypoint name.
COCO_SIGMAS: Dict[str, float] = {
    "nose": 0.026, "eye": 0.025, "ear": 0.035, "shoulder": 0.079, "elbow": 0.072,
    "wrist": 0.062, "hip": 0.107, "knee": 0.087, "ankle": 0.089,
}

# Joints of other layouts: (COCO keypoint, factor). A joint that is the midpoint of two COCO
# points with independent errors has sigma / sqrt(2).
_DERIVED = {
    "pelvis": ("hip", 2 ** -0.5), "hip": ("hip", 2 ** -0.5), "spine": ("hip", 0.5),
    "thorax": ("shoulder", 2 ** -0.5), "neck": ("shoulder", 2 ** -0.5),
    "neck_nose": ("nose", 1.0), "head": ("ear", 1.0), "head_top": ("ear", 1.0),
    "toe": ("ankle", 1.0), "big_toe": ("ankle", 1.0), "small_toe": ("ankle", 1.0),
    "heel": ("ankle", 1.0),
}


def joint_sigma(name: str) -> float:
    """Jitter standard deviation of joint `name` relative to the person's size (unitless).

    "l_knee" and "r_knee" use COCO's "knee"; pelvis-like and thorax-like joints the midpoint
    rule above. Raises ValueError for a name with no COCO counterpart.
    """
    base = name[2:] if name[:2] in ("l_", "r_") else name
    if base in _DERIVED and not (name[:2] in ("l_", "r_") and base in COCO_SIGMAS):
        coco, factor = _DERIVED[base]
        return COCO_SIGMAS[coco] * factor
    if base in COCO_SIGMAS:
        return COCO_SIGMAS[base]
    raise ValueError(f"detector noise: no COCO error statistic for joint {name!r}")


@dataclasses.dataclass(frozen=True)
class NoiseLevels:
    """Settings of `DetectorNoise` (see the module docstring for their sources).

    level:              scales the jitter and every rate; 0 turns everything off.
    correlation_frames: AR(1) time constant of the jitter, frames (0: white noise).
    swap_rate:          fraction of left/right pair-frames swapped.
    gross_rate:         fraction of joint-frames with a gross error.
    gross_distance:     (min, max) size of a gross error, in units of the person's size.
    miss_rate:          fraction of joint-frames that are low-confidence and interpolated.
    burst_frames:       length of a swap, gross-error or low-confidence burst, frames.
    """

    level: float = 1.0
    correlation_frames: float = 3.0
    swap_rate: float = 0.01
    gross_rate: float = 0.01
    gross_distance: Tuple[float, float] = (0.2, 0.5)
    miss_rate: float = 0.03
    burst_frames: int = 3

    def __post_init__(self):
        if self.level < 0 or self.correlation_frames < 0 or self.burst_frames < 1:
            raise ValueError("detector noise: level and correlation_frames must be >= 0 and "
                             "burst_frames >= 1")
        for name in ("swap_rate", "gross_rate", "miss_rate"):
            if not 0 <= getattr(self, name) * self.level < 1:
                raise ValueError(f"detector noise: {name} x level must be in [0, 1)")


class DetectorNoise:
    """Applies the detector error model of the module docstring to keypoints of one layout.

    layout: the keypoints' joint layout (names give the jitter sigmas and left/right pairs).
    levels: `NoiseLevels`.
    """

    def __init__(self, layout: JointLayout, levels: NoiseLevels = NoiseLevels()):
        self.layout = layout
        self.levels = levels
        self.sigmas = np.array([joint_sigma(n) for n in layout.names], np.float64)
        self.pairs = np.array(list(zip(layout.left_joints, layout.right_joints)),
                              np.int64).reshape(-1, 2)

    def _bursts(self, rng, shape, rate: float) -> np.ndarray:
        """(B, T, K) bool: frames covered by bursts, a stationary fraction `rate` of them."""
        batch, frames, count = shape
        length = self.levels.burst_frames
        if rate <= 0:
            return np.zeros(shape, bool)
        onset = 1.0 - (1.0 - rate) ** (1.0 / length)
        # Onsets from length - 1 frames before the start, so the first frames are covered as
        # often as any other.
        starts = rng.random((batch, frames + length - 1, count)) < onset
        counts = np.cumsum(starts, axis=1)
        counts = np.concatenate([np.zeros((batch, 1, count), counts.dtype), counts], axis=1)
        return (counts[:, length:] - counts[:, :-length]) > 0

    def apply(self, keypoints, rng: np.random.Generator,
              report: Optional[dict] = None) -> np.ndarray:
        """Noisy copy of `keypoints` (..., T, J, 2) float; the input is not changed.

        report: if a dict is given, it receives the boolean masks of what happened:
        "swap" (..., T, pairs), "gross" and "miss" (..., T, J).
        """
        keypoints = np.asarray(keypoints, np.float32)
        if keypoints.ndim < 3 or keypoints.shape[-2:] != (self.layout.num_joints, 2):
            raise ValueError(f"detector noise: keypoints must be (..., T, "
                             f"{self.layout.num_joints}, 2), got {keypoints.shape}")
        lead = keypoints.shape[:-3]
        points = keypoints.reshape(-1, *keypoints.shape[-3:]).astype(np.float64)
        batch, frames, joints, _ = points.shape
        levels, level = self.levels, self.levels.level
        # Person size per frame: sqrt of the keypoints' bounding-box area.
        extent = points.max(axis=2) - points.min(axis=2)
        size = np.sqrt(np.maximum(extent[..., 0] * extent[..., 1], 0.0))[..., None]  # (B,T,1)

        out = points.copy()
        if level > 0:
            white = rng.standard_normal((batch, frames, joints, 2))
            if levels.correlation_frames > 0:
                rho = np.exp(-1.0 / levels.correlation_frames)
                gain = np.sqrt(1.0 - rho ** 2)
                for t in range(1, frames):
                    white[:, t] = rho * white[:, t - 1] + gain * white[:, t]
            # Per-coordinate std sigma / sqrt(2): the RMS 2D distance is sigma * s.
            scale = level * self.sigmas[None, None, :, None] / np.sqrt(2.0)
            out += white * scale * size[..., None]

        swap = self._bursts(rng, (batch, frames, len(self.pairs)), levels.swap_rate * level)
        for k, (left, right) in enumerate(self.pairs):
            rows = swap[..., k]
            out[rows, left], out[rows, right] = out[rows, right].copy(), out[rows, left].copy()

        gross = self._bursts(rng, (batch, frames, joints), levels.gross_rate * level)
        if gross.any():
            count = int(gross.sum())
            angle = rng.uniform(0.0, 2 * np.pi, count)
            low, high = levels.gross_distance
            distance = rng.uniform(low, high, count) * np.broadcast_to(
                size, gross.shape)[gross]
            out[gross] += np.stack([np.cos(angle), np.sin(angle)], -1) * distance[:, None]

        miss = self._bursts(rng, (batch, frames, joints), levels.miss_rate * level)
        if miss.any():
            out = fill_missing(out, miss)

        if report is not None:
            report["swap"] = swap.reshape(*lead, frames, len(self.pairs))
            report["gross"] = gross.reshape(*lead, frames, joints)
            report["miss"] = miss.reshape(*lead, frames, joints)
        return out.astype(np.float32).reshape(keypoints.shape)


def fill_missing(points: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """`keypoint_formats.fill_low_confidence` for a batch: each missing joint-frame is
    interpolated linearly in time between the joint's nearest present frames, held at the
    ends; a joint missing in every frame is left as it is.

    points: (B, T, J, 2); missing: (B, T, J) bool. Returns a new (B, T, J, 2) array.
    """
    frames = points.shape[1]
    index = np.arange(frames)[None, :, None]
    present = ~missing
    before = np.maximum.accumulate(np.where(present, index, -1), axis=1)
    after = np.minimum.accumulate(np.where(present, index, frames)[:, ::-1], axis=1)[:, ::-1]
    has_before, has_after = before >= 0, after < frames
    low = np.take_along_axis(points, np.clip(before, 0, frames - 1)[..., None], axis=1)
    high = np.take_along_axis(points, np.clip(after, 0, frames - 1)[..., None], axis=1)
    span = np.maximum(after - before, 1)
    weight = np.where(has_before & has_after, (index - before) / span, 0.0)[..., None]
    filled = np.where(has_before[..., None], low + weight * (high - low), high)
    filled = np.where((has_before | has_after)[..., None], filled, points)
    return np.where(missing[..., None], filled, points)


def noise_from_config(layout: JointLayout, setting: str, level: float) -> Optional[DetectorNoise]:
    """The `--noise-2d off|on` / `--noise-2d-level` options as a `DetectorNoise` (or None)."""
    if setting not in ("off", "on"):
        raise ValueError(f"--noise-2d must be off or on, got {setting!r}")
    if setting == "off" or level == 0:
        return None
    return DetectorNoise(layout, NoiseLevels(level=float(level)))
