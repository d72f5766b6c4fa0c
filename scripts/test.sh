#!/usr/bin/env bash
# Installs what the tests need and runs them. Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh --dev
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" tests
