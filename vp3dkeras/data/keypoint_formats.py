"""2D keypoint tracks from real detectors: one reader per file format, auto-detected.

`read_track(path)` returns a `Track`: one person's keypoints (T, J, 2) in pixels, their
scores, the keypoint convention (`posecontract.layouts` name), the image size when the file
carries it, and the frames that were filled in. Formats (`FORMATS` names them):

- ``coco-results``: a COCO keypoint-results list (cocodataset.org/#format-results), one dict
  per detection with ``image_id`` (frame number), ``keypoints`` (flat x, y, v triples) and
  ``score``. AlphaPose writes the same list with ``image_id`` an image file name ("12.jpg",
  "frame_000012.png"): the frame number is the last run of digits of the file's stem.
- ``openpose``: a folder of OpenPose per-frame files ``<video>_<12-digit frame>_keypoints.json``
  (``--write_json``), ``people[i].pose_keypoints_2d`` flat x, y, c; BODY_25 (25 points) and
  COCO-18 (18 points) are mapped to COCO-17 (the neck, mid-hip and feet are dropped).
  A keypoint OpenPose did not find is written (0, 0, 0).
- ``mmpose``: MMPose's `MMPoseInferencer` predictions for a video (``pred_out_dir``): a list
  of ``{"frame_id", "instances": [{"keypoints": [[x, y]], "keypoint_scores": [s], "bbox",
  "bbox_score"}]}``; also the inferencer's raw results ``[{"predictions": [[instance]]}]``,
  and a folder of its per-image files (``<image>.json``: a list of instances; the frame
  number is the last digits of the name).
- ``coco-annotations``: a COCO keypoint annotation file (``{"images": [{"id", "file_name",
  "width", "height"}], "annotations": [{"image_id", "keypoints", "num_keypoints"}]}``, as
  annotation tools export it); frames are the images in file-name order, the image size
  comes from the file.
- ``detectron-vp3d``: the per-video npz of VideoPose3D's ``infer_video_d2.py`` (Detectron2):
  ``boxes[frame][1]`` (N, 5) person boxes with score, ``keypoints[frame][1]`` (N, 4, 17) rows
  x, y, logit, probability, ``metadata`` {"w", "h"}; read with the restricted unpickler.
- ``vp3d-custom``: VideoPose3D's in-the-wild ``data_2d_custom_<name>.npz``:
  ``positions_2d[video]["custom"][0]`` (T, 17, 2) COCO order, ``metadata["video_metadata"]
  [video]`` = {"w", "h"}. Its pickled dicts are read with the restricted unpickler.
- ``npz`` / ``json``: our own track files: ``keypoints`` (T, J, 2 or 3), optional ``scores``
  (T, J), ``width``, ``height``, ``layout``.

Missing data is never passed on silently. A frame without any detection inside the track
(COCO-results frames 12-14 absent), or keypoints that are NaN, infinite or marked not found,
are filled by linear interpolation in time per joint and coordinate (held constant before the
first and after the last good frame), as VideoPose3D's in-the-wild preparation fills frames
without a detection; their scores are set to 0 and `Track.filled_frames` lists them. With
``max_gap`` a longer run of filled frames is refused instead, naming the frames. Refusals
are `TrackError` (a ValueError) whose one-line message names the file and the problem,
e.g. "no detections in FILE".

`coco_to_h36m` approximates the Human3.6M-17 joints from COCO-17 for models trained on
Human3.6M-layout input:

- hip (pelvis) = midpoint of the two hips; thorax = midpoint of the two shoulders;
- spine = midpoint of hip and thorax (Human3.6M's spine joint sits mid-torso);
- neck_nose = the nose;
- head (Human3.6M's top-of-head joint) = c + 0.5 (c - thorax), c = mean of the eyes and
  ears: the crown lies above the ears by about half the thorax-to-ear distance.

These are geometric guesses, not the definitions of the motion-capture markers, so expect
somewhat larger errors on the head and spine than with a model that takes COCO-17 input.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import pickle
import re
import zipfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from posecontract.layouts import COCO_17 as COCO_17_LAYOUT, H36M_17, LAYOUTS

COCO_17 = COCO_17_LAYOUT.names
_COCO = {name: i for i, name in enumerate(COCO_17)}
_SHARED = ("r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "l_shoulder",
           "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")
HEAD_ABOVE_EARS = 0.5
#: A track is refused when it spans more than this many frames per detected frame.
MIN_COVERAGE_RATIO = 10

#: OpenPose output index of each COCO-17 keypoint (OpenPose doc/02_output.md, "Pose Output
#: Format"): BODY_25 0 Nose, 1 Neck, 2-4 right arm, 5-7 left arm, 8 MidHip, 9-11 right leg,
#: 12-14 left leg, 15/16 right/left eye, 17/18 right/left ear, 19-24 feet; COCO-18 the same
#: without MidHip (8-10 right leg, 11-13 left leg, 14/15 eyes, 16/17 ears).
OPENPOSE_TO_COCO17 = {
    25: (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11),
    18: (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10),
}


class TrackError(ValueError):
    """A track file that cannot be read as asked; the message is one line naming the file."""


@dataclasses.dataclass
class Track:
    """One person's 2D keypoint track.

    keypoints: (T, J, 2) float32 pixels (x right, y down), every value finite.
    scores: (T, J) float32 detector confidences, 0 where filled in; None if the file has none.
    layout: keypoint convention name (`posecontract.layouts.LAYOUTS`), e.g. "coco17".
    image_size: (width, height) pixels when the file carries it, else None.
    frames: (T,) int frame numbers of the rows (the file's own numbering).
    filled_frames: frame numbers with at least one keypoint filled by interpolation.
    source: the format that was read (a `FORMATS` name); path: the file or folder.
    """

    keypoints: np.ndarray
    scores: Optional[np.ndarray]
    layout: str
    image_size: Optional[Tuple[float, float]]
    frames: np.ndarray
    filled_frames: Tuple[int, ...]
    source: str
    path: str

    def report(self) -> str:
        """One line saying what was read and which frames were filled in."""
        size = "image size unknown" if self.image_size is None else \
            f"{self.image_size[0]:g}x{self.image_size[1]:g} px"
        text = (f"{self.path}: {self.source}, {len(self.keypoints)} frames "
                f"({self.frames[0]}-{self.frames[-1]}), {self.layout}, {size}")
        if self.filled_frames:
            text += (f"; interpolated {len(self.filled_frames)} frames: "
                     f"{format_frames(self.filled_frames)}")
        return text


def format_frames(frames: Sequence[int]) -> str:
    """[3, 12, 13, 14] -> "3, 12-14"."""
    return ", ".join(str(a) if a == b else f"{a}-{b}"
                     for a, b in _runs(sorted(int(f) for f in frames)))


# -- filling ---------------------------------------------------------------------------------
def fill_missing(keypoints, scores, frames, path, max_gap: Optional[int] = None):
    """Interpolates non-finite keypoints per joint over time (see module docstring).

    keypoints (T, J, 2) with NaN where missing; scores (T, J) or None; frames (T,) numbers.
    Returns (keypoints, scores, filled frame numbers). Raises TrackError when a joint is
    never seen, or a run of filled frames is longer than max_gap.
    """
    keypoints = np.array(keypoints, np.float32)
    missing = ~np.isfinite(keypoints).all(axis=-1)
    if scores is not None:
        scores = np.array(scores, np.float32)
        missing |= ~np.isfinite(scores)
    if not missing.any():
        return keypoints, scores, ()
    seen = int((~missing.all(axis=1)).sum())
    if len(keypoints) > MIN_COVERAGE_RATIO * seen + 2:
        raise TrackError(f"{path}: only {seen} of {len(keypoints)} frames have keypoints; "
                         f"too few to interpolate a track")
    never = np.flatnonzero(missing.all(axis=0))
    if len(never):
        raise TrackError(f"{path}: keypoints {never.tolist()} are missing in every frame")
    filled = np.flatnonzero(missing.any(axis=1))
    if max_gap is not None:
        gaps = _runs(filled)
        long = [(a, b) for a, b in gaps if b - a + 1 > max_gap]
        if long:
            frames_text = format_frames([int(frames[i]) for a, b in long
                                         for i in range(a, b + 1)])
            raise TrackError(f"{path}: frames {frames_text} have no usable keypoints "
                             f"(longer than --max-gap {max_gap})")
    index = np.arange(len(keypoints))
    for joint in np.flatnonzero(missing.any(axis=0)):
        good = ~missing[:, joint]
        for axis in range(2):
            keypoints[~good, joint, axis] = np.interp(index[~good], index[good],
                                                      keypoints[good, joint, axis])
    if scores is not None:
        scores[missing] = 0.0
    return keypoints, scores, tuple(int(frames[i]) for i in filled)


def _runs(indices) -> List[Tuple[int, int]]:
    """Sorted integers -> (first, last) of each run of consecutive ones."""
    runs: List[List[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = int(i)
        else:
            runs.append([int(i), int(i)])
    return [(a, b) for a, b in runs]


def _points(flat, path, what) -> np.ndarray:
    """Flat [x, y, s, ...] or nested [[x, y(, s)], ...] -> (J, 3), NaN score if absent."""
    try:
        points = np.asarray(flat, np.float64)
    except (TypeError, ValueError):
        raise TrackError(f"{path}: {what}: keypoints are not numbers") from None
    if points.ndim == 1:
        if points.size % 3:
            raise TrackError(f"{path}: {what}: {points.size} keypoint values are not x, y, "
                             f"score triples")
        points = points.reshape(-1, 3)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise TrackError(f"{path}: {what}: keypoints shaped {points.shape}, expected "
                         f"(J, 2) or (J, 3)")
    if points.shape[1] == 2:
        points = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    return points


def _not_found_to_nan(points: np.ndarray) -> np.ndarray:
    """Detectors write a keypoint they did not find as (0, 0) with score 0."""
    points = points.copy()
    lost = (points[..., 0] == 0) & (points[..., 1] == 0) & (points[..., 2] <= 0)
    points[lost, :2] = np.nan
    return points


def _assemble(per_frame: Dict[int, np.ndarray], path, source, layout, image_size,
              max_gap) -> Track:
    """Frame number -> (J, 3) points of the chosen person; absent frames inside the range
    become NaN and are filled."""
    if not any(points is not None for points in per_frame.values()):
        raise TrackError(f"no detections in {path}")
    counts = {len(points) for points in per_frame.values() if points is not None}
    if len(counts) != 1:
        raise TrackError(f"{path}: detections have different keypoint counts {sorted(counts)}")
    joints = counts.pop()
    first, last = min(per_frame), max(per_frame)
    detected = sum(points is not None for points in per_frame.values())
    if last - first + 1 > MIN_COVERAGE_RATIO * detected + 2:
        raise TrackError(f"{path}: only {detected} of frames {first}-{last} have a detection; "
                         f"too few to interpolate a track")
    frames = np.arange(first, last + 1)
    data = np.full((len(frames), joints, 3), np.nan)
    for frame, points in per_frame.items():
        if points is not None:
            data[frame - first] = points
    data = _not_found_to_nan(data)
    layout = layout or _layout_for_count(joints, path)
    keypoints, scores, filled = fill_missing(data[..., :2], data[..., 2], frames, path,
                                             max_gap)
    return Track(keypoints, scores, layout, image_size, frames, filled, source, str(path))


def _layout_for_count(joints: int, path) -> str:
    matches = [name for name, layout in LAYOUTS.items() if layout.num_joints == joints]
    if joints == 17:
        return COCO_17_LAYOUT.name  # what 17-keypoint detectors output
    if len(matches) == 1:
        return matches[0]
    raise TrackError(f"{path}: {joints} keypoints per person match no known convention "
                     f"({', '.join(f'{n}: {l.num_joints}' for n, l in LAYOUTS.items())})")


def _best_per_frame(candidates: List[Tuple[int, float, np.ndarray]]) -> Dict[int, np.ndarray]:
    """(frame, score, points) -> the best-scoring person per frame (one-person tracks)."""
    best: Dict[int, Tuple[float, np.ndarray]] = {}
    for frame, score, points in candidates:
        if frame not in best or score > best[frame][0]:
            best[frame] = (score, points)
    return {frame: points for frame, (_, points) in best.items()}


def _person_score(points: np.ndarray, score) -> float:
    if score is not None:
        return float(score)
    finite = points[np.isfinite(points[:, 2]), 2]
    return float(finite.mean()) if len(finite) else 0.0


# -- readers ---------------------------------------------------------------------------------
def frame_number(image_id, path) -> int:
    """COCO's integer image_id, or the last digits of an image file name ("0.jpg" -> 0,
    "frame_000012.png" -> 12)."""
    if isinstance(image_id, (int, np.integer)) and not isinstance(image_id, bool):
        return int(image_id)
    if isinstance(image_id, float) and image_id.is_integer():
        return int(image_id)
    if isinstance(image_id, str):
        digits = re.findall(r"\d+", pathlib.PurePath(image_id).stem)
        if digits:
            return int(digits[-1])
    raise TrackError(f"{path}: image_id {image_id!r} is neither a frame number nor an image "
                     f"file name with a frame number")


def read_coco_results(path, data: list, max_gap=None) -> Track:
    """COCO keypoint results / AlphaPose results (module docstring)."""
    candidates = []
    for i, detection in enumerate(data):
        if not isinstance(detection, dict) or "keypoints" not in detection:
            raise TrackError(f"{path}: detection {i} has no 'keypoints'")
        frame = frame_number(detection.get("image_id", detection.get("frame", i)), path)
        points = _points(detection["keypoints"], path, f"detection {i}")
        candidates.append((frame, _person_score(points, detection.get("score")), points))
    source = "alphapose" if data and isinstance(data[0].get("image_id"), str) \
        else "coco-results"
    return _assemble(_best_per_frame(candidates), path, source, None, None, max_gap)


def read_coco_annotations(path, data: dict, max_gap=None) -> Track:
    """COCO keypoint annotations (module docstring): one frame per image, file-name order."""
    images = sorted(data.get("images", []), key=lambda image: str(image.get("file_name", "")))
    frame_of = {image["id"]: frame for frame, image in enumerate(images)}
    candidates = []
    for i, annotation in enumerate(data.get("annotations", [])):
        if annotation.get("image_id") not in frame_of:
            raise TrackError(f"{path}: annotation {i} names image_id "
                             f"{annotation.get('image_id')!r}, which is not in 'images'")
        points = _points(annotation["keypoints"], path, f"annotation {i}")
        points[points[:, 2] == 0, 2] = 0.0  # v = 0: not labelled
        candidates.append((frame_of[annotation["image_id"]],
                           float(annotation.get("score", annotation.get("num_keypoints", 0))),
                           points))
    sizes = {(image.get("width"), image.get("height")) for image in images}
    image_size = None
    if len(sizes) == 1 and None not in next(iter(sizes)):
        image_size = tuple(float(v) for v in sizes.pop())
    return _assemble(_best_per_frame(candidates), path, "coco-annotations", None,
                     image_size, max_gap)


def read_detectron_vp3d(path, max_gap=None) -> Track:
    """VideoPose3D's infer_video_d2.py npz (module docstring)."""
    from vp3dkeras.data.vp3d_format import restricted_load_npz

    data = restricted_load_npz(path)
    boxes, keypoints = data["boxes"], data["keypoints"]
    metadata = data.get("metadata") or {}
    candidates = []
    for frame, (frame_boxes, frame_points) in enumerate(zip(boxes, keypoints)):
        people_boxes = np.asarray(frame_boxes[1], np.float64)
        people = np.asarray(frame_points[1], np.float64)
        if people_boxes.size == 0 or people.size == 0:
            continue
        if people.ndim != 3 or people.shape[1] != 4:
            raise TrackError(f"{path}: frame {frame}: keypoints shaped {people.shape}, "
                             f"expected (N, 4, J)")
        best = int(np.argmax(people_boxes[:, 4]))
        rows = people[best]
        candidates.append((frame, 1.0, np.stack([rows[0], rows[1], rows[3]], axis=1)))
    image_size = (float(metadata["w"]), float(metadata["h"])) if "w" in metadata else None
    if not candidates:
        raise TrackError(f"no detections in {path}")
    per_frame = _best_per_frame(candidates)
    per_frame.setdefault(0, None)
    per_frame.setdefault(len(boxes) - 1, None)  # frames without anyone at either end count
    return _assemble(per_frame, path, "detectron-vp3d", None, image_size, max_gap)


