#!/usr/bin/env bash
# GPU self-check: run it first on a GPU machine (README, "On a GPU"). About three minutes: tiny
# generated models and data through fine-tuning, both distillation stages, export, predict,
# TensorRT (when installed), augmentation, and two GPUs under the launcher with a save and a resume.
# One PASS/FAIL/SKIP line per check; exit status 1 if a check failed. Without a GPU it says so, exit 0.
#   bash scripts/gpu_check.sh [--keep] [--cpu_rehearsal]      (python: $PYTHON, else .venv, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY="$(command -v python3)"; fi
fi
exec "$PY" scripts/gpu_check.py "$@"
