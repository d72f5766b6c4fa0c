"""The README picture: a causal model streamed frame by frame beside the offline symmetric model.

Takes one clip of a synth dataset (its 2D keypoints as seen by one camera), lifts it
- with a causal model through `vp3dkeras.stream.TrackStreamer` (frame by frame, per-frame
  latency measured, flip test-time augmentation as a second stream), and
- with a symmetric model offline over the whole clip (`vp3dkeras.infer.lift_track`),
prints both errors against the clip's ground truth (MPJPE, mm, root-relative) and the
latency, and writes a GIF of the two side by side, the ground truth in grey behind each.

    python experiments/streaming_demo.py --causal RUN_DIR --symmetric RUN_DIR \
        --dataset DATASET [--clip KEY] [--camera 0] [--out streaming_demo.gif]

The README's GIF: 47 HDM05 clips of actor bd and 10 of actor mm (throwBasketball_011 among
them) rendered with `python -m synth.render MOCAP --out DATASET --avatars ava --cameras 3
--fps 25`; two runs of `python -m vp3dkeras.train --dataset DATASET --split
actor_out_hdm05_mm --filter-widths 3,3,3 --channels 256 --epochs 120 --batch-size 128
--lr 2e-3` (one with `--causal`); then this script with its default clip.
"""
from __future__ import annotations

import argparse
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from posecontract.dataset_format import load_record
from posecontract.layouts import H36M_17
from vp3dkeras.data.codec import PoseCodec
from vp3dkeras.infer import lift_track
from vp3dkeras.inference import load_lifter
from vp3dkeras.stream import TrackStreamer, latency_summary, stream_track
from vp3dkeras.stream_pool import load_stream_pool
from vp3dkeras.visualize import save_comparison_gif


def mpjpe_mm(poses, truth) -> float:
    return float(np.linalg.norm(poses - truth, axis=-1).mean() * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--causal", type=pathlib.Path, required=True)
    parser.add_argument("--symmetric", type=pathlib.Path, required=True)
    parser.add_argument("--dataset", type=pathlib.Path, required=True)
    parser.add_argument("--clip", default="hdm05_HDM_mm_throwBasketball_011_120__ava")
    parser.add_argument("--camera", type=int, default=0)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("streaming_demo.gif"))
    args = parser.parse_args()

    record = load_record(args.dataset / "clips" / f"{args.clip}.npz")
    keypoints = record["keypoints2d"][args.camera]
    width, height = (float(v) for v in record["camera_image_size"][args.camera])
    truth, _ = PoseCodec(H36M_17).encode_3d(record["joints3d_camera"][args.camera])

    pool, info = load_stream_pool(args.causal)
    streamer = TrackStreamer(pool, width, height, layout=H36M_17.name)
    causal, latency, _ = stream_track(streamer, keypoints)
    symmetric, _ = lift_track(load_lifter(args.symmetric), keypoints, None, width, height,
                              layout=H36M_17.name)
    errors = {"causal": mpjpe_mm(causal, truth), "symmetric": mpjpe_mm(symmetric, truth)}
    print(f"{args.clip}, camera {args.camera}, {len(keypoints)} frames; MPJPE causal stream "
          f"{errors['causal']:.0f} mm, offline symmetric {errors['symmetric']:.0f} mm; "
          f"causal {latency_summary(latency)}")
    left = f"causal, streamed ({info['receptive_field']}-frame model)"
    right = "offline symmetric (whole clip)"
    captions = {left: [f"frame {t}: {ms:.1f} ms" for t, ms in enumerate(latency)],
                right: ["needs the future frames"] * len(latency)}
    save_comparison_gif({left: causal, right: symmetric}, H36M_17, args.out,
                        fps=float(record["fps"]), reference=truth, captions=captions,
                        title=f"MPJPE {errors['causal']:.0f} mm (causal) vs "
                              f"{errors['symmetric']:.0f} mm (symmetric); grey: ground truth")
    print(f"animation -> {args.out}")


if __name__ == "__main__":
    main()
