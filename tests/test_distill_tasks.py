"""Both stages on a regression task (STS-B) and on MNLI's two dev files, in-process."""
import json
import os

import numpy as np
import pytest
import tiny

import task_distill


@pytest.mark.parametrize("task,num_labels", [("STS-B", 1), ("MNLI", 3), ("CoLA", 2)])
def test_two_stages_run_and_select_on_the_task_number(task, num_labels, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny.write_task("glue", task, n_train=24, n_dev=8)
    tiny.make_bert("teacher", layers=2, hidden=32, num_labels=num_labels)
    tiny.make_bert("student", layers=1, hidden=16, model_type="tinybert", fit_size=32, num_labels=num_labels)
    common = ["--task_name", task.lower(), "--glue_dir", "glue", "--teacher_path", "teacher", "--device", "cpu",
              "--batch_size", "8", "--max_steps", "3", "--save_steps", "2", "--output_dir", "out"]
    task_distill.main(common + ["--student_model_name_or_path", "student", "--intermediate_distill"])
    task_distill.main(common + ["--student_model_name_or_path", "out/best_inter_model", "--learning_rate", "1e-3"])
    with open("out/eval_results.jsonl") as handle:
        records = [json.loads(line) for line in handle]
    prediction = [r for r in records if r["stage"] == "prediction"]
    assert [r["step"] for r in prediction] == [2, 3]
    expected = {"STS-B": {"pearson", "spearman"}, "MNLI": {"acc_m", "acc_mm"}, "CoLA": {"mcc"}}[task]
    assert expected <= set(prediction[0])
    score = np.mean([prediction[0][k] for k in sorted(expected)])
    assert prediction[0]["score"] == pytest.approx(score)
    assert prediction[0]["best"]  # the first evaluation always saves, even with MCC <= 0
    assert os.path.isdir("out/best_model")


def test_sts_b_stage_two_learns_from_teacher_outputs_not_a_zero_loss(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny.write_task("glue", "STS-B", n_train=16, n_dev=8)
    tiny.make_bert("teacher", layers=2, hidden=32, num_labels=1)
    tiny.make_bert("student", layers=1, hidden=16, model_type="tinybert", fit_size=32, num_labels=1)
    task_distill.main(["--task_name", "sts-b", "--glue_dir", "glue", "--teacher_path", "teacher", "--device", "cpu",
                       "--batch_size", "8", "--max_steps", "2", "--logging_steps", "1", "--output_dir", "out",
                       "--student_model_name_or_path", "student"])
    logged = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[prediction] step")]
    losses = [float(line.split("loss=")[1].split()[0]) for line in logged]
    assert len(losses) == 2 and all(value > 0 for value in losses)
