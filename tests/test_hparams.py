"""configs/glue.json and tinybert.hparams: the paper's per-task table as data (SPEC.md §6-§7)."""
import json
import os
import subprocess
import sys

import pytest

from tinybert.errors import UserError
from tinybert.hparams import DEFAULT_PATH, load_table, main, task_hparams
from tinybert.tasks import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The seed README's table: max_seq_length / stage-1 epochs / stage-2 epochs.
SEED_TABLE = {
    "SST-2": (64, 20, 3), "QQP": (128, 10, 3), "MRPC": (128, 20, 3), "CoLA": (64, 50, 3),
    "RTE": (128, 20, 3), "MNLI": (128, 10, 3), "QNLI": (128, 10, 3),
    "STS-B": (128, 20, 3), "WNLI": (128, 20, 3),  # not in the paper: the "otherwise" settings
}
AUGMENT_N = {"CoLA": 30, "MNLI": 10, "MRPC": 30, "SST-2": 20, "STS-B": 30, "QQP": 10, "QNLI": 20, "RTE": 30,
             "WNLI": 20}


def test_table_lists_the_nine_glue_tasks_in_canonical_spelling():
    table = load_table()
    assert sorted(table["tasks"]) == sorted(TASKS)


@pytest.mark.parametrize("task", sorted(SEED_TABLE))
def test_values_match_the_seed_table(task):
    values = task_hparams(task)
    assert (values["max_seq_length"], values["inter_epochs"], values["pred_epochs"]) == SEED_TABLE[task]
    assert values["inter_lr"] == 5e-5 and values["pred_lr"] == 3e-5 and values["batch_size"] == 32
    assert values["augment_n"] == AUGMENT_N[task]
    assert values["teacher_lr"] == 2e-5 and values["teacher_epochs"] == 3


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
    out = subprocess.run([sys.executable, "-m", "tinybert.hparams", "sst-2", "max_seq_length"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert out == "64\n"
    lr = subprocess.run([sys.executable, "-m", "tinybert.hparams", "CoLA", "inter_lr"], cwd=ROOT,
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
