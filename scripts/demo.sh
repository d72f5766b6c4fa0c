#!/usr/bin/env bash
# The main job end to end on the embedded default: real CMU BVH clips (Debian's
# assimp-testmodels) -> synthetic dataset with splits -> VideoPose3D-format export -> a small
# temporal model trained, evaluated, exported as a SavedModel and run with TensorFlow alone ->
# a 2D track lifted with the inference CLI. About 3-5 minutes on 2 CPU cores.
# Usage: bash scripts/demo.sh [OUT_DIR]   (default: out/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
OUT=${1:-out/demo}
BVH_DIR=${VP3D_BVH_DIR:-/usr/share/assimp/models/BVH}
PY=.venv/bin/python
RUN=$OUT/runs/tcn27-c128-supv-gt2d-cmu01-random
export TF_CPP_MIN_LOG_LEVEL=2

echo "== 1. render a dataset from $BVH_DIR"
mkdir -p "$OUT/mocap"
# Two CMU clips (built-in rig) and Boxing_Toes.bvh, another rig in centimetres, read
# through the example JSON joint map that ships with synth.
cp "$BVH_DIR"/01_0*.bvh "$BVH_DIR"/Boxing_Toes.bvh "$OUT/mocap/"
$PY -m synth.render "$OUT/mocap" --out "$OUT/dataset" --workers 2 \
    --joint-map synth/data/joint_maps/boxing_toes.json
echo "== 2. export in VideoPose3D's npz layout"
$PY -m synth.export_vp3d "$OUT/dataset" --out "$OUT/videopose3d" --name demo

echo "== 3. train a 27-frame temporal model (128 channels) on the random split"
rm -rf "$RUN"
$PY -m vp3dkeras.train --dataset "$OUT/dataset" --split random --out "$RUN" \
    --model temporal --filter-widths 3,3,3 --channels 128 --epochs 20 --batch-size 512 \
    --max-windows-per-epoch 32768 --val-windows 2048 --seed 0

echo "== 4. evaluate on the held-out clip (full sequences, flip test-time augmentation)"
$PY -m vp3dkeras.evaluate "$RUN"
cat "$RUN/eval_random_test.md"

echo "== 5. export as a SavedModel and run it with TensorFlow alone"
$PY -m vp3dkeras.export "$RUN" --out "$OUT/saved_model"
# TensorFlow alone, without our package: its C++ start-up lines (absl preamble, oneDNN and CUDA
# probes) are dropped from stderr here, as vp3dkeras.quiet_tf does for our commands.
$PY - "$OUT/saved_model" "$OUT/dataset" "$OUT/track.npz" \
  2> >(grep -Ev 'All log messages before absl|cudart_stub\.cc|port\.cc:[0-9]+\] oneDNN|failed call to cuInit' >&2) <<'PYEOF'
import json
import pathlib
import sys

import numpy as np
import tensorflow as tf

saved_model, dataset, track = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
loaded = tf.saved_model.load(saved_model)
test_clip = json.loads((dataset / "splits" / "random.json").read_text())["test"][0]
entry = next(e for e in json.loads((dataset / "manifest.json").read_text())["records"]
             if e["clip_key"] == test_clip)
with np.load(dataset / entry["file"], allow_pickle=False) as record:
    # The run was trained on the dataset's Human3.6M joints (the default convention).
    pixels = record["keypoints2d__h36m17"][0]
    width, height = (float(v) for v in record["camera_image_size"][0])
    target = record["joints3d_camera__h36m17"][0]
normalised = pixels / width * 2 - np.array([1.0, height / width])  # as the model was trained
poses = loaded.predict(normalised[None].astype(np.float32)).numpy()[0]
poses[:, 0] = 0
target = target - target[:, :1]
error = np.linalg.norm(poses - target, axis=-1).mean() * 1000
print(f"SavedModel: {len(poses)} frames of {entry['file']} (camera 0), receptive field "
      f"{int(loaded.receptive_field)}: MPJPE {error:.1f} mm (no flip TTA)")
np.savez(track, keypoints=pixels[:100], width=width, height=height, layout="h36m17")
PYEOF

echo "== 6. lift a 2D track with the inference CLI and draw it"
$PY -m vp3dkeras.infer "$RUN" --keypoints "$OUT/track.npz" --out "$OUT/track_poses3d.npz" \
    --png "$OUT/track_pose.png" --frame 50 --gif "$OUT/track_poses.gif"
echo "demo finished: dataset in $OUT/dataset, run in $RUN, SavedModel in $OUT/saved_model"