def read_mmpose_folder(folder, files, max_gap=None) -> Track:
    """MMPoseInferencer per-image predictions: a folder of <image>.json instance lists."""
    frames = []
    for file in files:
        try:
            instances = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise TrackError(f"{file}: not JSON ({error})") from None
        if not isinstance(instances, list):
            raise TrackError(f"{file}: not an MMPose prediction (a list of instances)")
        frames.append({"frame_id": frame_number(file.name, file), "instances": instances})
    return read_mmpose(folder, frames, max_gap)


def read_mmpose(path, data: list, max_gap=None) -> Track:
    """MMPoseInferencer predictions (module docstring)."""
    candidates = []
    for i, entry in enumerate(data):
        if "instances" in entry:
            frame, instances = int(entry.get("frame_id", i)), entry["instances"]
        else:  # raw inferencer results: {"predictions": [[instance, ...]]}
            frame, instances = i, [inst for group in entry["predictions"] for inst in group]
        for instance in instances or []:
            points = _points(instance["keypoints"], path, f"frame {frame}")
            if "keypoint_scores" in instance:
                points[:, 2] = np.asarray(instance["keypoint_scores"], np.float64)
            candidates.append((frame, _person_score(points, instance.get("bbox_score")),
                               points))
    return _assemble(_best_per_frame(candidates), path, "mmpose", None, None, max_gap)


