#!/usr/bin/env bash
# Create (once) the project's virtual environment in .venv and install the pinned requirements.
# Usage: source-free; prints the venv's python path on the last line of stdout.
#   bash scripts/setup_env.sh [requirements file]   (default: requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
REQS="${1:-requirements.txt}"
VENV="${TINYBERT_VENV:-.venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV with $PYTHON" >&2
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(cat "$REQS" requirements.txt | sha256sum | cut -c1-16)-$(basename "$REQS")"
if [ ! -f "$STAMP" ]; then
  echo "installing $REQS into $VENV (first time: a few minutes, ~1.8 GB)" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" >&2
  touch "$STAMP"
fi
echo "$VENV/bin/python"
