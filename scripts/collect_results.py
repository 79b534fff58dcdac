"""Gather the results.json files of many run_task.sh runs into one table (markdown and CSV).

    python scripts/collect_results.py SWEEP_DIR [--output PREFIX]

Every ``results.json`` under SWEEP_DIR (at any depth) becomes one row: run name, task,
teacher and student dev score (the task's selection number, docs/math.md#selection-numbers), the student's share
of the teacher, every student metric, parameter counts and the run's settings (batch size,
learning rates, epochs, augmentation, temperature). Rows are sorted by task, then by student
score, best first; the best run of each task is marked with ``*``. Writes ``PREFIX.md`` and
``PREFIX.csv`` (default ``SWEEP_DIR/sweep_results``) and prints the markdown table.
This script does not import Paddle.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinybert.errors import UserError, run_cli  # noqa: E402
from tinybert.report import (  # noqa: E402
    RESULT_COLUMNS,
    csv_table,
    markdown_table,
    result_row,
    write_text,
)

RESULTS_FILE = "results.json"


def find_results(root: str) -> List[str]:
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        if RESULTS_FILE in files:
            found.append(os.path.join(directory, RESULTS_FILE))
    return sorted(found)


def load_records(paths: List[str], root: str) -> Tuple[List[dict], List[str]]:
    """Readable records (the run name defaults to the path under ``root``) and warnings."""
    records, problems = [], []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
            if not isinstance(record, dict) or "task" not in record:
                raise ValueError("no 'task' entry")
        except (OSError, ValueError) as err:
            problems.append(f"{path}: unreadable ({err}); left out")
            continue
        relative = os.path.relpath(os.path.dirname(path), root)
        record["run"] = os.path.dirname(relative) or record.get("run") or relative
        records.append(record)
    return records, problems


def _score(record: dict) -> float:
    value = (record.get("student") or {}).get("score")
    return float("-inf") if value is None else float(value)


def sort_and_mark(records: List[dict]) -> List[List[object]]:
    """Rows sorted by task then student score (best first); each task's best run marked ``*``."""
    ordered = sorted(records, key=lambda r: (r["task"], -_score(r), str(r.get("run"))))
    rows, seen = [], set()
    for record in ordered:
        row = result_row(record)
        if record["task"] not in seen and _score(record) != float("-inf"):
            row[0] = f"{row[0]} *"
            seen.add(record["task"])
        rows.append(row)
    return rows


def collect(root: str, output_prefix: str = None) -> dict:
    if not os.path.isdir(root):
        raise UserError(f"{root} is not a directory; give the OUT_DIR/SWEEP_DIR of run_task.sh or sweep.sh")
    records, problems = load_records(find_results(root), root)
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if not records:
        raise UserError(f"no {RESULTS_FILE} under {root}: no run_task.sh run has finished there yet")
    rows = sort_and_mark(records)
    prefix = output_prefix or os.path.join(root, "sweep_results")
    markdown = markdown_table(RESULT_COLUMNS, rows)
    write_text(prefix + ".md", markdown)
    write_text(prefix + ".csv", csv_table(RESULT_COLUMNS, rows))
    return {"rows": rows, "markdown": markdown, "markdown_path": prefix + ".md", "csv_path": prefix + ".csv"}


@run_cli
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="directory searched for results.json files")
    parser.add_argument("--output", default=None, help="prefix of the .md and .csv files (default ROOT/sweep_results)")
    args = parser.parse_args(argv)
    result = collect(args.root, args.output)
    print(result["markdown"], end="")
    print(f"{len(result['rows'])} run(s): {result['markdown_path']}, {result['csv_path']}")
    return result


if __name__ == "__main__":
    main()
