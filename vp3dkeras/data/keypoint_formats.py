"""2D keypoint tracks from detectors: file reading and COCO-17 -> Human3.6M-17 conversion.

The models lift the 17-joint Human3.6M layout (`posecontract.layouts.H36M_17`). Most 2D
detectors output the 17 COCO keypoints instead, which share the limbs (shoulders, elbows,
wrists, hips, knees, ankles) but have face points instead of a spine and head. The missing
joints are approximated:

- hip (pelvis) = midpoint of the two hips; thorax = midpoint of the two shoulders;
- spine = midpoint of hip and thorax (Human3.6M's spine joint sits mid-torso);
- neck_nose = the nose;
- head (Human3.6M's top-of-head joint) = c + 0.5 (c - thorax), c = mean of the eyes and
  ears: the crown lies above the ears by about half the thorax-to-ear distance.

These are geometric guesses, not the definitions of the motion-capture markers, so expect
somewhat larger errors on the head and spine than with Human3.6M-layout input.
"""
from __future__ import annotations

import json
import pathlib
from typing import Dict, Optional, Tuple

import numpy as np

from posecontract.layouts import H36M_17

COCO_17 = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder",
           "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee",
           "l_ankle", "r_ankle")
_COCO = {name: i for i, name in enumerate(COCO_17)}
_SHARED = ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "l_shoulder",
           "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")
HEAD_ABOVE_EARS = 0.5


def coco_to_h36m(keypoints, scores=None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """COCO-17 keypoints (..., 17, 2) pixels -> Human3.6M-17 (..., 17, 2), as documented in
    the module docstring. scores (..., 17) or None; a derived joint gets the lowest score of
    the joints it is built from. Returns (keypoints, scores)."""
    keypoints = np.asarray(keypoints, np.float32)
    if keypoints.shape[-2] != 17:
        raise ValueError(f"COCO-17 keypoints must be (..., 17, 2), got {keypoints.shape}")
    out = np.empty_like(keypoints)
    h36m = H36M_17.index
    src = {name: keypoints[..., _COCO[name], :] for name in COCO_17}
    for name in _SHARED:
        out[..., h36m(name), :] = src[name]
    hip = (src["l_hip"] + src["r_hip"]) / 2
    thorax = (src["l_shoulder"] + src["r_shoulder"]) / 2
    face = (src["l_eye"] + src["r_eye"] + src["l_ear"] + src["r_ear"]) / 4
    out[..., h36m("hip"), :] = hip
    out[..., h36m("thorax"), :] = thorax
    out[..., h36m("spine"), :] = (hip + thorax) / 2
    out[..., h36m("neck_nose"), :] = src["nose"]
    out[..., h36m("head"), :] = face + HEAD_ABOVE_EARS * (face - thorax)
    if scores is None:
        return out, None
    scores = np.asarray(scores, np.float32)
    s = {name: scores[..., _COCO[name]] for name in COCO_17}
    out_scores = np.empty_like(scores)
    for name in _SHARED:
        out_scores[..., h36m(name)] = s[name]
    hips = np.minimum(s["l_hip"], s["r_hip"])
    shoulders = np.minimum(s["l_shoulder"], s["r_shoulder"])
    out_scores[..., h36m("hip")] = hips
    out_scores[..., h36m("thorax")] = shoulders
    out_scores[..., h36m("spine")] = np.minimum(hips, shoulders)
    out_scores[..., h36m("neck_nose")] = s["nose"]
    out_scores[..., h36m("head")] = np.minimum.reduce(
        [s["l_eye"], s["r_eye"], s["l_ear"], s["r_ear"], shoulders])
    return out, out_scores


def fill_low_confidence(keypoints, scores, min_score: float) -> np.ndarray:
    """Replaces each joint's low-score frames by linear interpolation in time between its
    good frames (held constant before the first / after the last). A joint without any good
    frame is left as it is. keypoints (T, J, 2), scores (T, J)."""
    keypoints = np.array(keypoints, np.float32)
    frames = np.arange(len(keypoints))
    for joint in range(keypoints.shape[1]):
        good = scores[:, joint] >= min_score
        if good.all() or not good.any():
            continue
        for axis in range(2):
            keypoints[~good, joint, axis] = np.interp(
                frames[~good], frames[good], keypoints[good, joint, axis])
    return keypoints


def _split_scores(array: np.ndarray):
    array = np.asarray(array, np.float32)
    if array.ndim != 3 or array.shape[-1] not in (2, 3):
        raise ValueError(f"keypoints must be (T, J, 2) or (T, J, 3 with scores), got "
                         f"{array.shape}")
    return array[..., :2], (array[..., 2] if array.shape[-1] == 3 else None)


def _frames_from_detections(detections: list):
    """COCO-results-style list: one dict per detection with "keypoints" (flat x, y, score
    triples or nested), a frame number ("frame" or "image_id", default: list order) and an
    optional "score"; the best-scoring person of each frame is kept."""
    best: Dict[int, dict] = {}
    for order, detection in enumerate(detections):
        frame = int(detection.get("frame", detection.get("image_id", order)))
        if frame not in best or detection.get("score", 0) > best[frame].get("score", 0):
            best[frame] = detection
    frames = sorted(best)
    if frames != list(range(frames[0], frames[0] + len(frames))):
        raise ValueError("detections skip frames: every frame needs a detection")
    rows = []
    for frame in frames:
        points = np.asarray(best[frame]["keypoints"], np.float32)
        if points.ndim == 1:
            points = points.reshape(-1, 3 if points.size % 3 == 0 else 2)
        rows.append(points)
    return np.stack(rows)


def load_keypoints(path) -> Tuple[np.ndarray, Optional[np.ndarray], dict]:
    """A 2D keypoint track from .npz or .json.

    npz: "keypoints" (T, J, 2 or 3), optional "scores" (T, J), "width", "height", "layout".
    json: {"keypoints": [T][J][2 or 3], optional "width", "height", "layout"}, or a list of
    per-frame detections (see `_frames_from_detections`).
    Returns (keypoints (T, J, 2) pixels, scores (T, J) or None, info with whatever of
    "width", "height", "layout" the file gives).
    """
    path = pathlib.Path(path)
    info = {}
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            keypoints, scores = _split_scores(data["keypoints"])
            if "scores" in data:
                scores = np.asarray(data["scores"], np.float32)
            for key in ("width", "height", "layout"):
                if key in data:
                    info[key] = data[key].item()
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list):
            keypoints, scores = _split_scores(_frames_from_detections(data))
        else:
            keypoints, scores = _split_scores(data["keypoints"])
            info = {k: data[k] for k in ("width", "height", "layout") if k in data}
    return keypoints, scores, info