_OPENPOSE_NAME = re.compile(r"(\d+)_keypoints\.json$")


def read_openpose(path, max_gap=None) -> Track:
    """A folder of OpenPose per-frame JSON files (module docstring)."""
    folder = pathlib.Path(path)
    files = sorted(p for p in folder.iterdir() if _OPENPOSE_NAME.search(p.name))
    if not files:
        raise TrackError(f"{folder}: no OpenPose *_<frame>_keypoints.json files")
    candidates, empty = [], True
    for file in files:
        frame = int(_OPENPOSE_NAME.search(file.name).group(1))
        try:
            people = json.loads(file.read_text(encoding="utf-8"))["people"]
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as error:
            raise TrackError(f"{file}: not an OpenPose keypoints file ({error})") from None
        for person in people:
            points = _points(person.get("pose_keypoints_2d", []), file, "pose_keypoints_2d")
            if len(points) not in OPENPOSE_TO_COCO17:
                raise TrackError(f"{file}: {len(points)} body keypoints; OpenPose BODY_25 "
                                 f"(25) and COCO (18) are supported")
            points = _not_found_to_nan(points)[list(OPENPOSE_TO_COCO17[len(points)])]
            found = np.isfinite(points[:, 0])
            score = float(np.sum(np.where(found, points[:, 2], 0.0)))
            candidates.append((frame, score, points))
            empty = False
    if empty:
        raise TrackError(f"no detections in {folder}")
    return _assemble(_best_per_frame(candidates), folder, "openpose", COCO_17_LAYOUT.name,
                     None, max_gap)


