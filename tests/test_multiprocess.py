"""Several processes for real: ``python -m paddle.distributed.launch --nproc_per_node 2`` on CPU (gloo).

No stand-ins: every test starts the launcher on the real entry points (or, for the gradient
check, on ``dist_probe.py``, which uses the product's own job, batches and wrapper), and reads
what each rank wrote to its log.
"""
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
DIGEST = re.compile(r"parameters identical on all 2 processes \(digest ([0-9a-f]+)\)")


def environment():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")  # two processes share two cores
    for name in ("PADDLE_TRAINER_ID", "PADDLE_TRAINERS_NUM", "PADDLE_TRAINER_ENDPOINTS", "PADDLE_CURRENT_ENDPOINT"):
        env.pop(name, None)
    return env


def launch_cmd(log_dir, script, *flags, nproc=2):
    return [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc), "--log_dir",
            str(log_dir), os.path.join(ROOT, script), *flags]


def worker_logs(log_dir):
    logs = []
    for rank in range(2):
        with open(os.path.join(log_dir, f"workerlog.{rank}"), encoding="utf-8", errors="replace") as handle:
            logs.append(handle.read())
    return logs


def launch(work, name, script, *flags, timeout=300):
    log_dir = work / f"log-{name}"
    result = subprocess.run(launch_cmd(log_dir, script, *flags), cwd=work, capture_output=True, text=True,
                            timeout=timeout, env=environment())
    return result, worker_logs(log_dir)


def distill_flags(output, student, stage1, *extra):
    return ["--student_model_name_or_path", student, "--teacher_path", "teacher_ft/best_model",
            "--task_name", "SST-2", "--glue_dir", "glue", "--device", "cpu", "--max_seq_length", "32",
            "--batch_size", "4", "--logging_steps", "2", "--save_steps", "4", "--learning_rate", "1e-3",
            "--output_dir", output, *(["--intermediate_distill"] if stage1 else []), *extra]


def assert_ranks_agree(result, logs):
    assert result.returncode == 0, result.stdout[-3000:] + "\n".join(log[-3000:] for log in logs)
    digests = [DIGEST.findall(log) for log in logs]
    assert digests[0] and digests[0] == digests[1], digests


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("multiprocess")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=64, n_dev=16)
    tiny.make_bert(str(work / "teacher"), layers=4, hidden=32, heads=2)
    tiny.make_bert(str(work / "student"), layers=2, hidden=16, heads=2, model_type="tinybert", fit_size=32)
    return work


@pytest.fixture(scope="module")
def finetuned(work):
    result = launch(work, "finetune", "finetune_teacher.py", "--model_name_or_path", "teacher",
                    "--task_name", "SST-2", "--glue_dir", "glue", "--device", "cpu", "--max_seq_length", "32",
                    "--batch_size", "4", "--num_train_epochs", "2", "--logging_steps", "2", "--save_steps", "4",
                    "--learning_rate", "1e-3", "--output_dir", "teacher_ft")
    return result


@pytest.fixture(scope="module")
def stage1(work, finetuned):
    return launch(work, "stage1", "task_distill.py",
                  *distill_flags("distilled", "student", True, "--num_train_epochs", "2"))


@pytest.fixture(scope="module")
def stage2(work, stage1):
    return launch(work, "stage2", "task_distill.py",
                  *distill_flags("distilled", "distilled/best_inter_model", False, "--num_train_epochs", "1"))


def test_fine_tuning_runs_on_two_processes_and_both_end_with_the_same_weights(work, finetuned):
    result, logs = finetuned
    assert_ranks_agree(result, logs)
    assert "processes 2, global_batch_size 8" in logs[0]
    assert "best dev score" in logs[0] and "best dev score" not in logs[1]  # rank 0 reports, rank 1 is silent
    from paddlenlp.transformers import BertForSequenceClassification

    BertForSequenceClassification.from_pretrained(str(work / "teacher_ft" / "best_model"))


def test_stage_one_runs_on_two_processes_with_the_projections_inside_the_wrapped_forward(work, stage1):
    result, logs = stage1
    assert_ranks_agree(result, logs)
    assert "processes 2, global_batch_size 8" in logs[0]
    # one token store per file, built by rank 0 alone; rank 1 mapped it
    assert logs[0].count("featurized glue/SST-2/") == 2 and "featurized" not in logs[1]
    stores = [d for d in os.listdir(work / "distilled" / "cache") if d.startswith("SST-2-")]
    assert len(stores) == 2 and all(".tmp-" not in d for d in stores)
    with open(work / "distilled" / "best_inter_model" / "config.json", encoding="utf-8") as handle:
        assert json.load(handle)["distill_projection"] == "per_layer"


