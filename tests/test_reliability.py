"""Issue 5: exact resume after SIGKILL, clean SIGINT/SIGTERM, NaN guard, atomic checkpoints."""
import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("reliability")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=200, n_dev=16)
    tiny.make_bert(str(work / "teacher"), layers=2, hidden=32)
    tiny.make_bert(str(work / "student"), layers=1, hidden=16, model_type="tinybert", fit_size=32)
    return work


def finetune_cmd(output, *extra):
    return [sys.executable, os.path.join(ROOT, "finetune_teacher.py"), "--model_name_or_path", "teacher",
            "--task_name", "SST-2", "--glue_dir", "glue", "--device", "cpu", "--batch_size", "8",
            "--num_train_epochs", "2", "--save_steps", "4", "--logging_steps", "1000", "--learning_rate", "1e-3",
            "--output_dir", output, *extra]


def stage1_cmd(output, *extra):
    return [sys.executable, os.path.join(ROOT, "task_distill.py"), "--student_model_name_or_path", "student",
            "--teacher_path", "teacher", "--task_name", "sst-2", "--intermediate_distill", "--glue_dir", "glue",
            "--device", "cpu", "--batch_size", "8", "--num_train_epochs", "2", "--save_steps", "4",
            "--logging_steps", "1000", "--learning_rate", "1e-3", "--max_seq_length", "32", "--output_dir", output,
            *extra]


def checkpoint_step(directory):
    import pickle

    with open(os.path.join(directory, "trainer_state.pkl"), "rb") as handle:
        return pickle.load(handle)["progress"]["step"]


def wait_for_checkpoint_then(proc, directory, min_step, sig):
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if checkpoint_step(directory) >= min_step:
                break
        except (OSError, EOFError, ValueError):
            pass
        assert proc.poll() is None, "run finished before it could be interrupted"
        time.sleep(0.05)
    time.sleep(0.1)  # a step or two more: the kill lands between checkpoints
    proc.send_signal(sig)
    return proc.wait(timeout=120)


def max_weight_difference(file_a, file_b):
    import paddle

    a, b = paddle.load(file_a), paddle.load(file_b)
    assert set(a) == set(b)
    return max(float(np.abs(a[k].numpy() - b[k].numpy()).max()) for k in a)


@pytest.mark.parametrize("make_cmd,checkpoint,weights", [
    (finetune_cmd, "checkpoint-last", "model.pdparams"),
    (stage1_cmd, "checkpoint-last-inter", "student.pdparams"),
], ids=["finetune", "distill-stage1"])
def test_sigkill_then_resume_ends_with_the_weights_of_an_uninterrupted_run(work, make_cmd, checkpoint, weights):
    reference = subprocess.run(make_cmd("uninterrupted"), cwd=work, capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr
    proc = subprocess.Popen(make_cmd("killed"), cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for_checkpoint_then(proc, str(work / "killed" / checkpoint), 8, signal.SIGKILL) == -signal.SIGKILL
    killed_at = checkpoint_step(str(work / "killed" / checkpoint))
    assert 8 <= killed_at < 50
    resumed = subprocess.run(make_cmd("killed", "--resume"), cwd=work, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {killed_at}" in resumed.stdout
    diff = max_weight_difference(str(work / "uninterrupted" / checkpoint / weights), str(work / "killed" / checkpoint / weights))
    assert diff <= 1e-5


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_saves_a_checkpoint_and_says_how_to_resume(work, sig):
    output = f"interrupted-{sig.name}"
    proc = subprocess.Popen(finetune_cmd(output), cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code = wait_for_checkpoint_then(proc, str(work / output / "checkpoint-last"), 4, sig)
    stderr = proc.stderr.read()
    assert code == 128 + sig, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    step = checkpoint_step(str(work / output / "checkpoint-last"))
    assert step >= 4
    resumed = subprocess.run(finetune_cmd(output, "--resume"), cwd=work, capture_output=True, text=True)
    assert resumed.returncode == 0 and f"at step {step}" in resumed.stdout


def test_nan_loss_stops_naming_step_and_term_and_keeps_the_last_good_checkpoint(work):
    result = subprocess.run(finetune_cmd("nan", "--learning_rate", "1e30", "--save_steps", "1"), cwd=work,
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: loss term 'loss' became") and "at step" in line
    failed_step = int(line.split("at step ")[1].split()[0])
    assert checkpoint_step(str(work / "nan" / "checkpoint-last")) == failed_step - 1
    import paddle

    state = paddle.load(str(work / "nan" / "checkpoint-last" / "model.pdparams"))
    assert all(np.isfinite(v.numpy()).all() for v in state.values())


def test_a_failed_save_leaves_the_previous_checkpoint_and_no_partial_directory(tmp_path):
    from tinybert.errors import UserError
    from tinybert.training.checkpoint import atomic_directory

    final = tmp_path / "best_model"
    with atomic_directory(str(final)) as temporary:
        (tmp_path / "marker").write_text("x")
        open(os.path.join(temporary, "weights"), "w").write("good")
    with pytest.raises(UserError, match="no space left"):
        with atomic_directory(str(final)) as temporary:
            open(os.path.join(temporary, "weights"), "w").write("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert (final / "weights").read_text() == "good"
    assert sorted(os.listdir(tmp_path)) == ["best_model", "marker"]


def test_output_dir_of_another_run_is_refused_unless_overwrite_or_resume(work):
    first = subprocess.run(finetune_cmd("guarded", "--max_steps", "2"), cwd=work, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    other = subprocess.run(finetune_cmd("guarded", "--max_steps", "3"), cwd=work, capture_output=True, text=True)
    assert other.returncode == 2 and "--overwrite_output_dir" in other.stderr and "max_steps" in other.stderr
    again = subprocess.run(finetune_cmd("guarded", "--max_steps", "3", "--overwrite_output_dir"), cwd=work,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    with open(work / "guarded" / "run_finetune.json") as handle:
        assert json.load(handle)["arguments"]["max_steps"] == 3
