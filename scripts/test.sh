#!/usr/bin/env bash
# The test command: installs what the tests need into .venv (once), then runs the whole suite offline.
#   bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(bash scripts/setup_env.sh requirements-test.txt | tail -n 1)"
# two pytest workers, one test file each at a time (module fixtures stay on one worker): 12.2 -> 9.0 min here
exec "$PY" -m pytest tests -q -p no:cacheprovider -n 2 --dist loadfile "$@"