def test_stage_two_runs_on_two_processes_and_its_best_model_loads(work, stage2):
    result, logs = stage2
    assert_ranks_agree(result, logs)
    assert "computing teacher logits once" in logs[0]
    assert "featurized" not in logs[0] + logs[1]  # stage 2 maps stage 1's stores
    from paddlenlp.transformers import TinyBertForSequenceClassification

    model = TinyBertForSequenceClassification.from_pretrained(str(work / "distilled" / "best_model"))
    assert model.classifier.weight.shape[-1] == 2


def test_two_processes_average_gradients_like_one_process_on_both_batches(work, finetuned):
    flags = ["--teacher_path", "teacher_ft/best_model", "--student_model_name_or_path", "student",
             "--glue_dir", "glue", "--max_seq_length", "32", "--no_length_buckets"]
    probe = os.path.join(HERE, "dist_probe.py")
    two = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                          str(work / "log-probe"), probe, str(work / "two.npz"), *flags, "--batch_size", "4",
                          "--output_dir", "probe-two"], cwd=work, capture_output=True, text=True, timeout=300,
                         env=environment())
    assert two.returncode == 0, "\n".join(worker_logs(work / "log-probe"))
    one = subprocess.run([sys.executable, probe, str(work / "one.npz"), *flags, "--batch_size", "8",
                          "--output_dir", "probe-one"], cwd=work, capture_output=True, text=True, timeout=300,
                         env=environment())
    assert one.returncode == 0, one.stderr
    for run in ("probe-one", "probe-two"):  # each computed its own teacher logits, in its own cache
        assert [f for f in os.listdir(work / run / "cache") if f.startswith("teacher-logits-")], run
    a, b = np.load(work / "two.npz"), np.load(work / "one.npz")
    assert sorted(a["indices"]) == sorted(b["indices"]) and len(set(a["indices"])) == 8  # A + B = the big batch
    names = [n for n in b.files if n != "indices"]
    assert names and sorted(names) == sorted(n for n in a.files if n != "indices")
    for name in names:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert any(np.abs(b[name]).max() > 0 for name in names)


def test_too_few_batches_for_the_processes_is_a_one_line_error_not_a_hang(work, finetuned):
    tiny.write_task(str(work / "glue_small"), "SST-2", n_train=3, n_dev=4)
    started = time.time()
    result, logs = launch(work, "small", "task_distill.py",
                          *distill_flags("small", "student", True, "--glue_dir", "glue_small", "--batch_size", "8"),
                          timeout=120)
    assert result.returncode != 0
    assert time.time() - started < 90
    for log in logs:
        assert "error: 3 training examples make 1 batches of --batch_size 8, fewer than the 2 processes" in log
        assert "Traceback" not in log


