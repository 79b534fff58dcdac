#!/usr/bin/env bash
# The Paddle 2.6 leg: builds (once) a venv with requirements-paddle26.txt (paddlepaddle 2.6.2, what PyPI
# serves GPU users as paddlepaddle-gpu) and runs on it the tests of export, predict, the GPU paths and one
# training job of each kind (fine-tuning, task distillation stage 1 and 2, general distillation, augmentation).
#   bash scripts/test_paddle26.sh [extra pytest args]     (venv: $TINYBERT_VENV26, default .venv-paddle26)
# Not part of scripts/test.sh / CI: a second 1.8 GB venv to download and build, then the tests, on top of CI's
# own run would leave little of its 15 minutes (figures: docs/environment.md#paddle-26).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$(TINYBERT_VENV="${TINYBERT_VENV26:-.venv-paddle26}" bash scripts/setup_env.sh requirements-paddle26.txt | tail -n 1)"
"$PY" -c "import numpy, paddle; print('paddle', paddle.__version__, 'from', paddle.__file__)"
TESTS=(
  tests/test_export.py
  tests/test_predict.py
  tests/test_accelerate_and_export.py
  tests/test_gpu_paths.py
  # fine-tuning, then stage 1 and stage 2 of task distillation (one module fixture runs all three)
  "tests/test_task_distill_cli.py::test_stage_one_prints_the_layer_map_and_every_loss_term"
  "tests/test_task_distill_cli.py::test_distilled_student_agrees_with_the_teacher_on_the_dev_set"
  "tests/test_task_distill_cli.py::test_both_stages_append_their_evaluations_and_write_visualdl_logs"
  "tests/test_general_distill.py::test_the_general_student_loads_with_paddlenlp_and_records_its_projections"
  # pruning while distilling: the masked forward, the job and the slice
  "tests/test_prune.py::test_pruning_to_the_full_shape_changes_nothing"
  # two processes under the launcher: training, shared evaluation, control messages, a wait that times out
  "tests/test_multiprocess.py::test_stage_one_runs_on_two_processes_with_the_projections_inside_the_wrapped_forward"
  "tests/test_multiprocess.py::test_two_processes_evaluate_and_predict_exactly_what_one_process_computes"
  "tests/test_distributed_waits.py::test_every_control_message_reaches_gloo_as_an_explicit_host_tensor"
  "tests/test_distributed_waits.py::test_a_wait_past_its_limit_stops_every_rank_with_one_line_and_leaves_no_half_written_store"
  "tests/test_augmentation_scale.py::test_the_file_does_not_depend_on_chunk_rows_or_batching"
  "tests/test_augmentation_scale.py::test_parts_scored_on_another_device_are_refused_in_one_line_and_touched_not"
  "tests/test_augmentation_scale.py::test_the_compute_record_names_the_gpu_and_whether_its_matmuls_are_tf32"
)
exec "$PY" -m pytest "${TESTS[@]}" -q -p no:cacheprovider -n 2 --dist loadfile "$@"
