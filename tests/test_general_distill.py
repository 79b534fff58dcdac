"""general_distill.py end to end on tiny models and a generated corpus: output, shared loss,
exact resume after SIGKILL, two processes, bad input."""
import importlib
import os
import pickle
import random
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
import tiny
from test_multiprocess import (
    assert_ranks_agree,
    descendants,
    environment,
    launch,
    start_and_wait_for_checkpoint,
    worker_logs,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_corpus(path, documents=40, seed=0):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(documents):
            for _ in range(rng.randint(1, 6)):
                handle.write(tiny.sentence(rng, rng.randint(0, 1)) + "\n")
            handle.write("\n")
    return path


def flags(output, *extra, corpus="corpus.txt"):
    return ["--teacher_path", "teacher", "--student_num_layers", "2", "--student_hidden_size", "16",
            "--student_intermediate_size", "32", "--corpus", corpus, "--max_seq_length", "32", "--batch_size", "4",
            "--learning_rate", "1e-3", "--logging_steps", "5", "--save_steps", "5", "--device", "cpu",
            "--output_dir", output, *extra]


def invoke(argv):
    module = importlib.import_module("general_distill")
    try:
        module.main(argv)
    except SystemExit as stop:
        return stop.code
    return 0


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("general")
    tiny.make_bert(str(work / "teacher"), layers=4, hidden=32, heads=2)
    write_corpus(work / "corpus.txt")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=16, n_dev=8)
    return work


@pytest.fixture(scope="module")
def trained(work):
    cwd = os.getcwd()
    os.chdir(work)
    try:
        assert invoke(flags("out", "--num_train_epochs", "2")) == 0
    finally:
        os.chdir(cwd)
    return work / "out" / "general_model"


def test_the_general_student_loads_with_paddlenlp_and_records_its_projections(trained):
    import json

    from paddlenlp.transformers import TinyBertModel

    model = TinyBertModel.from_pretrained(str(trained))
    assert model.config.hidden_size == 16 and model.config.num_hidden_layers == 2 and model.config.fit_size == 32
    saved = paddle.load(str(trained / "model_state.pdparams"))
    np.testing.assert_array_equal(model.fit_denses[1].weight.numpy(), saved["tinybert.fit_denses.1.weight"].numpy())
    with open(trained / "config.json", encoding="utf-8") as handle:
        assert json.load(handle)["distill_projection"] == "per_layer"
    assert os.path.isfile(trained / "vocab.txt")


def test_task_distillation_starts_from_the_general_student(work, trained, capsys):
    cwd = os.getcwd()
    os.chdir(work)
    try:
        module = importlib.import_module("task_distill")
        module.main(["--student_model_name_or_path", str(trained), "--teacher_path", "teacher", "--task_name", "SST-2",
                     "--glue_dir", "glue", "--intermediate_distill", "--max_steps", "2", "--batch_size", "4",
                     "--save_steps", "2", "--output_dir", "task", "--device", "cpu", "--max_seq_length", "32"])
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "projections: per_layer" in out and "both projection kinds" not in out  # the record is used
    assert os.path.isdir(work / "task" / "best_inter_model")


def test_the_general_loss_is_task_stage_ones_loss_on_the_same_batch(work, trained):
    import task_distill
    from tinybert.data.tasks import get_task
    from tinybert.distillation import general
    from tinybert.distillation import task as distill
    from tinybert.training.distributed import Distribution

    cwd = os.getcwd()
    os.chdir(work)
    try:
        dist = Distribution()
        paddle.seed(0)
        general_args = importlib.import_module("general_distill").parse_args(
            ["--teacher_path", "teacher", "--student_model_name_or_path", str(trained), "--corpus", "corpus.txt",
             "--max_seq_length", "32", "--batch_size", "4", "--output_dir", "unused"])
        general_job = general.build_job(general_args, dist)
        task_args = task_distill.parse_args(
            ["--student_model_name_or_path", str(trained), "--teacher_path", "teacher", "--task_name", "SST-2",
             "--glue_dir", "glue", "--intermediate_distill", "--output_dir", "unused", "--max_seq_length", "32"])
        task_job = distill.build_job(task_args, get_task("SST-2"), True, dist)
        batch = next(iter(general_job.data.batches.epoch(0)))
        general_job.model.eval(), task_job.model.eval()
        a = general_job.objective(general_job.model, batch)
        b = task_job.objective(task_job.model, batch)
    finally:
        os.chdir(cwd)
    assert set(b) <= set(a) and "tokens" in a
    for name in b:
        assert float(a[name]) == pytest.approx(float(b[name]), rel=1e-6), name
    assert float(a["tokens"]) == batch["attention_mask"].sum()


def checkpoint_step(directory):
    with open(os.path.join(directory, "trainer_state.pkl"), "rb") as handle:
        return pickle.load(handle)["progress"]["step"]


def run_cmd(output, *extra):
    return [sys.executable, os.path.join(ROOT, "general_distill.py"), *flags(output, *extra)]


LONG = ("--max_steps", "60", "--logging_steps", "1000")