def descendants(pid):
    """Every process below ``pid`` (read from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def checkpoint_step(directory):
    with open(os.path.join(directory, "trainer_state.pkl"), "rb") as handle:
        return pickle.load(handle)["progress"]["step"]


def start_and_wait_for_checkpoint(work, name, flags, min_step=4, script="task_distill.py",
                                  checkpoint="checkpoint-last-inter"):
    proc = subprocess.Popen(launch_cmd(work / f"log-{name}", script, *flags), cwd=work,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment())
    directory = work / flags[flags.index("--output_dir") + 1] / checkpoint
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            if checkpoint_step(directory) >= min_step:
                return proc
        except (OSError, EOFError, ValueError, pickle.UnpicklingError):
            pass
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    raise AssertionError("no checkpoint in time")


def final_weights(work, output):
    import paddle

    return paddle.load(str(work / output / "checkpoint-last-inter" / "student.pdparams"))


LONG = ("--num_train_epochs", "6", "--save_steps", "4", "--logging_steps", "1000")  # 48 steps: the kill lands mid-run


def test_a_two_process_run_killed_and_resumed_equals_an_uninterrupted_one(work, finetuned):
    result, logs = launch(work, "whole", "task_distill.py", *distill_flags("whole", "student", True, *LONG))
    assert_ranks_agree(result, logs)
    flags = distill_flags("killed", "student", True, *LONG)
    proc = start_and_wait_for_checkpoint(work, "killed", flags)
    everyone = [proc.pid] + descendants(proc.pid)
    for pid in everyone:  # a crash takes every process down at once
        os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert checkpoint_step(work / "killed" / "checkpoint-last-inter") < 48
    result, logs = launch(work, "resumed", "task_distill.py", *flags, "--resume")
    assert_ranks_agree(result, logs)
    assert "resumed intermediate" in logs[0]
    whole, resumed = final_weights(work, "whole"), final_weights(work, "killed")
    assert sorted(whole) == sorted(resumed)
    for name in whole:
        np.testing.assert_allclose(resumed[name].numpy(), whole[name].numpy(), rtol=0, atol=1e-5, err_msg=name)


def test_sigterm_to_the_launcher_saves_a_resumable_checkpoint_and_leaves_no_process(work, finetuned):
    flags = distill_flags("terminated", "student", True, *LONG)
    proc = start_and_wait_for_checkpoint(work, "terminated", flags)
    workers = descendants(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    deadline = time.time() + 30
    while any(alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), "a rank outlived the launcher"
    logs = worker_logs(work / "log-terminated")
    assert "SIGTERM received at step" in logs[0] and "--resume" in logs[0]
    assert "Traceback" not in logs[0] and "Traceback" not in logs[1]
    stopped_at = checkpoint_step(work / "terminated" / "checkpoint-last-inter")
    assert 4 <= stopped_at < 48
    result, logs = launch(work, "terminated-resumed", "task_distill.py", *flags, "--resume")
    assert_ranks_agree(result, logs)
    assert f"at step {stopped_at}" in logs[0]


def test_resuming_with_another_number_of_processes_is_refused_naming_it(work, stage1):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "task_distill.py"),
                             *distill_flags("distilled", "student", True, "--num_train_epochs", "2", "--resume")],
                            cwd=work, capture_output=True, text=True, timeout=120, env=environment())
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "number of processes: 2 -> 1" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_two_processes_evaluate_and_predict_exactly_what_one_process_computes(work, finetuned):
    """Evaluation and teacher logits are shared by the ranks (each its share of the batches) and
    gathered: bit-identical to one process. Each run has its own output and cache directory."""
    tiny.write_task(str(work / "glue_eval"), "SST-2", n_train=37, n_dev=50, seed=3)
    probe = os.path.join(HERE, "eval_probe.py")
    flags = ["--teacher_path", "teacher_ft/best_model", "--student_model_name_or_path", "student",
             "--glue_dir", "glue_eval", "--max_seq_length", "32", "--eval_batch_size", "8"]
    two = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                          str(work / "log-eval-probe"), probe, str(work / "eval-two.npz"), *flags,
                          "--output_dir", "eval-two"], cwd=work, capture_output=True, text=True, timeout=300,
                         env=environment())
    assert two.returncode == 0, "\n".join(worker_logs(work / "log-eval-probe"))
    one = subprocess.run([sys.executable, probe, str(work / "eval-one.npz"), *flags, "--output_dir", "eval-one"],
                         cwd=work, capture_output=True, text=True, timeout=300, env=environment())
    assert one.returncode == 0, one.stderr
    a, b = np.load(work / "eval-two.npz"), np.load(work / "eval-one.npz")
    assert sorted(a.files) == sorted(b.files) and "stage1_dev_loss" in a.files
    assert b["dev_logits"].shape == (50, 2) and b["train_logits"].shape == (37, 2)
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert os.listdir(work / "eval-two" / "cache") and os.listdir(work / "eval-one" / "cache")


def test_pruning_runs_on_two_processes_and_slices_one_model(work, finetuned):
    """Gates and weights stay identical on both ranks (gates are parameters DataParallel syncs;
    every rank measures the starting importance on the same sample, so none waits alone)."""
    result, logs = launch(work, "prune", "prune_distill.py", "--teacher_path", "teacher_ft/best_model",
                          "--prune_to", "2x16", "--task_name", "SST-2", "--glue_dir", "glue", "--device", "cpu",
                          "--max_seq_length", "32", "--batch_size", "4", "--num_train_epochs", "2",
                          "--logging_steps", "2", "--save_steps", "4", "--learning_rate", "1e-3",
                          "--output_dir", "pruned")
    assert_ranks_agree(result, logs)
    with open(work / "pruned" / "best_pruned_model" / "pruning.json", encoding="utf-8") as handle:
        assert json.load(handle)["shape"].startswith("2x16x")
    from paddlenlp.transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(str(work / "pruned" / "best_pruned_model"))
    assert model.bert.config.hidden_size == 16 and len(model.bert.encoder.layers) == 2
