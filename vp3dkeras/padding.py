"""Edge padding along time so a temporal model gives one output frame per input frame.

NumPy only (import-light): the input pipeline, the evaluation code and the export share it.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def pad_replicate(keypoints, left: int, right: int) -> np.ndarray:
    """Repeats the first frame `left` times and the last frame `right` times.

    keypoints: (..., T, J, C) with time on axis -3 and T >= 1, any units.
    Returns (..., left + T + right, J, C), same dtype.
    """
    keypoints = np.asarray(keypoints)
    if keypoints.ndim < 3 or keypoints.shape[-3] < 1:
        raise ValueError(f"keypoints must be shaped (..., T >= 1, J, C), got {keypoints.shape}")
    if left < 0 or right < 0:
        raise ValueError(f"padding must be non-negative, got left={left}, right={right}")
    widths = [(0, 0)] * keypoints.ndim
    widths[-3] = (left, right)
    return np.pad(keypoints, widths, mode="edge")


def model_padding(model) -> Tuple[int, int]:
    """(left, right) frames a model needs around each output frame.

    Uses `model.total_pad()` when the model has it; otherwise derives it from
    `receptive_field()` and a `causal` attribute: ((rf - 1) / 2, (rf - 1) / 2) when symmetric,
    (rf - 1, 0) when causal. A model with neither keeps the length and needs (0, 0).
    """
    if hasattr(model, "total_pad"):
        left, right = model.total_pad()
        return int(left), int(right)
    if not hasattr(model, "receptive_field"):
        return 0, 0
    context = int(model.receptive_field()) - 1
    if getattr(model, "causal", False):
        return context, 0
    if context % 2:
        raise ValueError(f"a symmetric model needs an odd receptive field, got {context + 1}")
    return context // 2, context // 2
