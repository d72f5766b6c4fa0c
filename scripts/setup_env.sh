#!/usr/bin/env bash
# Creates .venv with everything the project needs, on a fresh Debian machine with Python 3.11.
# Idempotent: a second run only checks. Usage: bash scripts/setup_env.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# Debian packages: software OpenGL for offscreen rendering (OSMesa, EGL) and the real CMU BVH
# clips of assimp-testmodels used by the demo and the tests.
APT_PACKAGES="assimp-testmodels libosmesa6 libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libopengl0"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else SUDO="none"; fi
  if [ "$SUDO" = none ]; then
    echo "setup: cannot install Debian packages:$missing (not root, no sudo)" >&2
  else
    echo "setup: apt-get install$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# No pip cache: the wheels (TensorFlow, torch, jaxlib, warp, ray) would otherwise sit on disk
# twice, and CI machines can be short of space.
export PIP_NO_CACHE_DIR=1
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.installed-$(cat setup.py scripts/setup_env.sh | sha1sum | cut -c1-12)${1:-}"
if [ ! -f "$stamp" ]; then
  free_mb=$(df -Pm "$VENV" | awk 'NR==2 {print $4}')
  if [ -n "$free_mb" ] && [ "$free_mb" -lt 6000 ]; then
    echo "setup: warning: $free_mb MB free under $VENV; the environment needs about 5 GB" >&2
  fi
  $PIP install -q --upgrade pip
  # torch (CPU) runs Anny, the body model of synth.bodies, and checks VideoPose3D weight
  # conversion; jax checks the JAX backend. The exact torch pin takes the CPU build (an
  # open range would pull the CUDA build, GBs); anny then finds it already there.
  $PIP install -q "torch==${TORCH_VERSION:-2.13.0}"
  if [ "${1:-}" = "--dev" ]; then
    # ray checks generation on Ray (synth.engines); jax also multi-worker training.
    $PIP install -q -e ".[dev,torch,jax,bodies,ray]"
  else
    $PIP install -q -e ".[bodies]"
  fi
  # pyrender pins PyOpenGL 3.1.0, which cannot use OSMesa; 3.1.10 must come afterwards
  # without dependency resolution (listing it together makes pip pick an old pyrender).
  $PIP install -q --no-deps "PyOpenGL==3.1.10"
  touch "$stamp"
fi
echo "setup: $VENV ready"
