"""tinybert/data/glue.json and tinybert.data.hparams: the paper's per-task table as data
(docs/math.md#paper-settings, docs/formats.md#per-task-hyperparameter-table)."""
import json
import os
import subprocess
import sys

import pytest

from tinybert.data.hparams import DEFAULT_PATH, load_table, main, task_hparams
from tinybert.data.tasks import CLUE_TASKS, GLUE_TASKS, TASKS
from tinybert.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_table_lists_every_glue_and_clue_task_in_canonical_spelling():
    table = load_table()
    assert sorted(table["tasks"]) == sorted(TASKS)


@pytest.mark.parametrize("task", sorted(GLUE_TASKS))
def test_single_sentence_tasks_use_length_64_and_pair_tasks_128(task):
    """The paper's rule, checked against the task table rather than restated per task."""
    assert task_hparams(task)["max_seq_length"] == (128 if TASKS[task].is_pair else 64)


@pytest.mark.parametrize("task", sorted(CLUE_TASKS))
def test_clue_tasks_distil_at_the_teachers_length(task):
    """The student sees what the teacher was fine-tuned on (ERNIE 3.0's CLUE settings)."""
    values = task_hparams(task)
    assert values["max_seq_length"] == values["teacher_max_seq_length"]


def test_the_large_sets_get_fewer_stage_one_epochs_and_more_augmentation_goes_to_small_sets():
    """MNLI, QQP and QNLI (hundreds of thousands of examples) are distilled for fewer epochs
    than every other task and get the least augmentation; CoLA gets the most epochs."""
    values = {task: task_hparams(task) for task in GLUE_TASKS}
    large = {"MNLI", "QQP", "QNLI"}
    glue = set(GLUE_TASKS)
    assert max(values[t]["inter_epochs"] for t in large) < min(values[t]["inter_epochs"] for t in glue - large)
    assert max(values, key=lambda t: values[t]["inter_epochs"]) == "CoLA"
    assert min(values[t]["augment_n"] for t in glue - large) >= max(values[t]["augment_n"] for t in large)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_value_is_usable_by_the_scripts(task):
    values = task_hparams(task)
    for key in ("batch_size", "max_seq_length", "inter_epochs", "pred_epochs", "teacher_epochs",
                "teacher_max_seq_length", "augment_n", "augment_k"):
        assert isinstance(values[key], int) and values[key] >= 1, key
    for key in ("inter_lr", "pred_lr", "teacher_lr", "temperature"):
        assert isinstance(values[key], float) and values[key] > 0, key
    assert 0 <= values["warmup_proportion"] < 1 and 0 < values["augment_p"] <= 1
    assert values["pred_lr"] < values["inter_lr"]  # stage 2 fine-tunes what stage 1 built


def test_every_task_entry_is_complete_without_the_defaults():
    raw = json.load(open(DEFAULT_PATH, encoding="utf-8"))
    keys = {"batch_size", "max_seq_length", "inter_epochs", "pred_epochs", "inter_lr", "pred_lr", "teacher_lr",
            "teacher_epochs", "teacher_max_seq_length", "augment_n"}
    for task, entry in raw["tasks"].items():
        assert keys <= set(entry), task


def test_task_names_are_case_insensitive():
    assert task_hparams("sst2") == task_hparams("SST-2") == task_hparams("sst-2")
    assert task_hparams("mnli")["inter_epochs"] == 10


def test_task_entry_overrides_defaults_and_absent_tasks_use_defaults(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"defaults": {"batch_size": 32, "inter_epochs": 20},
                                "tasks": {"RTE": {"inter_epochs": 7}}}))
    assert task_hparams("rte", str(path)) == {"batch_size": 32, "inter_epochs": 7}
    assert task_hparams("CoLA", str(path)) == {"batch_size": 32, "inter_epochs": 20}


@pytest.mark.parametrize("text", ["not json", '{"tasks": {}}', '{"defaults": {}, "tasks": {"sst-2": {}}}',
                                  '{"defaults": {}, "tasks": {"SST-3": {}}}',
                                  '{"defaults": {"batch_size": [32]}, "tasks": {}}'])
def test_a_malformed_table_is_a_user_error(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(UserError):
        load_table(str(path))


def test_cli_prints_one_value_for_shell_scripts():
    out = subprocess.run([sys.executable, "-m", "tinybert.data.hparams", "sst-2", "max_seq_length"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out == "64\n"
    lr = subprocess.run([sys.executable, "-m", "tinybert.data.hparams", "CoLA", "inter_lr"], cwd=ROOT,
                        capture_output=True, text=True, check=True).stdout
    assert float(lr) == 5e-5


def test_cli_without_key_prints_every_setting(capsys):
    main(["qqp"])
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["inter_epochs"] == "10" and lines["augment_n"] == "10"


@pytest.mark.parametrize("argv", [["SST-3", "batch_size"], ["SST-2", "lr"]])
def test_cli_errors_are_one_line_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
