"""Lift a 2D keypoint track to 3D frame by frame, as a live camera would feed it.

    python -m vp3dkeras.stream MODEL --keypoints FILE [--width W --height H]
        [--layout coco17|h36m17] [--out poses.npz] [--min-score 0.3] [--no-flip-tta]
    DETECTOR | python -m vp3dkeras.stream MODEL --stdin --width W --height H > poses.jsonl

MODEL: a causal model (run directory or `.keras`; its streaming form is built on load) or a
SavedModel from `python -m vp3dkeras.export_stream`. FILE: any track `vp3dkeras.infer` reads
(`vp3dkeras.data.keypoint_formats.load_keypoints`). Each frame goes through the streaming
model alone (`vp3dkeras.models.StreamingTemporalModel`): with a causal model the poses equal
`python -m vp3dkeras.infer`'s (same replicate padding of the first frame, same flip test-time
augmentation, here as a second, mirrored stream in the same call).

Frame preparation is causal too: a joint whose keypoint is not finite, or whose score is
below `--min-score`, keeps its last good position (offline inference interpolates, which needs
the future). A frame with a joint never seen yet gives no pose (NaN) and does not start the
stream.

`--keypoints` writes an npz with `poses_3d` (T, 17, 3) float32 metres, camera space
(x right, y down, z forward) relative to the pelvis; `latency_ms` (T,) float64, the wall time
from the frame's pixels to its pose; `keypoints_2d` (T, 17, 2) the converted input in
pixels; `joint_names`, `joint_parents`; and prints the latency's median and 99th percentile.

`--stdin` reads one JSON object per line, {"keypoints": [[x, y] or [x, y, score], ...]}
(or a flat [x, y, score, ...] list, or the bare nested list), with an optional "scores"
list and `"reset": true` to start a new person; it writes one JSON line per frame to standard
output, {"frame": i, "poses_3d": [[x, y, z] x 17] or null, "latency_ms": ...}, flushed at once.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from typing import Optional, Sequence

import numpy as np

from posecontract.layouts import H36M_17
from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.data.keypoint_formats import coco_to_h36m, load_keypoints
from vp3dkeras.stream_pool import StreamPool, load_stream_pool


class TrackStreamer:
    """One person's live track: pixels in, a root-relative 3D pose out, frame by frame.

    pool: a `StreamPool`; the streamer opens one stream in it (two with flip test-time
    augmentation) under `name`. layout: "coco17" (converted as `coco_to_h36m`) or "h36m17".
    """

    def __init__(self, pool: StreamPool, width: float, height: float, layout: str = "coco17",
                 min_score: Optional[float] = None, flip_tta: bool = True, name="track"):
        if layout not in ("coco17", H36M_17.name):
            raise ValueError(f"layout must be coco17 or {H36M_17.name}, got {layout!r}")
        self.pool, self.layout, self.min_score = pool, layout, min_score
        self.image_size = (float(width), float(height))
        self.codec = PoseCodec(H36M_17)
        self.ids = [(name, "input")] + ([(name, "flipped")] if flip_tta else [])
        for stream_id in self.ids:
            pool.open(stream_id)
        self._last_good = np.full((H36M_17.num_joints, 2), np.nan, np.float32)
        # One throw-away step first, so no measured frame pays for tracing the step.
        pool.push(self.ids, np.zeros((len(self.ids), H36M_17.num_joints, 2), np.float32))
        self.reset()

    def reset(self) -> None:
        """A new person: forget the past frames and the held keypoints."""
        for stream_id in self.ids:
            self.pool.reset(stream_id)
        self._last_good[:] = np.nan

    def prepare(self, keypoints, scores=None) -> np.ndarray:
        """(J, 2) pixels in the file's layout -> (17, 2) Human3.6M pixels, bad joints held."""
        keypoints = np.asarray(keypoints, np.float32)
        if keypoints.ndim != 2 or keypoints.shape[1] != 2:
            raise ValueError(f"a frame must be (J, 2) keypoints, got {keypoints.shape}")
        if self.layout == "coco17":
            keypoints, scores = coco_to_h36m(keypoints, scores)
        elif keypoints.shape[0] != H36M_17.num_joints:
            raise ValueError(f"{H36M_17.name} frames need {H36M_17.num_joints} joints, "
                             f"got {keypoints.shape[0]}")
        good = np.isfinite(keypoints).all(axis=1)
        if scores is not None and self.min_score is not None:
            good &= np.asarray(scores) >= self.min_score
        self._last_good[good] = keypoints[good]
        return self._last_good.copy()

    def lift(self, keypoints, scores=None):
        """One frame: (pose (17, 3) float32 metres root-relative, or None while a joint has
        never been seen; the prepared (17, 2) pixels)."""
        held = self.prepare(keypoints, scores)
        if not np.isfinite(held).all():
            return None, held
        frame = self.codec.normalize_2d(held, self.image_size)
        frames = np.stack([frame, self.codec.flip(frame)][:len(self.ids)])
        poses = self.pool.push(self.ids, frames)
        pose = poses[0] if len(poses) == 1 else (poses[0] + self.codec.flip(poses[1])) / 2
        return self.codec.decode_3d(pose), held


def latency_summary(latency_ms) -> str:
    latency_ms = np.asarray(latency_ms, float)
    latency_ms = latency_ms[np.isfinite(latency_ms)]
    if not len(latency_ms):
        return "no frame lifted"
    p50, p99 = np.percentile(latency_ms, [50, 99])
    return f"latency per frame p50 {p50:.2f} ms, p99 {p99:.2f} ms, {1000 / p50:.0f} frames/s"