def read_vp3d_custom(path, max_gap=None, video: Optional[str] = None) -> Track:
    """VideoPose3D's in-the-wild `data_2d_custom_*.npz` (module docstring)."""
    from vp3dkeras.data.vp3d_format import restricted_load_npz

    data = restricted_load_npz(path)
    positions, metadata = data["positions_2d"], data.get("metadata", {}) or {}
    if not positions:
        raise TrackError(f"no detections in {path}")
    if not all(isinstance(v, dict) and "custom" in v for v in positions.values()):
        raise TrackError(f"{path}: a VideoPose3D dataset file (positions_2d[subject][action]"
                         f"[camera]), not an in-the-wild track; train or evaluate on its "
                         f"folder with --dataset")
    if video is None:
        if len(positions) != 1:
            raise TrackError(f"{path} holds {len(positions)} videos {sorted(positions)}; "
                             f"pass --video NAME")
        video = next(iter(positions))
    if video not in positions:
        raise TrackError(f"{path}: no video {video!r}; it holds {sorted(positions)}")
    views = positions[video]["custom"]
    if not views:
        raise TrackError(f"no detections in {path}")
    array = np.asarray(views[0], np.float64)
    if array.ndim != 3 or array.shape[-1] not in (2, 3):
        raise TrackError(f"{path}: {video}: keypoints shaped {array.shape}, expected (T, J, 2)")
    layout = {"coco": COCO_17_LAYOUT.name, "h36m": H36M_17.name}.get(
        str(metadata.get("layout_name", "coco")), str(metadata.get("layout_name")))
    if layout not in LAYOUTS:
        raise TrackError(f"{path}: layout {metadata.get('layout_name')!r} is not one of "
                         f"coco, h36m or {sorted(LAYOUTS)}")
    size = (metadata.get("video_metadata") or {}).get(video)
    image_size = (float(size["w"]), float(size["h"])) if size else None
    scores = array[..., 2] if array.shape[-1] == 3 else None
    frames = np.arange(len(array))
    keypoints, scores, filled = fill_missing(array[..., :2], scores, frames, path, max_gap)
    return Track(keypoints, scores, layout, image_size, frames, filled, "vp3d-custom",
                 str(path))


