"""Checks of a 2D keypoint track at the edge, before it reaches a model.

A track read from a detector's file (`vp3dkeras.data.keypoint_formats`) is refused with one
line naming the file and the problem, instead of being lifted into NaN or nonsense poses:

- keypoints must be (T >= 1, J, 2) with the layout's J; NaN or null coordinates (a missed
  detection) are refused, unless scores and a minimum score are given: then they count as
  undetected (score 0) and are interpolated in time like low-score points;
- the image size must be finite and positive (and below `MAX_IMAGE_SIDE`);
- keypoints must lie near the image: more than `MAX_OUTSIDE` image sizes away means wrong
  units or a wrong image size; a track inside a 2×2-pixel square of a large image is taken
  for normalised [0, 1] coordinates;
- scores, when given, must be (T, J) and finite.

Raises `vp3dkeras.data.keypoint_formats.TrackError` (a ValueError; the command lines print
it as one line). `python -m vp3dkeras.infer` calls it after `read_track`, which has already
interpolated missed detections (NaN) within `--max-gap`.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from vp3dkeras.data.keypoint_formats import TrackError

#: Largest image side accepted, pixels (a 16K frame is 15360 wide).
MAX_IMAGE_SIDE = 100_000
#: Keypoints may lie outside the image (a limb out of frame) by this many image sizes.
MAX_OUTSIDE = 2.0


def check_track(source, keypoints, scores, width, height, num_joints: Optional[int] = None,
                min_score: Optional[float] = None
                ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Validates one person's track; returns (keypoints (T, J, 2) float32 pixels, scores
    (T, J) float32 or None), with NaN points marked as undetected (score 0, position 0) when
    `min_score` and scores allow them to be interpolated.

    source: the file (or name) the track came from, for the messages. width, height: image
    size in pixels. num_joints: the J the layout needs (None: any).
    """
    keypoints = np.array(keypoints, dtype=np.float32)
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise TrackError(f"{source}: keypoints must be (T, J, 2), got {keypoints.shape}")
    if len(keypoints) == 0:
        raise TrackError(f"{source}: the track has no frames")
    if num_joints is not None and keypoints.shape[1] != num_joints:
        raise TrackError(f"{source}: {keypoints.shape[1]} joints per frame, the layout has "
                         f"{num_joints}")
    for name, value in (("width", width), ("height", height)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TrackError(f"{source}: image {name} {value!r} is not a number") from None
        if not (np.isfinite(value) and 0 < value <= MAX_IMAGE_SIDE):
            raise TrackError(f"{source}: image {name} must be a positive number of pixels "
                             f"(at most {MAX_IMAGE_SIDE}), got {value:g}")
    width, height = float(width), float(height)
    if scores is not None:
        scores = np.array(scores, dtype=np.float32)
        if scores.shape != keypoints.shape[:2]:
            raise TrackError(f"{source}: scores must be (T, J) = {keypoints.shape[:2]}, got "
                             f"{scores.shape}")
        if not np.isfinite(scores).all():
            raise TrackError(f"{source}: scores hold NaN or infinite values")
    missing = ~np.isfinite(keypoints).all(axis=-1)
    if missing.any():
        frame, joint = (int(i) for i in np.argwhere(missing)[0])
        if scores is None or min_score is None:
            raise TrackError(f"{source}: {int(missing.sum())} keypoints are NaN, null or "
                             f"infinite (first: frame {frame}, joint {joint}); give detector "
                             f"scores and --min-score to interpolate them, or drop them")
        if missing.all(axis=0).any():
            joint = int(np.flatnonzero(missing.all(axis=0))[0])
            raise TrackError(f"{source}: joint {joint} is NaN or null in every frame")
        scores = np.where(missing, 0.0, scores).astype(np.float32)
        keypoints = np.where(missing[..., None], 0.0, keypoints).astype(np.float32)
        if min_score <= 0:
            raise TrackError(f"{source}: NaN keypoints need --min-score above 0 to be "
                             f"interpolated")
    present = keypoints[~missing]
    size = np.array([width, height], np.float32)
    low, high = -MAX_OUTSIDE * size, (1 + MAX_OUTSIDE) * size
    outside = (present < low) | (present > high)
    if outside.any():
        worst = present[outside.any(axis=-1)][0]
        raise TrackError(f"{source}: keypoints lie far outside the {width:g}x{height:g} image "
                         f"(e.g. at {worst.tolist()}): wrong --width/--height or not pixels?")
    if max(width, height) >= 64 and np.ptp(present, axis=0).max() <= 2.0 and \
            np.abs(present).max() <= 2.0:
        raise TrackError(f"{source}: every keypoint lies within 2 pixels of the origin: "
                         f"normalised coordinates? multiply them by the image size")
    return keypoints, scores
