"""scripts/run_task.sh end to end on tiny fixtures: every stage, the results files, the skips."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_TASK = os.path.join(ROOT, "scripts", "run_task.sh")
STAGE_OUTPUTS = ("teacher/best_model", "inter/best_inter_model", "pred/best_model")


def tiny_env(work, **overrides):
    """Tiny models, tiny steps; hyperparameters not overridden come from tinybert/data/glue.json."""
    env = dict(os.environ)
    env.update(PYTHON=sys.executable, TEACHER=str(work / "teacher0"), STUDENT=str(work / "student0"),
               GLUE_DIR=str(work / "glue"), OUT_DIR=str(work / "out"), DEVICE="cpu", MAX_STEPS="4",
               BATCH_SIZE="8", TEACHER_BATCH_SIZE="8", SAVE_STEPS="2", TEACHER_SAVE_STEPS="2", LOGGING_STEPS="2",
               AUGMENT="1", GLOVE_EMBS=str(work / "glove.txt"), AUG_BERT="none", AUG_N="2")
    env.update(overrides)
    return env


def run_task(work, *extra, task="SST-2", **overrides):
    return subprocess.run(["bash", RUN_TASK, task, *extra], cwd=str(work), env=tiny_env(work, **overrides),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("run_task")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=24, n_dev=12)
    tiny.make_bert(str(work / "teacher0"), layers=4, hidden=32)
    tiny.make_bert(str(work / "student0"), layers=2, hidden=16, intermediate=32, model_type="tinybert", fit_size=32)
    tiny.write_glove(str(work / "glove.txt"))
    result = run_task(work, "--max_seq_length", "24")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work, result


def mtimes(work):
    task = work / "out" / "SST-2"
    paths = [task / p for p in STAGE_OUTPUTS] + [task / "results.json", task / "results.md",
                                                  work / "glue" / "SST-2" / "train_aug.tsv"]
    return {str(p): os.stat(p).st_mtime_ns for p in paths}


def read_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_every_stage_runs_and_leaves_its_output(first_run):
    work, result = first_run
    task = work / "out" / "SST-2"
    for output in STAGE_OUTPUTS:
        assert (task / output / "config.json").is_file(), output
    assert (work / "glue" / "SST-2" / "train_aug.tsv").is_file()
    assert "skip" not in result.stdout
    log = [line.split("\t") for line in (task / "stages.log").read_text().splitlines()]
    assert [(name, status) for name, status, _ in log] == [
        ("teacher", "ran"), ("augmentation", "ran"), ("stage1", "ran"), ("stage2", "ran")]


def test_results_json_holds_both_models_and_the_settings(first_run):
    work, _ = first_run
    record = read_json(work / "out" / "SST-2" / "results.json")
    assert record["task"] == "SST-2"
    assert record["teacher"]["layers"] == 4 and record["student"]["layers"] == 2
    assert record["teacher"]["hidden_size"] == 32 and record["student"]["hidden_size"] == 16
    assert 0.0 <= record["student"]["metrics"]["acc"] <= 1.0
    assert record["student"]["score"] == record["student"]["metrics"]["score"]
    assert record["student_vs_teacher"] == pytest.approx(record["student"]["score"] / record["teacher"]["score"])
    assert record["student"]["parameters"] < record["teacher"]["parameters"]
    assert record["dev_examples"] == 12
    assert record["max_seq_length"] == {"teacher": 24, "student": 24}  # the extra flag reached both
    assert record["settings"]["augment"] == "N=2" and record["settings"]["inter_lr"] == "5e-05"
    assert set(record["stages"]) == {"teacher", "augmentation", "stage1", "stage2"}
    assert all(stage["seconds"] > 0 for stage in record["stages"].values())


def test_results_md_is_one_markdown_row_under_a_header(first_run):
    work, _ = first_run
    lines = (work / "out" / "SST-2" / "results.md").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("| run | task | teacher | student |")
    assert lines[1].startswith("|---|")
    assert "| SST-2 |" in lines[2] and "N=2" in lines[2]


def test_hyperparameters_come_from_the_config_and_extra_flags_reach_every_stage(first_run):
    work, _ = first_run
    task = work / "out" / "SST-2"
    teacher = read_json(task / "teacher" / "run_finetune.json")["arguments"]
    stage1 = read_json(task / "inter" / "run_intermediate.json")["arguments"]
    stage2 = read_json(task / "pred" / "run_prediction.json")["arguments"]
    from tinybert.data.hparams import task_hparams

    table = task_hparams("SST-2")
    assert (teacher["learning_rate"], teacher["num_train_epochs"]) == (table["teacher_lr"], table["teacher_epochs"])
    assert (stage1["learning_rate"], stage1["num_train_epochs"]) == (table["inter_lr"], table["inter_epochs"])
    assert stage1["T"] == stage2["T"] == table["temperature"]
    assert (stage2["learning_rate"], stage2["num_train_epochs"]) == (table["pred_lr"], table["pred_epochs"])
    assert stage1["intermediate_distill"] and not stage2["intermediate_distill"]
    assert stage1["use_aug"] and stage2["use_aug"]
    assert stage2["student_model_name_or_path"].endswith("inter/best_inter_model")
    for record in (teacher, stage1, stage2):
        assert record["max_steps"] == 4
        assert record["max_seq_length"] == 24  # the extra flag, after the defaults


def test_second_run_skips_every_stage_and_touches_nothing(first_run):
    work, _ = first_run
    before = mtimes(work)
    result = run_task(work, "--max_seq_length", "24")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for message in ("skip teacher:", "skip augmentation:", "skip stage1:", "skip stage2:", "skip final evaluation:"):
        assert message in out, out
    assert "resume" not in out and "redo" not in out
    assert mtimes(work) == before
    assert "| SST-2 |" in out  # the row is printed again


def test_an_interrupted_stage_is_resumed_and_the_results_redone(first_run):
    work, _ = first_run
    task = work / "out" / "SST-2"
    os.remove(task / "pred" / ".run_task-stage2.done")  # as if stage 2 had been killed after a checkpoint
    before = mtimes(work)
    result = run_task(work, "--max_seq_length", "24")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skip stage1:" in result.stdout
    assert "resume stage2 from" in result.stdout
    assert "final evaluation of" in result.stdout
    after = mtimes(work)
    assert after[str(task / "results.json")] > before[str(task / "results.json")]
    assert after[str(task / "teacher" / "best_model")] == before[str(task / "teacher" / "best_model")]
    assert (task / "pred" / ".run_task-stage2.done").is_file()


def test_a_missing_stage_output_is_recreated_and_later_stages_redone(first_run):
    work, _ = first_run
    task = work / "out" / "SST-2"
    shutil.rmtree(task / "inter" / "best_inter_model")
    before = mtimes_without(work, "inter/best_inter_model")
    result = run_task(work, "--max_seq_length", "24")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skip teacher:" in result.stdout and "redo stage1:" in result.stdout and "redo stage2:" in result.stdout
    assert (task / "inter" / "best_inter_model" / "config.json").is_file()
    assert os.stat(task / "pred" / "best_model").st_mtime_ns > before[str(task / "pred" / "best_model")]


def mtimes_without(work, missing):
    task = work / "out" / "SST-2"
    return {str(task / p): os.stat(task / p).st_mtime_ns for p in STAGE_OUTPUTS if p != missing}


def test_augmentation_without_glove_is_a_one_line_error(tmp_path):
    tiny.write_task(str(tmp_path / "glue"), "SST-2", n_train=8, n_dev=4)
    tiny.make_bert(str(tmp_path / "teacher0"), layers=2, hidden=16)
    done = tmp_path / "out" / "SST-2" / "teacher" / "best_model"
    shutil.copytree(tmp_path / "teacher0", done)  # a teacher given by the user: no fine-tuning
    result = run_task(tmp_path, GLOVE_EMBS="")
    assert result.returncode == 2
    assert "skip teacher:" in result.stdout
    assert "AUGMENT=1 needs GLOVE_EMBS" in result.stderr


def test_unknown_task_fails_before_any_training(tmp_path):
    result = run_task(tmp_path, task="SST-3")
    assert result.returncode == 2
    assert "unknown task 'SST-3'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_help_lists_the_variables():
    result = subprocess.run(["bash", RUN_TASK, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for name in ("TEACHER=bert-base-uncased", "STUDENT=tinybert-6l-768d-v2", "GLUE_DIR", "OUT_DIR", "DEVICE",
                 "AUGMENT", "MAX_STEPS", "INTER_EPOCHS"):
        assert name in result.stdout


def test_nproc_runs_every_training_stage_under_the_launcher(tmp_path):
    tiny.write_task(str(tmp_path / "glue"), "SST-2", n_train=32, n_dev=8)
    tiny.make_bert(str(tmp_path / "teacher0"), layers=2, hidden=32)
    tiny.make_bert(str(tmp_path / "student0"), layers=1, hidden=16, intermediate=32, model_type="tinybert", fit_size=32)
    result = run_task(tmp_path, "--max_seq_length", "24", NPROC="2", AUGMENT="0", MAX_STEPS="2", OMP_NUM_THREADS="1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "(2 processes)" in result.stdout
    for stage in ("teacher", "inter", "pred"):
        logs = tmp_path / "out" / "SST-2" / stage / "launch_logs"
        for rank in (0, 1):
            assert "parameters identical on all 2 processes" in (logs / f"workerlog.{rank}").read_text()
    run = read_json(tmp_path / "out" / "SST-2" / "pred" / "run_prediction.json")["run"]
    assert run["global_batch_size"] == 16 and run["processes"] == 2
    import tinybert

    assert run["version"] == tinybert.__version__ and "device" in run


def test_student_shape_cuts_the_student_from_the_fine_tuned_teacher(tmp_path):
    tiny.write_task(str(tmp_path / "glue"), "SST-2", n_train=24, n_dev=8)
    tiny.make_bert(str(tmp_path / "teacher0"), layers=4, hidden=32, heads=2)
    result = run_task(tmp_path, "--max_seq_length", "24", STUDENT_SHAPE="2x16", STUDENT="ignored", AUGMENT="0",
                      MAX_STEPS="2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    task = tmp_path / "out" / "SST-2"
    built = read_json(task / "student" / "student_source.json")
    assert built["source"] == str(task / "teacher" / "best_model")
    assert (built["kept_layers_0_based"], built["hidden_size"], built["intermediate_size"]) == ([1, 3], 16, 32)
    assert built["criterion"].startswith("importance") and built["max_seq_length"] == 24
    stage1 = read_json(task / "inter" / "run_intermediate.json")["arguments"]
    assert stage1["student_model_name_or_path"] == str(task / "student")
    record = read_json(task / "results.json")
    assert record["student"]["layers"] == 2 and record["student"]["hidden_size"] == 16
    assert record["settings"]["student_shape"] == "2x16"
    log = [line.split("\t")[:2] for line in (task / "stages.log").read_text().splitlines()]
    assert log == [["teacher", "ran"], ["student", "ran"], ["stage1", "ran"], ["stage2", "ran"]]

    again = run_task(tmp_path, "--max_seq_length", "24", STUDENT_SHAPE="2x16", AUGMENT="0", MAX_STEPS="2")
    assert again.returncode == 0 and "skip student:" in again.stdout and "skip stage1:" in again.stdout


def test_prune_to_prunes_the_fine_tuned_teacher_then_runs_stage_2_on_it(tmp_path):
    tiny.write_task(str(tmp_path / "glue"), "SST-2", n_train=24, n_dev=8)
    tiny.make_bert(str(tmp_path / "teacher0"), layers=4, hidden=32, heads=2)
    result = run_task(tmp_path, "--max_seq_length", "24", PRUNE_TO="2x16", AUGMENT="0", MAX_STEPS="2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    task = tmp_path / "out" / "SST-2"
    pruned = read_json(task / "prune" / "best_pruned_model" / "pruning.json")
    assert pruned["target"] == "2x16" and len(pruned["kept_layers_0_based"]) == 2
    stage2 = read_json(task / "pred" / "run_prediction.json")["arguments"]
    assert stage2["student_model_name_or_path"] == str(task / "prune" / "best_pruned_model")
    assert stage2["model_type"] == "bert"
    record = read_json(task / "results.json")
    assert record["student"]["layers"] == 2 and record["student"]["hidden_size"] == 16
    log = [line.split("\t")[:2] for line in (task / "stages.log").read_text().splitlines()]
    assert log == [["teacher", "ran"], ["prune", "ran"], ["stage2", "ran"]]
    both = run_task(tmp_path, PRUNE_TO="2x16", STUDENT_SHAPE="2x16")
    assert both.returncode == 2 and "not both" in both.stderr


def test_a_malformed_student_shape_is_a_one_line_error(tmp_path):
    result = run_task(tmp_path, STUDENT_SHAPE="3-192")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "STUDENT_SHAPE=3-192: give LAYERSxHIDDEN" in result.stderr and not (tmp_path / "out").exists()