def test_a_run_killed_and_resumed_equals_an_uninterrupted_one(work):
    whole = subprocess.run(run_cmd("whole", *LONG), cwd=work, capture_output=True, text=True, timeout=300,
                           env=environment())
    assert whole.returncode == 0, whole.stderr
    proc = subprocess.Popen(run_cmd("killed", *LONG), cwd=work, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=environment())
    directory = work / "killed" / "checkpoint-last-general"
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            if checkpoint_step(directory) >= 20:
                break
        except (OSError, EOFError, ValueError, pickle.UnpicklingError):
            pass
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert checkpoint_step(directory) < 60
    resumed = subprocess.run(run_cmd("killed", *LONG, "--resume"), cwd=work, capture_output=True, text=True,
                             timeout=300, env=environment())
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed general" in resumed.stdout
    a = paddle.load(str(work / "whole" / "checkpoint-last-general" / "student.pdparams"))
    b = paddle.load(str(directory / "student.pdparams"))
    for name in a:
        np.testing.assert_allclose(b[name].numpy(), a[name].numpy(), rtol=0, atol=1e-5, err_msg=name)


def test_two_processes_train_on_their_own_shares_for_the_agreed_epochs_and_resume_exactly(work):
    from paddlenlp.transformers import BertTokenizer

    from tinybert.data.corpus import PackedCorpus

    epochs = ("--num_train_epochs", "4", "--logging_steps", "1000")
    result, logs = launch(work, "two", "general_distill.py", *flags("two", *epochs))
    assert_ranks_agree(result, logs)
    assert "global_batch_size 8" in logs[0]
    assert os.path.isdir(work / "two" / "general_model")
    # an epoch is the smaller share's batch count: computed here from each rank's own share
    tokenizer = BertTokenizer.from_pretrained(str(work / "teacher"))
    counts = [PackedCorpus([str(work / "corpus.txt")], tokenizer, max_seq_length=32, batch_size=4, seed=42,
                           rank=rank, world_size=2).count_batches() for rank in range(2)]
    single = PackedCorpus([str(work / "corpus.txt")], tokenizer, max_seq_length=32, batch_size=4, seed=42).count_batches()
    assert min(counts) < single  # each rank had about half of the corpus, not all of it
    steps = 4 * min(counts)
    assert checkpoint_step(work / "two" / "checkpoint-last-general") == steps
    # killed mid-run (every process at once) and resumed: each rank continues its own stream exactly
    killed = flags("two-killed", *epochs)
    proc = start_and_wait_for_checkpoint(work, "two-killed", killed, min_step=5, script="general_distill.py",
                                         checkpoint="checkpoint-last-general")
    for pid in [proc.pid] + descendants(proc.pid):
        os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert checkpoint_step(work / "two-killed" / "checkpoint-last-general") < steps
    result, logs = launch(work, "two-resumed", "general_distill.py", *killed, "--resume")
    assert_ranks_agree(result, logs)
    assert "resumed general" in logs[0]
    a = paddle.load(str(work / "two" / "checkpoint-last-general" / "student.pdparams"))
    b = paddle.load(str(work / "two-killed" / "checkpoint-last-general" / "student.pdparams"))
    for name in a:
        np.testing.assert_allclose(b[name].numpy(), a[name].numpy(), rtol=0, atol=1e-5, err_msg=name)


def test_a_share_too_small_on_one_rank_stops_both_with_one_line(work):
    with open(work / "one-doc.txt", "w", encoding="utf-8") as handle:  # one document: all of it is rank 0's
        handle.write("\n".join(tiny.sentence(random.Random(i), 0) for i in range(30)) + "\n")
    log_dir = work / "log-small-share"
    result = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                             str(log_dir), os.path.join(ROOT, "general_distill.py"),
                             *flags("small-share", "--max_steps", "4", corpus="one-doc.txt")],
                            cwd=work, capture_output=True, text=True, timeout=300, env=environment())
    assert result.returncode != 0
    for log in worker_logs(log_dir):
        assert "process 1's share of corpus one-doc.txt yields fewer sequences than one batch of 4" in log, log[-2000:]
        assert "Traceback" not in log


@pytest.mark.parametrize("case,extra,fragment", [
    ("empty-corpus", ("--corpus", "empty.txt"), "holds no text"),
    ("binary-corpus", ("--corpus", "binary.bin"), "binary.bin"),
    ("heads-do-not-divide", ("--student_hidden_size", "15"), "not divisible by 2 attention heads"),
    ("heads-differ", ("--student_num_heads", "4"), "differs from the teacher's 2"),
    ("path-and-shape", ("--student_model_name_or_path", "teacher"), "not both"),
])
def test_bad_input_is_one_line_and_exit_2(work, capsys, case, extra, fragment):
    (work / "empty.txt").write_text("\n\n\n", encoding="utf-8")
    (work / "binary.bin").write_bytes(bytes(range(256)) * 64)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        capsys.readouterr()
        code = invoke(flags(f"bad-{case}", "--max_steps", "1") + list(extra))
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
