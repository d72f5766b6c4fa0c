"""Lift a 2D keypoint track to 3D frame by frame, as a live camera would feed it.

    python -m vp3dkeras.stream MODEL --keypoints TRACK [--width W --height H]
        [--layout coco17|h36m17] [--keypoints-in h36m17|coco17] [--keypoints-out h36m17]
        [--max-gap N] [--video NAME] [--out poses.npz] [--min-score 0.3] [--no-flip-tta]
    DETECTOR | python -m vp3dkeras.stream MODEL --stdin --width W --height H > poses.jsonl

MODEL: a causal model (run directory or `.keras`; its streaming form is built on load) or a
SavedModel from `python -m vp3dkeras.export_stream`. TRACK: any track `vp3dkeras.infer`
reads (`vp3dkeras.data.keypoint_formats.read_track`, which interpolates the frames a
recorded file lacks and reports them). Conventions as `vp3dkeras.infer`: the track's is
detected (`--layout` overrides), the model's input and output conventions come from its run
config (`--keypoints-in/--keypoints-out` override), a COCO-17 track feeding a Human3.6M model
is converted. Each frame goes through the streaming model alone
(`vp3dkeras.models.StreamingTemporalModel`): with a causal model the poses equal
`python -m vp3dkeras.infer`'s (same replicate padding of the first frame, same flip test-time
augmentation, here as a second, mirrored stream in the same call).

Frame preparation is causal: a joint whose keypoint is not finite, or whose score is below
`--min-score`, keeps its last good position (offline inference interpolates, which needs the
future). A frame with a joint never seen yet gives no pose (NaN) and does not start the
stream.

`--keypoints` writes an npz with `poses_3d` (T, J_out, 3) float32 metres, camera space
(x right, y down, z forward) relative to the pelvis; `latency_ms` (T,) float64, the wall time
from the frame's pixels to its pose; `keypoints_2d` (T, J_in, 2) the model's input in
pixels; `frames`, `interpolated_frames` (as `vp3dkeras.infer`), `joint_names`,
`joint_parents`; and prints the latency's median and 99th percentile.

`--stdin` reads one JSON object per line, {"keypoints": [[x, y] or [x, y, score], ...]}
(or a flat [x, y, score, ...] list, or the bare nested list) in the `--layout` convention
(default coco17), with an optional "scores" list, `"reset": true` to start a new person, and
`"stream": ID` (a string or integer) for one of several cameras or people served by the
same process, each with its own state (lines without it form one default stream). It writes
one JSON line per frame to standard output, {"stream": ID (if given), "frame": i (counted
per stream), "poses_3d": [[x, y, z], ...] or null, "latency_ms": ...}, flushed at once.

Unreadable input is one line naming the file (or the stdin line) on standard error, exit 2.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from typing import Callable, Dict, Hashable, Optional, Sequence

import numpy as np

if __name__ == "__main__":  # TensorFlow without its start-up noise (vp3dkeras.quiet_tf)
    from vp3dkeras import quiet_tf  # noqa: F401

from posecontract.layouts import COCO_17, H36M_17, LAYOUTS
from vp3dkeras.data.codec import PoseCodec, load_layout
from vp3dkeras.data.keypoint_formats import TrackError, read_track
from vp3dkeras.infer import model_conventions, to_model_input
from vp3dkeras.stream_pool import StreamPool, load_stream_pool


class TrackStreamer:
    """One person's live track: pixels in, a root-relative 3D pose out, frame by frame.

    pool: a `StreamPool`; the streamer opens one stream in it (two with flip test-time
    augmentation) under `name`. layout: the track's keypoint convention; keypoints_in,
    keypoints_out: the model's (`vp3dkeras.infer.to_model_input` converts between them).
    Raises ValueError if the track's convention cannot feed the model.
    """

    def __init__(self, pool: StreamPool, width: float, height: float,
                 layout: str = COCO_17.name, min_score: Optional[float] = None,
                 flip_tta: bool = True, keypoints_in: str = H36M_17.name,
                 keypoints_out: str = H36M_17.name, name="track"):
        self.pool, self.layout, self.min_score = pool, layout, min_score
        self.keypoints_in = keypoints_in
        self.image_size = (float(width), float(height))
        self.input_codec, self.output_codec = PoseCodec(keypoints_in), PoseCodec(keypoints_out)
        probe = np.zeros((1, load_layout(layout).num_joints, 2), np.float32)
        to_model_input(probe, None, layout, keypoints_in)  # refuses a mismatch up front
        self.ids = [(name, "input")] + ([(name, "flipped")] if flip_tta else [])
        for stream_id in self.ids:
            pool.open(stream_id)
        joints = self.input_codec.num_joints
        self._last_good = np.full((joints, 2), np.nan, np.float32)
        # One throw-away step first, so no measured frame pays for tracing the step.
        pool.push(self.ids, np.zeros((len(self.ids), joints, 2), np.float32))
        self.reset()

    def reset(self) -> None:
        """A new person: forget the past frames and the held keypoints."""
        for stream_id in self.ids:
            self.pool.reset(stream_id)
        self._last_good[:] = np.nan

    def prepare(self, keypoints, scores=None) -> np.ndarray:
        """(J, 2) pixels in the track's convention -> (J_in, 2) model-input pixels, bad joints
        held at their last good position. Raises ValueError for a wrong joint count."""
        keypoints = np.asarray(keypoints, np.float32)
        expected = load_layout(self.layout).num_joints
        if keypoints.shape != (expected, 2):
            raise ValueError(f"a {self.layout} frame must be ({expected}, 2) keypoints, got "
                             f"{keypoints.shape}")
        if scores is not None:
            scores = np.asarray(scores, np.float32)
            if scores.shape != (expected,):
                raise ValueError(f"a {self.layout} frame needs {expected} scores, got "
                                 f"{scores.shape}")
            scores = scores[None]
        keypoints, scores = to_model_input(keypoints[None], scores, self.layout,
                                           self.keypoints_in)
        keypoints = keypoints[0]
        good = np.isfinite(keypoints).all(axis=1)
        if scores is not None and self.min_score is not None:
            good &= scores[0] >= self.min_score
        self._last_good[good] = keypoints[good]
        return self._last_good.copy()

    def lift(self, keypoints, scores=None):
        """One frame: (pose (J_out, 3) float32 metres root-relative, or None while a joint
        has never been seen; the prepared (J_in, 2) pixels)."""
        held = self.prepare(keypoints, scores)
        if not np.isfinite(held).all():
            return None, held
        frame = self.input_codec.normalize_2d(held, self.image_size)
        frames = np.stack([frame, self.input_codec.flip(frame)][:len(self.ids)])
        poses = self.pool.push(self.ids, frames)
        pose = poses[0] if len(poses) == 1 else (poses[0] + self.output_codec.flip(poses[1])) / 2
        return self.output_codec.decode_3d(pose), held


def latency_summary(latency_ms) -> str:
    latency_ms = np.asarray(latency_ms, float)
    latency_ms = latency_ms[np.isfinite(latency_ms)]
    if not len(latency_ms):
        return "no frame lifted"
    p50, p99 = np.percentile(latency_ms, [50, 99])
    return f"latency per frame p50 {p50:.2f} ms, p99 {p99:.2f} ms, {1000 / p50:.0f} frames/s"


def stream_track(streamer: TrackStreamer, keypoints, scores=None):
    """Feeds a (T, J, 2) track frame by frame. Returns (poses (T, J_out, 3), NaN where no
    pose; latency_ms (T,); prepared keypoints (T, J_in, 2))."""
    poses, latency, prepared = [], [], []
    missing = np.full((streamer.output_codec.num_joints, 3), np.nan, np.float32)
    for t in range(len(keypoints)):
        start = time.perf_counter()
        pose, held = streamer.lift(keypoints[t], None if scores is None else scores[t])
        latency.append((time.perf_counter() - start) * 1e3 if pose is not None else np.nan)
        poses.append(pose if pose is not None else missing)
        prepared.append(held)
    return (np.stack(poses).astype(np.float32), np.array(latency),
            np.stack(prepared).astype(np.float32))


def _parse_line(line: str, number: int):
    """(keypoints (J, 2), scores (J,) or None, stream id or None, reset flag) of one line."""
    try:
        data = json.loads(line)
        stream_id = None
        if isinstance(data, dict):
            points, scores, reset = data["keypoints"], data.get("scores"), data.get("reset")
            stream_id = data.get("stream")
            if stream_id is not None and not isinstance(stream_id, (str, int)):
                raise ValueError(f"stream must be a string or an integer, got {stream_id!r}")
        else:
            points, scores, reset = data, None, False
        points = np.asarray(points, np.float32)
        if points.ndim == 1:
            points = points.reshape(-1, 3)
        if points.ndim != 2 or points.shape[1] not in (2, 3):
            raise ValueError(f"keypoints must be (J, 2) or (J, 3), got {points.shape}")
        if points.shape[1] == 3 and scores is None:
            scores = points[:, 2]
        scores = None if scores is None else np.asarray(scores, np.float32)
        return points[:, :2], scores, stream_id, bool(reset)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"stdin line {number}: {error}") from None


def serve_stdin(make_streamer: Callable[[Hashable], TrackStreamer], lines, out) -> int:
    """Lifts JSON lines as they come (see the module docstring); returns frames lifted.

    make_streamer(stream id) opens the `TrackStreamer` of a stream the first time a line
    names it (lines without "stream" belong to one default stream)."""
    streamers: Dict[Hashable, TrackStreamer] = {}
    frames: Dict[Hashable, int] = {}
    lifted = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        points, scores, stream_id, reset = _parse_line(line, number)
        if stream_id not in streamers:
            streamers[stream_id] = make_streamer(
                "track" if stream_id is None else ("stream", stream_id))
            frames[stream_id] = 0
        elif reset:
            streamers[stream_id].reset()
        start = time.perf_counter()
        try:
            pose, _ = streamers[stream_id].lift(points, scores)
        except ValueError as error:
            raise ValueError(f"stdin line {number}: {error}") from None
        latency = (time.perf_counter() - start) * 1e3
        record = {} if stream_id is None else {"stream": stream_id}
        record.update({"frame": frames[stream_id], "poses_3d": None if pose is None else
                       np.round(pose.astype(np.float64), 5).tolist(),
                       "latency_ms": round(latency, 3)})
        out.write(json.dumps(record) + "\n")
        out.flush()
        frames[stream_id] += 1
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
    source.add_argument("--keypoints", type=pathlib.Path,
                        help="2D track, pixels: any format vp3dkeras.infer reads")
    source.add_argument("--stdin", action="store_true",
                        help="read frames as JSON lines from standard input")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default=None,
                        help="keypoint convention of the track (default: detected; coco17 "
                             "with --stdin)")
    parser.add_argument("--keypoints-in", choices=sorted(LAYOUTS), default=None,
                        help="the model's input convention (default: run config, h36m17)")
    parser.add_argument("--keypoints-out", choices=sorted(LAYOUTS), default=None,
                        help="the model's output convention (default: run config, h36m17)")
    parser.add_argument("--max-gap", type=int, default=None,
                        help="refuse more than this many missing frames in a row of a file")
    parser.add_argument("--video", help="video name in a multi-video data_2d_custom_*.npz")
    parser.add_argument("--width", type=float, help="image width in pixels")
    parser.add_argument("--height", type=float, help="image height in pixels")
    parser.add_argument("--out", type=pathlib.Path,
                        help="output npz (default FILE.stream3d.npz)")
    parser.add_argument("--min-score", type=float, default=None,
                        help="hold keypoints whose detector score is below this")
    parser.add_argument("--no-flip-tta", dest="flip_tta", action="store_false")
    return parser


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    track = None
    if args.keypoints:
        try:
            track = read_track(args.keypoints, max_gap=args.max_gap, video=args.video)
        except TrackError as error:
            return _error(str(error))
        print(track.report())
    size = track.image_size if track is not None and track.image_size else (None, None)
    width, height = args.width or size[0], args.height or size[1]
    if not width or not height:
        return _error(f"{args.keypoints or 'stdin'}: the image size is needed: pass --width "
                      f"and --height")
    if args.model.suffix in (".bin", ".pth", ".pt"):
        return _error(f"{args.model}: a VideoPose3D checkpoint does not say whether it is "
                      f"causal; load it with vp3dkeras.convert.load_videopose3d(path, "
                      f"causal=True) and save it as .keras")
    try:
        pool, model_info = load_stream_pool(args.model)
    except (OSError, ValueError) as error:
        return _error(str(error))
    config_in, config_out = model_conventions(args.model)
    keypoints_in = args.keypoints_in or config_in
    keypoints_out = args.keypoints_out or config_out
    expected = (load_layout(keypoints_in).num_joints, 2)
    if (model_info["num_joints_in"], model_info["in_features"]) != expected:
        return _error(f"{args.model}: the model takes {model_info['num_joints_in']} joints x "
                      f"{model_info['in_features']}, not {keypoints_in} {expected}; pass "
                      f"--keypoints-in")
    if model_info["num_joints_out"] != load_layout(keypoints_out).num_joints:
        return _error(f"{args.model}: predicts {model_info['num_joints_out']} joints, "
                      f"{keypoints_out} has {load_layout(keypoints_out).num_joints}; pass "
                      f"--keypoints-out")
    layout = args.layout or (track.layout if track is not None else COCO_17.name)

    def make_streamer(name="track"):
        return TrackStreamer(pool, float(width), float(height), layout, args.min_score,
                             args.flip_tta, keypoints_in, keypoints_out, name=name)

    try:
        streamer = make_streamer()
    except ValueError as error:
        return _error(f"{args.keypoints or 'stdin'}: {error}")
    if args.stdin:
        try:
            lifted = serve_stdin(lambda name: streamer if name == "track" else
                                 make_streamer(name), sys.stdin, sys.stdout)
        except ValueError as error:
            return _error(str(error))
        print(f"{lifted} frames lifted", file=sys.stderr)
        return 0
    poses, latency, prepared = stream_track(streamer, track.keypoints, track.scores)
    out = args.out or args.keypoints.with_suffix(".stream3d.npz")
    out_layout = load_layout(keypoints_out)
    _save_npz(out, poses_3d=poses, latency_ms=latency, keypoints_2d=prepared,
              frames=track.frames,
              interpolated_frames=np.array(track.filled_frames, np.int64),
              joint_names=np.array(out_layout.names), joint_parents=np.array(out_layout.parents))
    missing = int(np.isnan(poses[:, 0, 0]).sum())
    print(f"{len(poses)} frames streamed -> {out} (receptive field "
          f"{model_info['receptive_field']}"
          + (f"; {missing} frames before every joint was seen have no pose" if missing else "")
          + f"); {latency_summary(latency)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
