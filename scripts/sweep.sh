#!/usr/bin/env bash
# Run tasks x a hyperparameter grid through scripts/run_task.sh, then gather one results table.
#
#   TASKS="SST-2 RTE" INTER_LRS="5e-5 1e-4" PRED_LRS="3e-5 5e-5" BATCH_SIZES="32" \
#       SWEEP_DIR=./tmp/sweep bash scripts/sweep.sh [extra flags for every training stage]
#
#   TASKS        tasks to run (default: the eight of the paper's table:
#                CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE)
#   INTER_LRS    stage-1 learning rates  (default: each task's inter_lr in tinybert/data/glue.json)
#   PRED_LRS     stage-2 learning rates  (default: each task's pred_lr)
#   BATCH_SIZES  distillation batch sizes (default: each task's batch_size)
#   TEMPERATURES stage-2 temperatures    (default: each task's temperature)
#   SWEEP_DIR=./tmp/sweep  KEEP_GOING=1 (a failed grid point is reported, the sweep goes on)
# Every other variable of run_task.sh applies to all points (TEACHER, STUDENT, GLUE_DIR,
# DEVICE, AUGMENT, GLOVE_EMBS, epochs, MAX_STEPS, ...).
#
# Layout: one teacher per task ($SWEEP_DIR/<TASK>/teacher), one stage-1 run per (task, batch
# size, stage-1 lr) ($SWEEP_DIR/<TASK>/stage1/bs<B>_ilr<LR>), shared by the points that differ only
# in stage-2 settings, and one run directory per point ($SWEEP_DIR/runs/<point>/<TASK>/ with
# pred/ and results.json). Finished stages are skipped, so an interrupted sweep is continued by
# running the same command again. The table goes to $SWEEP_DIR/sweep_results.md and .csv
# (scripts/collect_results.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit 0
fi
if [ -z "${PYTHON:-}" ]; then
  PYTHON="$(bash "$ROOT/scripts/setup_env.sh" | tail -n 1)"
  case "$PYTHON" in /*) ;; *) PYTHON="$ROOT/$PYTHON" ;; esac
fi
export PYTHON
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

TASKS="${TASKS:-CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE}"
SWEEP_DIR="${SWEEP_DIR:-./tmp/sweep}"
KEEP_GOING="${KEEP_GOING:-1}"
CONFIG_ARGS=()
[ -n "${HPARAMS_CONFIG:-}" ] && CONFIG_ARGS=(--config "$HPARAMS_CONFIG")
hp() { "$PYTHON" -m tinybert.data.hparams "$1" "$2" "${CONFIG_ARGS[@]}"; }

mkdir -p "$SWEEP_DIR"
FAILED=()
POINTS=0
for task_arg in $TASKS; do
  hp "$task_arg" batch_size > /dev/null  # a one-line error for an unknown task, before any training
  task="$("$PYTHON" -c 'import sys; from tinybert.data.tasks import get_task; print(get_task(sys.argv[1]).name)' "$task_arg")"
  batch_sizes="${BATCH_SIZES:-$(hp "$task" batch_size)}"
  inter_lrs="${INTER_LRS:-$(hp "$task" inter_lr)}"
  pred_lrs="${PRED_LRS:-$(hp "$task" pred_lr)}"
  temperatures="${TEMPERATURES:-$(hp "$task" temperature)}"
  for bs in $batch_sizes; do
    for ilr in $inter_lrs; do
      for plr in $pred_lrs; do
        for t in $temperatures; do
          point="bs${bs}_ilr${ilr}_plr${plr}_T${t}"
          POINTS=$((POINTS + 1))
          echo "[sweep] $task $point"
          if ! TEACHER_DIR="$SWEEP_DIR/$task/teacher" INTER_DIR="$SWEEP_DIR/$task/stage1/bs${bs}_ilr${ilr}" \
               OUT_DIR="$SWEEP_DIR/runs/$point" RUN_NAME="$point" BATCH_SIZE="$bs" INTER_LR="$ilr" \
               PRED_LR="$plr" TEMPERATURE="$t" bash "$ROOT/scripts/run_task.sh" "$task" "$@"; then
            echo "[sweep] FAILED: $task $point" >&2
            FAILED+=("$task $point")
            [ "$KEEP_GOING" = "1" ] || break 4
          fi
        done
      done
    done
  done
done

echo "[sweep] $POINTS point(s) run, ${#FAILED[@]} failed"
COLLECTED=0
"$PYTHON" "$ROOT/scripts/collect_results.py" "$SWEEP_DIR" || COLLECTED=$?
if [ "${#FAILED[@]}" -gt 0 ] || [ "$COLLECTED" -ne 0 ]; then
  [ "${#FAILED[@]}" -gt 0 ] && printf '[sweep] failed: %s\n' "${FAILED[@]}" >&2
  exit 1
fi