def stream_track(streamer: TrackStreamer, keypoints, scores=None):
    """Feeds a (T, J, 2) track frame by frame. Returns (poses (T, 17, 3), NaN where no pose;
    latency_ms (T,); prepared keypoints (T, 17, 2))."""
    poses, latency, prepared = [], [], []
    for t in range(len(keypoints)):
        start = time.perf_counter()
        pose, held = streamer.lift(keypoints[t], None if scores is None else scores[t])
        latency.append((time.perf_counter() - start) * 1e3 if pose is not None else np.nan)
        poses.append(pose if pose is not None else np.full((H36M_17.num_joints, 3), np.nan))
        prepared.append(held)
    return (np.stack(poses).astype(np.float32), np.array(latency),
            np.stack(prepared).astype(np.float32))


def _parse_line(line: str, number: int):
    """(keypoints (J, 2), scores (J,) or None, reset flag) of one JSON line."""
    try:
        data = json.loads(line)
        if isinstance(data, dict):
            points, scores, reset = data["keypoints"], data.get("scores"), data.get("reset")
        else:
            points, scores, reset = data, None, False
        points = np.asarray(points, np.float32)
        if points.ndim == 1:
            points = points.reshape(-1, 3)
        if points.ndim != 2 or points.shape[1] not in (2, 3):
            raise ValueError(f"keypoints must be (J, 2) or (J, 3), got {points.shape}")
        if points.shape[1] == 3 and scores is None:
            scores = points[:, 2]
        return points[:, :2], None if scores is None else np.asarray(scores, np.float32), bool(
            reset)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"stdin line {number}: {error}") from None


def serve_stdin(streamer: TrackStreamer, lines, out) -> int:
    """Lifts JSON lines as they come (see the module docstring); returns frames lifted."""
    frame = lifted = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        points, scores, reset = _parse_line(line, number)
        if reset:
            streamer.reset()
        start = time.perf_counter()
        try:
            pose, _ = streamer.lift(points, scores)
        except ValueError as error:
            raise ValueError(f"stdin line {number}: {error}") from None
        latency = (time.perf_counter() - start) * 1e3
        record = {"frame": frame, "poses_3d": None if pose is None else
                  np.round(pose.astype(np.float64), 5).tolist(), "latency_ms": round(latency, 3)}
        out.write(json.dumps(record) + "\n")
        out.flush()
        frame += 1
        lifted += pose is not None
    return lifted


def _save_npz(path: pathlib.Path, **arrays) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    with open(temporary, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(temporary, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vp3dkeras.stream",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=pathlib.Path,
                        help="causal run directory or .keras file, or a streaming SavedModel")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--keypoints", type=pathlib.Path, help="2D track (.npz or .json)")
    source.add_argument("--stdin", action="store_true",
                        help="read frames as JSON lines from standard input")
    parser.add_argument("--layout", choices=["coco17", H36M_17.name], default=None,
                        help="keypoint layout (default: the file's, else coco17)")
    parser.add_argument("--width", type=float, help="image width in pixels")
    parser.add_argument("--height", type=float, help="image height in pixels")
    parser.add_argument("--out", type=pathlib.Path,
                        help="output npz (default FILE.stream3d.npz)")
    parser.add_argument("--min-score", type=float, default=None,
                        help="hold keypoints whose detector score is below this")
    parser.add_argument("--no-flip-tta", dest="flip_tta", action="store_false")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    info, keypoints, scores = {}, None, None
    if args.keypoints:
        try:
            keypoints, scores, info = load_keypoints(args.keypoints)
        except (OSError, ValueError, KeyError) as error:
            raise SystemExit(f"{args.keypoints}: {error}")
    width, height = args.width or info.get("width"), args.height or info.get("height")
    if not width or not height:
        raise SystemExit("the image size is needed: pass --width and --height")
    try:
        pool, model_info = load_stream_pool(args.model)
    except (OSError, ValueError) as error:
        raise SystemExit(str(error))
    if (model_info["num_joints_in"], model_info["in_features"]) != (H36M_17.num_joints, 2):
        raise SystemExit(f"{args.model}: the model takes {model_info['num_joints_in']} joints "
                         f"x {model_info['in_features']}, not {H36M_17.name} (17 x 2)")
    streamer = TrackStreamer(pool, float(width), float(height),
                             args.layout or info.get("layout", "coco17"), args.min_score,
                             args.flip_tta)
    if args.stdin:
        try:
            lifted = serve_stdin(streamer, sys.stdin, sys.stdout)
        except ValueError as error:
            raise SystemExit(str(error))
        print(f"{lifted} frames lifted", file=sys.stderr)
        return 0
    try:
        poses, latency, prepared = stream_track(streamer, keypoints, scores)
    except ValueError as error:
        raise SystemExit(f"{args.keypoints}: {error}")
    out = args.out or args.keypoints.with_suffix(".stream3d.npz")
    _save_npz(out, poses_3d=poses, latency_ms=latency, keypoints_2d=prepared,
              joint_names=np.array(H36M_17.names), joint_parents=np.array(H36M_17.parents))
    missing = int(np.isnan(poses[:, 0, 0]).sum())
    print(f"{len(poses)} frames streamed -> {out} (receptive field "
          f"{model_info['receptive_field']}"
          + (f"; {missing} frames before every joint was seen have no pose" if missing else "")
          + f"); {latency_summary(latency)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