def _plain(path, keypoints, scores, info, source, max_gap) -> Track:
    try:
        array = np.asarray(keypoints, np.float64)
    except (TypeError, ValueError):
        raise TrackError(f"{path}: 'keypoints' are not numbers (null values?)") from None
    if array.ndim != 3 or array.shape[-1] not in (2, 3):
        raise TrackError(f"{path}: keypoints shaped {array.shape}, expected (T, J, 2) or "
                         f"(T, J, 3 with scores)")
    if len(array) == 0:
        raise TrackError(f"no detections in {path}")
    if scores is None and array.shape[-1] == 3:
        scores = array[..., 2]
    if scores is not None:
        scores = np.asarray(scores, np.float64)
        if scores.shape != array.shape[:2]:
            raise TrackError(f"{path}: scores shaped {scores.shape}, keypoints "
                             f"{array.shape[:2]}")
    layout = str(info["layout"]) if "layout" in info else _layout_for_count(array.shape[1],
                                                                             path)
    if layout not in LAYOUTS:
        raise TrackError(f"{path}: layout {layout!r} is not one of {sorted(LAYOUTS)}")
    if LAYOUTS[layout].num_joints != array.shape[1]:
        raise TrackError(f"{path}: layout {layout} has {LAYOUTS[layout].num_joints} keypoints, "
                         f"the file {array.shape[1]}")
    image_size = None
    if "width" in info and "height" in info:
        image_size = (float(info["width"]), float(info["height"]))
    frames = np.arange(len(array))
    points, scores, filled = fill_missing(array[..., :2], scores, frames, path, max_gap)
    return Track(points, scores, layout, image_size, frames, filled, source, str(path))


