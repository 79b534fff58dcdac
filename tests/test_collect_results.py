"""scripts/collect_results.py (the table of sweep.sh) and sweep.sh itself on tiny fixtures."""
import csv
import io
import json
import os
import subprocess
import sys

import pytest
import tiny
from scripts_import import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
collect_results = load_script("collect_results")


def write_result(root, run, task, teacher, student, **settings):
    directory = root / "runs" / run / task
    directory.mkdir(parents=True)
    record = {"run": run, "task": task,
              "teacher": {"score": teacher, "metrics": {"acc": teacher, "score": teacher}, "parameters": 22_700_000},
              "student": {"score": student, "metrics": {"acc": student, "score": student}, "parameters": 9_000_000},
              "student_vs_teacher": student / teacher,
              "settings": {"batch_size": "32", "inter_lr": "5e-05", "pred_lr": "3e-05", "inter_epochs": "20",
                           "pred_epochs": "3", "augment": "no", "temperature": "1.0", **settings}}
    (directory / "results.json").write_text(json.dumps(record))
    return directory


@pytest.fixture
def sweep_dir(tmp_path):
    write_result(tmp_path, "bs32_ilr5e-05_plr3e-05", "SST-2", 0.90, 0.85)
    write_result(tmp_path, "bs32_ilr5e-05_plr1e-04", "SST-2", 0.90, 0.88, pred_lr="1e-04")
    write_result(tmp_path, "bs32_ilr5e-05_plr3e-05", "RTE", 0.70, 0.65)
    return tmp_path


def test_rows_are_sorted_by_task_then_student_score(sweep_dir):
    result = collect_results.collect(str(sweep_dir))
    runs = [(row[1], row[0]) for row in result["rows"]]
    assert runs == [("RTE", "runs/bs32_ilr5e-05_plr3e-05 *"), ("SST-2", "runs/bs32_ilr5e-05_plr1e-04 *"),
                    ("SST-2", "runs/bs32_ilr5e-05_plr3e-05")]


def test_markdown_and_csv_hold_the_same_table(sweep_dir):
    result = collect_results.collect(str(sweep_dir))
    markdown = (sweep_dir / "sweep_results.md").read_text().splitlines()
    rows = list(csv.reader(io.StringIO((sweep_dir / "sweep_results.csv").read_text())))
    assert markdown[0] == "| " + " | ".join(rows[0]) + " |"
    assert len(markdown) == 2 + 3 and len(rows) == 1 + 3
    assert rows[0][:5] == ["run", "task", "teacher", "student", "student/teacher"]
    best = rows[2]
    assert best[1] == "SST-2" and best[3] == "0.8800" and best[4] == "97.8%" and best[10] == "1e-04"
    assert result["markdown"] == (sweep_dir / "sweep_results.md").read_text()


def test_each_task_has_one_best_run(sweep_dir):
    rows = collect_results.collect(str(sweep_dir))["rows"]
    assert sum(row[0].endswith(" *") for row in rows) == 2


def test_an_unreadable_results_file_is_left_out_with_a_warning(sweep_dir, capsys):
    broken = sweep_dir / "runs" / "broken" / "SST-2"
    broken.mkdir(parents=True)
    (broken / "results.json").write_text("{not json")
    rows = collect_results.collect(str(sweep_dir))["rows"]
    assert len(rows) == 3
    assert "broken/SST-2/results.json: unreadable" in capsys.readouterr().err


def test_a_directory_without_results_is_a_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "collect_results.py"), str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "no results.json under" in result.stderr and "Traceback" not in result.stderr


def test_max_steps_runs_show_their_step_budget(tmp_path):
    write_result(tmp_path, "tiny", "SST-2", 0.5, 0.5, max_steps="4")
    row = collect_results.collect(str(tmp_path))["rows"][0]
    assert row[11] == "20 (max_steps 4)"


def test_sweep_runs_the_grid_and_gathers_one_table(tmp_path):
    """Two stage-2 learning rates: one teacher and one stage-1 run shared, two stage-2 runs."""
    tiny.write_task(str(tmp_path / "glue"), "SST-2", n_train=16, n_dev=8)
    tiny.make_bert(str(tmp_path / "teacher0"), layers=2, hidden=16)
    tiny.make_bert(str(tmp_path / "student0"), layers=1, hidden=16, intermediate=32, model_type="tinybert",
                   fit_size=16)
    env = dict(os.environ, PYTHON=sys.executable, TEACHER=str(tmp_path / "teacher0"),
               STUDENT=str(tmp_path / "student0"), GLUE_DIR=str(tmp_path / "glue"), SWEEP_DIR=str(tmp_path / "sweep"),
               DEVICE="cpu", TASKS="sst-2", PRED_LRS="3e-5 1e-4", MAX_STEPS="2", BATCH_SIZE="8",
               TEACHER_BATCH_SIZE="8", SAVE_STEPS="2", TEACHER_SAVE_STEPS="2", LOGGING_STEPS="1")
    result = subprocess.run(["bash", os.path.join(ROOT, "scripts", "sweep.sh")], cwd=str(tmp_path), env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("skip teacher:") == 1 and result.stdout.count("skip stage1:") == 1
    rows = list(csv.reader(io.StringIO((tmp_path / "sweep" / "sweep_results.csv").read_text())))
    assert sorted(row[10] for row in rows[1:]) == ["1e-4", "3e-5"]
    assert {row[0].rstrip(" *") for row in rows[1:]} == {"runs/bs32_ilr5e-05_plr3e-5_T1.0",
                                                        "runs/bs32_ilr5e-05_plr1e-4_T1.0"}
    assert sorted(os.listdir(tmp_path / "sweep" / "SST-2" / "stage1")) == ["bs32_ilr5e-05"]
    assert (tmp_path / "sweep" / "sweep_results.md").is_file()
    record = json.loads((tmp_path / "sweep" / "runs" / "bs32_ilr5e-05_plr1e-4_T1.0" / "SST-2" / "results.json")
                        .read_text())
    assert record["max_seq_length"] == {"teacher": 128, "student": 64}  # each at its tinybert/data/glue.json length
