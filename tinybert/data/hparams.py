"""The per-task hyperparameter table (``tinybert/data/glue.json``), read by scripts and sweeps.

The table is data, not code: ``{"defaults": {...}, "tasks": {"SST-2": {...}}}``. A task's
settings are the defaults overridden by its own entry. Values are the paper's (TinyBERT
paper section 4.2; docs/math.md#paper-settings): stage 1 ("inter") 20 epochs (10 for
MNLI/QQP/QNLI, 50 for CoLA) at lr 5e-5, stage 2 ("pred") 3 epochs at 3e-5, batch 32, max
length 64 for SST-2 and CoLA and 128 otherwise; augmentation N from the paper's code. STS-B
and WNLI are not in the paper's table: they take the "otherwise" settings (128 / 20 / 3),
like the other small sentence-pair sets MRPC and RTE; WNLI's N (20) is our choice. This is
the only place the per-task N lives: ``data_augmentation.py`` reads its default from here.

Shell scripts read one value with::

    python -m tinybert.data.hparams SST-2 max_seq_length      # prints 64
    python -m tinybert.data.hparams sst-2                     # prints every key=value

Importing this module does not import Paddle.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, Optional

from ..errors import UserError, run_cli
from .tasks import TASKS, get_task

DEFAULT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "glue.json")  # package data: installs with it


def load_table(path: Optional[str] = None) -> dict:
    """Read and check the table; keys starting with ``_`` (comments) are dropped."""
    path = path or DEFAULT_PATH
    try:
        with open(path, encoding="utf-8") as handle:
            table = json.load(handle)
    except FileNotFoundError:
        raise UserError(f"hyperparameter table {path} not found; pass an existing JSON file") from None
    except (OSError, ValueError) as err:
        raise UserError(f"hyperparameter table {path} is not valid JSON ({err}); fix the file") from None
    if not isinstance(table, dict) or not isinstance(table.get("defaults"), dict) \
            or not isinstance(table.get("tasks"), dict):
        raise UserError(f"hyperparameter table {path} must be an object with 'defaults' and 'tasks' objects")
    tasks = {}
    for name, entry in table["tasks"].items():
        if name.startswith("_"):
            continue
        spec = get_task(name)
        if spec.name != name:
            raise UserError(f"{path}: task '{name}' must be spelt '{spec.name}'")
        if not isinstance(entry, dict):
            raise UserError(f"{path}: the entry of task {name} must be an object of key: value")
        tasks[name] = {k: v for k, v in entry.items() if not k.startswith("_")}
    for name, values in [("defaults", table["defaults"])] + list(tasks.items()):
        for key, value in values.items():
            if not key.startswith("_") and (isinstance(value, bool) or not isinstance(value, (int, float, str))):
                raise UserError(f"{path}: {name}.{key} = {value!r} must be a number or a string")
    defaults = {k: v for k, v in table["defaults"].items() if not k.startswith("_")}
    return {"defaults": defaults, "tasks": tasks}


def task_hparams(task_name: str, path: Optional[str] = None) -> Dict[str, object]:
    """The settings of one task (case-insensitive name): defaults updated by the task's entry."""
    spec = get_task(task_name)
    table = load_table(path)
    merged = dict(table["defaults"])
    merged.update(table["tasks"].get(spec.name, {}))
    return merged


def format_value(value) -> str:
    """How a value is printed for shells: ``32``, ``5e-05``, ``1.0`` (Python's shortest repr)."""
    return str(value)


@run_cli
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tinybert.data.hparams",
        description="Print a task's hyperparameter from tinybert/data/glue.json (all of them without KEY).")
    parser.add_argument("task", help=f"GLUE task, case-insensitive: {', '.join(TASKS)}")
    parser.add_argument("key", nargs="?", help="e.g. max_seq_length, inter_epochs, pred_lr, augment_n")
    parser.add_argument("--config", default=None, help=f"the table (default {DEFAULT_PATH})")
    args = parser.parse_args(argv)
    values = task_hparams(args.task, args.config)
    if args.key is None:
        for key, value in values.items():
            print(f"{key}={format_value(value)}")
        return
    if args.key not in values:
        raise UserError(f"no hyperparameter '{args.key}' for {get_task(args.task).name}: "
                        f"use one of {', '.join(values)}")
    print(format_value(values[args.key]))


if __name__ == "__main__":
    main()