def read_npz(path, max_gap=None) -> Track:
    """Our npz track: keypoints, optional scores, width, height, layout."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "keypoints" not in data:
                raise TrackError(f"{path}: no 'keypoints' array (has {sorted(data.files)})")
            info = {k: data[k].item() for k in ("width", "height", "layout") if k in data}
            scores = np.asarray(data["scores"]) if "scores" in data else None
            keypoints = np.asarray(data["keypoints"])
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        if isinstance(error, TrackError):
            raise
        raise TrackError(f"{path}: not a readable npz track ({error})") from None
    return _plain(path, keypoints, scores, info, "npz", max_gap)


def _npz_members(path) -> set:
    try:
        with zipfile.ZipFile(path) as archive:
            return set(archive.namelist())
    except zipfile.BadZipFile:
        raise TrackError(f"{path}: not an npz file (not a zip archive)") from None


FORMATS: Dict[str, str] = {
    "coco-results": "COCO keypoint results list (image_id = frame number)",
    "alphapose": "AlphaPose results (image_id = image file name)",
    "openpose": "folder of OpenPose *_keypoints.json (BODY_25 or COCO-18)",
    "mmpose": "MMPoseInferencer predictions (video JSON or per-image folder)",
    "coco-annotations": "COCO keypoint annotation file (images + annotations)",
    "detectron-vp3d": "VideoPose3D infer_video_d2.py npz (boxes, keypoints, metadata)",
    "vp3d-custom": "VideoPose3D in-the-wild data_2d_custom_*.npz",
    "npz": "npz with keypoints, scores, width, height, layout",
    "json": '{"keypoints": [T][J][2|3], "width", "height", "layout"}',
}


def read_track(path, max_gap: Optional[int] = None, video: Optional[str] = None) -> Track:
    """Reads a 2D track in any of `FORMATS`, detected from the file's content.

    path: a .json or .npz file, or an OpenPose output folder.
    max_gap: refuse runs of more than this many filled-in frames (None: fill any gap).
    video: which video of a multi-video `data_2d_custom_*.npz`.
    Raises TrackError (one line, naming the file) for anything it cannot read.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        if any(_OPENPOSE_NAME.search(p.name) for p in path.iterdir()):
            return read_openpose(path, max_gap)
        files = sorted(path.glob("*.json"))
        if files:
            return read_mmpose_folder(path, files, max_gap)
        raise TrackError(f"{path}: a folder without OpenPose *_keypoints.json or MMPose "
                         f"per-image .json files")
    if not path.is_file():
        raise TrackError(f"{path}: no such file or folder")
    if path.stat().st_size == 0:
        raise TrackError(f"no detections in {path} (empty file)")
    if path.suffix == ".npz":
        members = _npz_members(path)
        if "positions_2d.npy" in members:
            return _guarded(read_vp3d_custom, path, max_gap, video)
        if {"boxes.npy", "keypoints.npy", "metadata.npy"} <= members:
            return _guarded(read_detectron_vp3d, path, max_gap)
        return read_npz(path, max_gap)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TrackError(f"{path}: not JSON ({error})") from None
    reader: Optional[Callable] = None
    if isinstance(data, list):
        if not data:
            raise TrackError(f"no detections in {path}")
        first = data[0]
        if isinstance(first, dict) and ("instances" in first or "predictions" in first):
            reader = read_mmpose
        elif isinstance(first, dict) and "keypoints" in first:
            reader = read_coco_results
    elif isinstance(data, dict):
        if "annotations" in data and "images" in data:
            reader = read_coco_annotations
        elif "people" in data:
            raise TrackError(f"{path}: one OpenPose frame; pass the folder holding all "
                             f"frames' *_keypoints.json")
        elif "keypoints" in data:
            info = {k: data[k] for k in ("width", "height", "layout") if k in data}
            return _plain(path, data["keypoints"], data.get("scores"), info, "json", max_gap)
    if reader is None:
        raise TrackError(f"{path}: not a known 2D track format ({', '.join(FORMATS)})")
    return _guarded(reader, path, data, max_gap)


def _guarded(reader: Callable, path, *args) -> Track:
    """Runs a reader; any error but our own becomes one TrackError line naming the file."""
    try:
        return reader(path, *args)
    except TrackError:
        raise
    except (KeyError, TypeError, AttributeError, IndexError, ValueError,
            pickle.UnpicklingError) as error:
        message = str(error).splitlines()[0] if str(error) else repr(error)
        raise TrackError(f"{path}: malformed {reader.__name__[5:].replace('_', '-')} file "
                         f"({type(error).__name__}: {message})") from None


# -- conversions -----------------------------------------------------------------------------
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


def load_keypoints(path) -> Tuple[np.ndarray, Optional[np.ndarray], dict]:
    """`read_track` as (keypoints (T, J, 2), scores (T, J) or None, info with "layout" and,
    when known, "width" and "height"), for older callers."""
    track = read_track(path)
    info = {"layout": track.layout}
    if track.image_size is not None:
        info["width"], info["height"] = track.image_size
    return track.keypoints, track.scores, info
