#!/usr/bin/env bash
# The main job end to end on the embedded default: real CMU BVH clips (Debian's
# assimp-testmodels) -> synthetic dataset with splits -> VideoPose3D-format export.
# Usage: bash scripts/demo.sh [OUT_DIR]   (default: out/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
OUT=${1:-out/demo}
BVH_DIR=${VP3D_BVH_DIR:-/usr/share/assimp/models/BVH}
PY=.venv/bin/python
export TF_CPP_MIN_LOG_LEVEL=2

echo "== 1. render a dataset from $BVH_DIR"
mkdir -p "$OUT/mocap"
# Only the CMU rig clips: Boxing_Toes.bvh is a different rig and has no joint map here.
cp "$BVH_DIR"/01_0*.bvh "$OUT/mocap/"
$PY -m synth.render "$OUT/mocap" --out "$OUT/dataset" --workers 2
echo "== 2. export in VideoPose3D's npz layout"
$PY -m synth.export_vp3d "$OUT/dataset" --out "$OUT/videopose3d" --name demo
echo "demo finished: dataset in $OUT/dataset"
