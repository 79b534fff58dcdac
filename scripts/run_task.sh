#!/usr/bin/env bash
# TinyBERT task distillation of one GLUE task, end to end:
#   teacher fine-tuning -> (AUGMENT=1) data augmentation -> stage 1 (--intermediate_distill)
#   -> stage 2 (prediction layer) -> final evaluation of teacher and student on dev.
#
#   bash scripts/run_task.sh TASK [extra flags for every training stage]
#   e.g. GLUE_DIR=./glue DEVICE=gpu bash scripts/run_task.sh SST-2
#        AUGMENT=1 GLOVE_EMBS=./glove.6B.300d.txt bash scripts/run_task.sh RTE --skip_bad_rows
#
# Hyperparameters come from tinybert/data/glue.json (python -m tinybert.data.hparams TASK KEY); every one
# can be overridden by an environment variable. Extra flags go to finetune_teacher.py and both
# task_distill.py stages, after the defaults, so they win (e.g. --max_seq_length 128); the
# final evaluation honours --max_seq_length/--skip_bad_rows/--eval_batch_size and ignores the rest.
#
# Models and paths (environment):
#   TEACHER=bert-base-uncased    teacher to fine-tune: PaddleNLP name or directory (TEACHER_TYPE=bert)
#   STUDENT=tinybert-6l-768d-v2  general TinyBERT student: name or directory (STUDENT_TYPE=tinybert)
#   STUDENT_SHAPE=LxH[xI]        instead of STUDENT: cut a student of L layers, hidden H (a multiple of the
#                                teacher's heads) and FFN I (default: scaled like H) from the fine-tuned
#                                teacher, keeping its most important dimensions on the task's training data
#                                (scripts/build_student.py; written to STUDENT_DIR=$OUT_DIR/<TASK>/student).
#                                The table's stage-1 and stage-2 epochs (at least 1 and 3 for every task) are
#                                long enough for a cut student; the demo's frontier uses exactly 1 and 3
#   PRUNE_TO=LxH[xI]|params:F|flops:F  instead of STUDENT and stage 1: prune the fine-tuned teacher to that
#                                shape while distilling from it (prune_distill.py, PRUNE_EPOCHS, default the
#                                stage-1 epochs, at PRUNE_LR, default the stage-1 rate; written to
#                                PRUNE_DIR=$OUT_DIR/<TASK>/prune), then stage 2 of the pruned BERT as usual
#   GLUE_DIR=<PaddleNLP DATA_HOME/Glue>  holds <TASK>/train.tsv, dev.tsv (and train_aug.tsv)
#   OUT_DIR=./tmp                outputs go to $OUT_DIR/<TASK>/: teacher/, inter/, pred/, results.*
#   CACHE_DIR=$OUT_DIR/<TASK>/cache  featurized files (token stores) and teacher logits, shared by the stages
#   TEACHER_DIR, INTER_DIR, PRED_DIR   override one stage's output directory (sweep.sh shares them)
#   DEVICE=gpu  SEED=42  PYTHON=<the project's python: .venv made by scripts/setup_env.sh>
#   NPROC=1  GPUS=  training processes: with NPROC>1 or GPUS=0,1,... every training stage runs under
#                   python -m paddle.distributed.launch (logs in <stage dir>/launch_logs/); the
#                   batch size is per process, so the global batch is NPROC (or #GPUS) x BATCH_SIZE
#   HPARAMS_CONFIG=tinybert/data/glue.json   another hyperparameter table
# Augmentation (AUGMENT=1; both stages then train on train_aug.tsv with --use_aug):
#   GLOVE_EMBS=<GloVe text file>  AUG_BERT=bert-base-uncased (masked LM, or "none": GloVe only)
#   AUG_N, AUG_P, AUG_M (default: augment_n, augment_p, augment_k of the table), AUG_FLAGS
# Hyperparameter overrides (default: the table's value):
#   BATCH_SIZE MAX_SEQ_LENGTH INTER_LR INTER_EPOCHS PRED_LR PRED_EPOCHS TEMPERATURE WARMUP
#   TEACHER_LR TEACHER_EPOCHS TEACHER_BATCH_SIZE TEACHER_MAX_SEQ_LENGTH
#   MAX_STEPS (every training stage), TEACHER_MAX_STEPS INTER_MAX_STEPS PRED_MAX_STEPS
#   SAVE_STEPS=100 (distillation) TEACHER_SAVE_STEPS=500 LOGGING_STEPS=100
#   TEACHER_FLAGS INTER_FLAGS PRED_FLAGS  extra flags of one stage only
#
# Stages whose output exists are skipped, with a message: the teacher's best_model/,
# train_aug.tsv, stage 1's best_inter_model/, stage 2's best_model/, and results.json when no
# stage ran. A stage that was interrupted (checkpoint-last* without the ".run_task-*.done"
# marker this script writes on success) is resumed with --resume. When a stage runs, the
# stages after it are redone (--overwrite_output_dir): their old outputs came from other inputs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
  usage
  [ $# -ge 1 ] && exit 0 || exit 2
fi
TASK_ARG="$1"
shift
EXTRA=("$@")

say() { echo "[run_task] $*"; }

if [ -z "${PYTHON:-}" ]; then
  PYTHON="$(bash "$ROOT/scripts/setup_env.sh" | tail -n 1)"
  case "$PYTHON" in /*) ;; *) PYTHON="$ROOT/$PYTHON" ;; esac
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

CONFIG_ARGS=()
[ -n "${HPARAMS_CONFIG:-}" ] && CONFIG_ARGS=(--config "$HPARAMS_CONFIG")
declare -A HP
HP_TEXT="$("$PYTHON" -m tinybert.data.hparams "$TASK_ARG" "${CONFIG_ARGS[@]}")"  # a one-line error for a bad task
while IFS='=' read -r key value; do
  [ -n "$key" ] && HP["$key"]="$value"
done <<< "$HP_TEXT"
TASK="$("$PYTHON" -c 'import sys; from tinybert.data.tasks import get_task; print(get_task(sys.argv[1]).name)' "$TASK_ARG")"

TEACHER="${TEACHER:-bert-base-uncased}"
TEACHER_TYPE="${TEACHER_TYPE:-bert}"
STUDENT="${STUDENT:-tinybert-6l-768d-v2}"
STUDENT_TYPE="${STUDENT_TYPE:-tinybert}"
GLUE_DIR="${GLUE_DIR:-}"
OUT_DIR="${OUT_DIR:-./tmp}"
DEVICE="${DEVICE:-gpu}"
SEED="${SEED:-42}"
NPROC="${NPROC:-1}"
GPUS="${GPUS:-}"
TASK_OUT="$OUT_DIR/$TASK"
CACHE_DIR="${CACHE_DIR:-$TASK_OUT/cache}"  # token stores and teacher logits, shared by every stage
STUDENT_SHAPE="${STUDENT_SHAPE:-}"
PRUNE_TO="${PRUNE_TO:-}"
if [ -n "$PRUNE_TO" ] && [ -n "$STUDENT_SHAPE" ]; then
  echo "error: give PRUNE_TO (pruning while distilling) or STUDENT_SHAPE (a one-shot cut), not both" >&2
  exit 2
fi
PRUNE_DIR="${PRUNE_DIR:-$TASK_OUT/prune}"
if [ -n "$PRUNE_TO" ]; then
  STUDENT="$PRUNE_DIR/best_pruned_model"
  STUDENT_TYPE=bert
fi
if [ -n "$STUDENT_SHAPE" ]; then
  if ! [[ "$STUDENT_SHAPE" =~ ^([0-9]+)x([0-9]+)(x([0-9]+))?$ ]]; then
    echo "error: STUDENT_SHAPE=$STUDENT_SHAPE: give LAYERSxHIDDEN or LAYERSxHIDDENxINTERMEDIATE, e.g. 3x192" >&2
    exit 2
  fi
  SHAPE_ARGS=(--num_layers "${BASH_REMATCH[1]}" --hidden_size "${BASH_REMATCH[2]}")
  [ -n "${BASH_REMATCH[4]}" ] && SHAPE_ARGS+=(--intermediate_size "${BASH_REMATCH[4]}")
  STUDENT_DIR="${STUDENT_DIR:-$TASK_OUT/student}"
  STUDENT="$STUDENT_DIR"
fi
TEACHER_DIR="${TEACHER_DIR:-$TASK_OUT/teacher}"
INTER_DIR="${INTER_DIR:-$TASK_OUT/inter}"
PRED_DIR="${PRED_DIR:-$TASK_OUT/pred}"

BATCH_SIZE="${BATCH_SIZE:-${HP[batch_size]}}"
MAX_SEQ_LENGTH="${MAX_SEQ_LENGTH:-${HP[max_seq_length]}}"
INTER_LR="${INTER_LR:-${HP[inter_lr]}}"
INTER_EPOCHS="${INTER_EPOCHS:-${HP[inter_epochs]}}"
PRED_LR="${PRED_LR:-${HP[pred_lr]}}"
PRUNE_EPOCHS="${PRUNE_EPOCHS:-$INTER_EPOCHS}"
PRUNE_LR="${PRUNE_LR:-$INTER_LR}"
PRED_EPOCHS="${PRED_EPOCHS:-${HP[pred_epochs]}}"
TEMPERATURE="${TEMPERATURE:-${HP[temperature]}}"
WARMUP="${WARMUP:-${HP[warmup_proportion]}}"
TEACHER_LR="${TEACHER_LR:-${HP[teacher_lr]}}"
TEACHER_EPOCHS="${TEACHER_EPOCHS:-${HP[teacher_epochs]}}"
TEACHER_BATCH_SIZE="${TEACHER_BATCH_SIZE:-${HP[batch_size]}}"
TEACHER_MAX_SEQ_LENGTH="${TEACHER_MAX_SEQ_LENGTH:-${HP[teacher_max_seq_length]}}"
MAX_STEPS="${MAX_STEPS:-}"
TEACHER_MAX_STEPS="${TEACHER_MAX_STEPS:-$MAX_STEPS}"
INTER_MAX_STEPS="${INTER_MAX_STEPS:-$MAX_STEPS}"
PRED_MAX_STEPS="${PRED_MAX_STEPS:-$MAX_STEPS}"
SAVE_STEPS="${SAVE_STEPS:-100}"
TEACHER_SAVE_STEPS="${TEACHER_SAVE_STEPS:-500}"
LOGGING_STEPS="${LOGGING_STEPS:-100}"
AUGMENT="${AUGMENT:-0}"
AUG_BERT="${AUG_BERT:-bert-base-uncased}"
AUG_N="${AUG_N:-${HP[augment_n]}}"
AUG_P="${AUG_P:-${HP[augment_p]}}"
AUG_M="${AUG_M:-${HP[augment_k]}}"
read -r -a TEACHER_FLAGS_A <<< "${TEACHER_FLAGS:-}"
read -r -a INTER_FLAGS_A <<< "${INTER_FLAGS:-}"
read -r -a PRED_FLAGS_A <<< "${PRED_FLAGS:-}"
read -r -a AUG_FLAGS_A <<< "${AUG_FLAGS:-}"

GLUE_ARGS=()
[ -n "$GLUE_DIR" ] && GLUE_ARGS=(--glue_dir "$GLUE_DIR")
steps_args() { if [ -n "$1" ]; then echo "--max_steps $1"; fi; }
read -r -a TEACHER_STEPS_A <<< "$(steps_args "$TEACHER_MAX_STEPS")"
read -r -a INTER_STEPS_A <<< "$(steps_args "$INTER_MAX_STEPS")"
read -r -a PRED_STEPS_A <<< "$(steps_args "$PRED_MAX_STEPS")"
AUG_ARGS=()
if [ "$AUGMENT" = "1" ]; then
  AUG_ARGS=(--use_aug)
fi

mkdir -p "$TASK_OUT"
STAGES_LOG="$TASK_OUT/stages.log"
say "task $TASK: teacher $TEACHER -> student ${STUDENT_SHAPE:+$STUDENT_SHAPE cut from the teacher, }${PRUNE_TO:+the teacher pruned to $PRUNE_TO, }$STUDENT, outputs in $TASK_OUT, device $DEVICE" \
    "$([ -n "$GPUS" ] && echo "(GPUs $GPUS)" || { [ "$NPROC" -gt 1 ] && echo "($NPROC processes)"; } || true)"
say "settings: teacher ${TEACHER_EPOCHS} epochs at lr $TEACHER_LR (batch $TEACHER_BATCH_SIZE," \
    "length $TEACHER_MAX_SEQ_LENGTH); stage 1 ${INTER_EPOCHS} epochs at lr $INTER_LR; stage 2 ${PRED_EPOCHS} epochs" \
    "at lr $PRED_LR, T $TEMPERATURE; batch $BATCH_SIZE, length $MAX_SEQ_LENGTH; augmentation" \
    "$([ "$AUGMENT" = 1 ] && echo "on (N=$AUG_N)" || echo off)${MAX_STEPS:+; max_steps $MAX_STEPS}"

# training DIR SCRIPT [flags]: one process, or several under paddle.distributed.launch
training() {
  local dir="$1"
  shift
  if [ -n "$GPUS" ]; then
    "$PYTHON" -m paddle.distributed.launch --gpus "$GPUS" --log_dir "$dir/launch_logs" "$@"
  elif [ "$NPROC" -gt 1 ]; then
    "$PYTHON" -m paddle.distributed.launch --nproc_per_node "$NPROC" --log_dir "$dir/launch_logs" "$@"
  else
    "$PYTHON" "$@"
  fi
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$STAGES_LOG"; }

RAN_STAGE=""  # the first stage that ran in this invocation: later stages are redone
# run_stage NAME DIR BEST CHECKPOINT -- command...
run_stage() {
  local name="$1" dir="$2" best="$3" checkpoint="$4"
  shift 5
  local marker="$dir/.run_task-$name.done" extra=() status="ran"
  if [ -e "$dir/$best" ] && [ -z "$RAN_STAGE" ] && { [ -f "$marker" ] || [ ! -d "$dir/$checkpoint" ]; }; then
    say "skip $name: $dir/$best exists"
    record "$name" skipped 0
    return 0
  fi
  if [ -n "$RAN_STAGE" ] && [ -e "$dir/$best" ]; then
    say "redo $name: $RAN_STAGE ran in this invocation, so $dir/$best is out of date"
    extra=(--overwrite_output_dir)
    status="redone"
  elif [ -d "$dir/$checkpoint" ] && [ ! -f "$marker" ]; then
    say "resume $name from $dir/$checkpoint (it was interrupted)"
    extra=(--resume)
    status="resumed"
  elif [ -f "$marker" ]; then
    say "redo $name: $dir/$best is missing"
    extra=(--overwrite_output_dir)
    status="redone"
  fi
  rm -f "$marker"
  say "$name: $* ${extra[*]}"
  local started
  started="$(now)"
  "$@" "${extra[@]}"
  mkdir -p "$dir"
  touch "$marker"
  local seconds
  seconds="$(elapsed "$started")"
  record "$name" "$status" "$seconds"
  say "$name done in ${seconds}s"
  RAN_STAGE="${RAN_STAGE:-$name}"
}

# 1. teacher fine-tuning
run_stage teacher "$TEACHER_DIR" best_model checkpoint-last -- \
  training "$TEACHER_DIR" "$ROOT/finetune_teacher.py" --model_type "$TEACHER_TYPE" --model_name_or_path "$TEACHER" \
  --task_name "$TASK" "${GLUE_ARGS[@]}" --max_seq_length "$TEACHER_MAX_SEQ_LENGTH" \
  --batch_size "$TEACHER_BATCH_SIZE" --learning_rate "$TEACHER_LR" --num_train_epochs "$TEACHER_EPOCHS" \
  "${TEACHER_STEPS_A[@]}" --warmup_proportion "$WARMUP" --logging_steps "$LOGGING_STEPS" \
  --save_steps "$TEACHER_SAVE_STEPS" --seed "$SEED" --output_dir "$TEACHER_DIR" --device "$DEVICE" \
  --cache_dir "$CACHE_DIR" "${TEACHER_FLAGS_A[@]}" "${EXTRA[@]}"

# 2. data augmentation (optional): <glue_dir>/<TASK>/train_aug.tsv, written atomically
if [ "$AUGMENT" = "1" ]; then
  if [ -z "$GLUE_DIR" ]; then
    GLUE_DIR="$("$PYTHON" -c 'from tinybert.runtime import quiet_paddlenlp; quiet_paddlenlp(); from tinybert.data.glue import default_glue_dir; print(default_glue_dir())' | tail -n 1)"
  fi
  AUG_FILE="$GLUE_DIR/$TASK/train_aug.tsv"
  if [ -f "$AUG_FILE" ]; then
    say "skip augmentation: $AUG_FILE exists"
    record augmentation skipped 0
  else
    if [ -z "${GLOVE_EMBS:-}" ]; then
      echo "error: AUGMENT=1 needs GLOVE_EMBS=<GloVe text file, e.g. glove.6B.300d.txt> (or an existing $AUG_FILE)" >&2
      exit 2
    fi
    say "augmentation: writing $AUG_FILE"
    started="$(now)"
    "$PYTHON" "$ROOT/data_augmentation.py" --pretrained_bert_model "$AUG_BERT" --glove_embs "$GLOVE_EMBS" \
      --glue_dir "$GLUE_DIR" --task_name "$TASK" --N "$AUG_N" --M "$AUG_M" --p "$AUG_P" --seed "$SEED" \
      --device "$DEVICE" "${AUG_FLAGS_A[@]}"
    seconds="$(elapsed "$started")"
    record augmentation ran "$seconds"
    say "augmentation done in ${seconds}s"
    RAN_STAGE="${RAN_STAGE:-augmentation}"
  fi
  GLUE_ARGS=(--glue_dir "$GLUE_DIR")
fi

# An extra --max_seq_length reaches every stage; the student builder and the final evaluation honour
# it (and --skip_bad_rows) too.
TEACHER_EVAL_LENGTH="$TEACHER_MAX_SEQ_LENGTH"
STUDENT_LENGTH="$MAX_SEQ_LENGTH"
SKIP_ARGS=()
for ((i = 0; i < ${#EXTRA[@]}; i++)); do
  case "${EXTRA[$i]}" in
    --max_seq_length) [ $((i + 1)) -lt ${#EXTRA[@]} ] && TEACHER_EVAL_LENGTH="${EXTRA[$((i + 1))]}" \
                        && STUDENT_LENGTH="$TEACHER_EVAL_LENGTH" ;;
    --max_seq_length=*) TEACHER_EVAL_LENGTH="${EXTRA[$i]#--max_seq_length=}"; STUDENT_LENGTH="$TEACHER_EVAL_LENGTH" ;;
    --skip_bad_rows) SKIP_ARGS=(--skip_bad_rows) ;;
  esac
done

# 2b. the student cut from the fine-tuned teacher (STUDENT_SHAPE): rebuilt when the teacher or the
# shape changed
if [ -n "$STUDENT_SHAPE" ]; then
  SHAPE_MARKER="$STUDENT_DIR/.run_task-student.shape"
  if [ -z "$RAN_STAGE" ] && [ -f "$SHAPE_MARKER" ] && [ "$(cat "$SHAPE_MARKER")" = "$STUDENT_SHAPE" ]; then
    say "skip student: $STUDENT_DIR is the $STUDENT_SHAPE student of this teacher"
    record student skipped 0
  else
    say "student: $STUDENT_SHAPE cut from $TEACHER_DIR/best_model by importance on the $TASK training data"
    started="$(now)"
    "$PYTHON" "$ROOT/scripts/build_student.py" --source "$TEACHER_DIR/best_model" "${SHAPE_ARGS[@]}" \
      --task_name "$TASK" "${GLUE_ARGS[@]}" --max_seq_length "$STUDENT_LENGTH" --device "$DEVICE" --seed "$SEED" \
      "${SKIP_ARGS[@]}" --output_dir "$STUDENT_DIR"
    echo "$STUDENT_SHAPE" > "$SHAPE_MARKER"
    seconds="$(elapsed "$started")"
    record student ran "$seconds"
    RAN_STAGE="${RAN_STAGE:-student}"
  fi
fi

DISTILL_COMMON=(--model_type "$STUDENT_TYPE" --task_name "$TASK" "${GLUE_ARGS[@]}" --max_seq_length "$MAX_SEQ_LENGTH"
  --batch_size "$BATCH_SIZE" --T "$TEMPERATURE" --teacher_model_type "$TEACHER_TYPE"
  --teacher_path "$TEACHER_DIR/best_model" --warmup_proportion "$WARMUP" --logging_steps "$LOGGING_STEPS"
  --save_steps "$SAVE_STEPS" --seed "$SEED" --device "$DEVICE" --cache_dir "$CACHE_DIR" "${AUG_ARGS[@]}")

# 3. stage 1: intermediate-layer distillation, or (PRUNE_TO) pruning while distilling, which replaces it
if [ -n "$PRUNE_TO" ]; then
  run_stage prune "$PRUNE_DIR" best_pruned_model checkpoint-last-prune -- \
    training "$PRUNE_DIR" "$ROOT/prune_distill.py" --prune_to "$PRUNE_TO" --task_name "$TASK" "${GLUE_ARGS[@]}" \
    --max_seq_length "$MAX_SEQ_LENGTH" --batch_size "$BATCH_SIZE" --T "$TEMPERATURE" \
    --teacher_model_type "$TEACHER_TYPE" --teacher_path "$TEACHER_DIR/best_model" --warmup_proportion "$WARMUP" \
    --logging_steps "$LOGGING_STEPS" --save_steps "$SAVE_STEPS" --seed "$SEED" --device "$DEVICE" \
    --cache_dir "$CACHE_DIR" "${AUG_ARGS[@]}" --learning_rate "$PRUNE_LR" --num_train_epochs "$PRUNE_EPOCHS" \
    "${INTER_STEPS_A[@]}" --output_dir "$PRUNE_DIR" "${INTER_FLAGS_A[@]}" "${EXTRA[@]}"
  STAGE2_SOURCE="$PRUNE_DIR/best_pruned_model"
else
  run_stage stage1 "$INTER_DIR" best_inter_model checkpoint-last-inter -- \
    training "$INTER_DIR" "$ROOT/task_distill.py" --student_model_name_or_path "$STUDENT" --intermediate_distill \
    "${DISTILL_COMMON[@]}" --learning_rate "$INTER_LR" --num_train_epochs "$INTER_EPOCHS" "${INTER_STEPS_A[@]}" \
    --output_dir "$INTER_DIR" "${INTER_FLAGS_A[@]}" "${EXTRA[@]}"
  STAGE2_SOURCE="$INTER_DIR/best_inter_model"
fi

# 4. stage 2: prediction-layer distillation from stage 1's (or the pruning's) student
run_stage stage2 "$PRED_DIR" best_model checkpoint-last -- \
  training "$PRED_DIR" "$ROOT/task_distill.py" --student_model_name_or_path "$STAGE2_SOURCE" \
  "${DISTILL_COMMON[@]}" --learning_rate "$PRED_LR" --num_train_epochs "$PRED_EPOCHS" "${PRED_STEPS_A[@]}" \
  --output_dir "$PRED_DIR" "${PRED_FLAGS_A[@]}" "${EXTRA[@]}"

# 5. final evaluation: results.json and results.md. Each model is evaluated at the length it was
# trained with: an extra --max_seq_length reached the teacher too, otherwise TEACHER_MAX_SEQ_LENGTH.
RESULTS="$TASK_OUT/results.json"
if [ -z "$RAN_STAGE" ] && [ -f "$RESULTS" ] && [ "$RESULTS" -nt "$PRED_DIR/best_model" ] \
   && [ "$RESULTS" -nt "$TEACHER_DIR/best_model" ]; then
  say "skip final evaluation: $RESULTS is newer than both models"
else
  say "final evaluation of $TEACHER_DIR/best_model and $PRED_DIR/best_model on the dev set"
  "$PYTHON" "$ROOT/scripts/evaluate_run.py" --task_name "$TASK" "${GLUE_ARGS[@]}" \
    --max_seq_length "$MAX_SEQ_LENGTH" --teacher_max_seq_length "$TEACHER_EVAL_LENGTH" --device "$DEVICE" \
    --teacher_dir "$TEACHER_DIR/best_model" --student_dir "$PRED_DIR/best_model" \
    --output_dir "$TASK_OUT" --stages_log "$STAGES_LOG" ${RUN_NAME:+--run_name "$RUN_NAME"} \
    --setting "teacher=$TEACHER" --setting "student=$STUDENT" ${STUDENT_SHAPE:+--setting "student_shape=$STUDENT_SHAPE"} \
    ${PRUNE_TO:+--setting "prune_to=$PRUNE_TO" --setting "prune_epochs=$PRUNE_EPOCHS"} --setting "batch_size=$BATCH_SIZE" \
    --setting "max_seq_length=$MAX_SEQ_LENGTH" --setting "inter_lr=$INTER_LR" --setting "pred_lr=$PRED_LR" \
    --setting "inter_epochs=$INTER_EPOCHS" --setting "pred_epochs=$PRED_EPOCHS" \
    --setting "temperature=$TEMPERATURE" --setting "teacher_lr=$TEACHER_LR" \
    --setting "teacher_epochs=$TEACHER_EPOCHS" --setting "augment=$([ "$AUGMENT" = 1 ] && echo "N=$AUG_N" || echo no)" \
    --setting "max_steps=$MAX_STEPS" --setting "seed=$SEED" --setting "device=$DEVICE" "${EXTRA[@]}"
fi
say "results: $TASK_OUT/results.json, $TASK_OUT/results.md"
cat "$TASK_OUT/results.md"
