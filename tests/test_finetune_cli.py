"""finetune_teacher.py end to end, as a subprocess, on tiny fixtures (issue 2 items 6-7 and "Bad input").

Each command line below is a *scenario*; all of them start together in a small thread pool
when the module's first test runs (a subprocess spends ~3 s importing Paddle, and the
missing-file cases wait on PaddleNLP's download retries), and each test checks one of them.
Selecting a single test still starts them all. Every run gets its own PaddleNLP home and an unreachable proxy, so nothing is read from or
written to ~/.paddlenlp and a missing file can never turn into a real GLUE download.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest
import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NO_NETWORK = "http://127.0.0.1:9"  # the discard port: connections are refused at once
PARALLEL_RUNS = 3


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    base = tmp_path_factory.mktemp("finetune")
    glue = str(base / "glue")
    tiny.write_task(glue, "SST-2", n_train=400, n_dev=50)
    tiny.write_task(glue, "MRPC", n_train=64, n_dev=24)
    os.makedirs(base / "ppnlp_home")
    env = dict(os.environ, PPNLP_HOME=str(base / "ppnlp_home"), HTTP_PROXY=NO_NETWORK, HTTPS_PROXY=NO_NETWORK,
               http_proxy=NO_NETWORK, https_proxy=NO_NETWORK, NO_PROXY="", no_proxy="",
               OMP_NUM_THREADS="1")  # tiny models: a second thread costs more than it gives, and runs overlap
    return SimpleNamespace(base=base, glue=glue, bert=tiny.make_bert(str(base / "bert")), env=env)


def finetune(ws, *args, device="cpu"):
    """Run finetune_teacher.py; later flags override the defaults given first."""
    command = [sys.executable, "finetune_teacher.py", "--model_type", "bert", "--model_name_or_path", ws.bert,
               "--glue_dir", ws.glue, "--device", device, "--max_seq_length", "48", "--batch_size", "16",
               "--logging_steps", "5", *args]
    return subprocess.run(command, cwd=ROOT, env=ws.env, capture_output=True, text=True, timeout=600)


def assert_usage_error(result, *fragments):
    """Exit status 2, one stderr line starting with 'error:' that holds every fragment, no traceback."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def read_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def copy_task(ws, glue_dir, task="SST-2", files=None):
    """``glue_dir/<task>/`` holding the task's fixture files (all, or only ``files``)."""
    directory = os.path.join(glue_dir, task)
    os.makedirs(directory)
    for name in files or os.listdir(os.path.join(ws.glue, task)):
        shutil.copy(os.path.join(ws.glue, task, name), os.path.join(directory, name))
    return directory


def replace_line(path, number, text):
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    lines[number - 1] = text
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


# ------------------------------------------------------------------ scenarios
SCENARIOS = {}  # name -> function(workspace, own directory, started scenarios) -> SimpleNamespace


def scenario(function):
    SCENARIOS[function.__name__] = function
    return function


@scenario
def sst2(ws, here, started):
    """Single-sentence task, trained long enough to learn: 25 steps/epoch, 5 epochs, eval every 25."""
    result = finetune(ws, "--task_name", "sst-2", "--learning_rate", "1e-3", "--num_train_epochs", "5",
                      "--save_steps", "25", "--max_seq_length", "32", "--output_dir", here)
    return SimpleNamespace(result=result, output_dir=here, task="SST-2", max_seq_length=32, evals=[25, 50, 75, 100, 125])


@scenario
def mrpc(ws, here, started):
    """Pair task: 4 steps/epoch, 2 epochs, eval every 3 steps and at the end (step 8)."""
    result = finetune(ws, "--task_name", "MRPC", "--learning_rate", "5e-4", "--num_train_epochs", "2",
                      "--save_steps", "3", "--output_dir", here)
    return SimpleNamespace(result=result, output_dir=here, task="MRPC", max_seq_length=48, evals=[3, 6, 8])


@scenario
def rerun_after_refusal(ws, here, started):
    """The same command twice: refused for a missing dev file, then run once the file is there."""
    glue = os.path.join(here, "glue")
    directory = copy_task(ws, glue, "MRPC", files=["train.tsv"])
    command = ("--task_name", "MRPC", "--glue_dir", glue, "--max_steps", "1", "--output_dir", os.path.join(here, "out"))
    refused = finetune(ws, *command)
    shutil.copy(os.path.join(ws.glue, "MRPC", "dev.tsv"), os.path.join(directory, "dev.tsv"))
    return SimpleNamespace(refused=refused, result=finetune(ws, *command))


@scenario
def missing_glue_dir(ws, here, started):
    missing = os.path.join(here, "no_glue_here")
    return SimpleNamespace(result=finetune(ws, "--task_name", "SST-2", "--glue_dir", missing,
                                           "--output_dir", os.path.join(here, "out")), missing=missing)


@scenario
def missing_dev_file(ws, here, started):
    glue = os.path.join(here, "glue")
    directory = copy_task(ws, glue, files=["train.tsv"])
    result = finetune(ws, "--task_name", "SST-2", "--glue_dir", glue, "--output_dir", os.path.join(here, "out"))
    return SimpleNamespace(result=result, dev=os.path.join(directory, "dev.tsv"))


def from_the_mrpc_run(ws, here, started):
    """A copy of the MRPC run's output directory (the module's run itself stays untouched)."""
    mrpc_run = started["mrpc"].result()
    assert mrpc_run.result.returncode == 0, mrpc_run.result.stderr
    copy = os.path.join(here, "used")
    shutil.copytree(mrpc_run.output_dir, copy)
    return copy


@scenario
def different_run_in_output_dir(ws, here, started):
    used = from_the_mrpc_run(ws, here, started)
    result = finetune(ws, "--task_name", "MRPC", "--learning_rate", "1e-4", "--num_train_epochs", "2",
                      "--save_steps", "3", "--output_dir", used)
    return SimpleNamespace(result=result, output_dir=used)


@scenario
def overwrite_output_dir(ws, here, started):
    used = from_the_mrpc_run(ws, here, started)
    result = finetune(ws, "--task_name", "MRPC", "--learning_rate", "1e-4", "--max_steps", "2",
                      "--save_steps", "3", "--output_dir", used, "--overwrite_output_dir")
    return SimpleNamespace(result=result, output_dir=used)


@scenario
def gpu_requested(ws, here, started):
    return SimpleNamespace(result=finetune(ws, "--task_name", "MRPC", "--max_steps", "1", "--output_dir", here,
                                           device="gpu"), output_dir=here)


@scenario
def unknown_task(ws, here, started):
    return SimpleNamespace(result=finetune(ws, "--task_name", "SST-3", "--output_dir", here))


@scenario
def malformed_row(ws, here, started):
    glue = os.path.join(here, "glue")
    train = os.path.join(copy_task(ws, glue), "train.tsv")
    replace_line(train, 5, "a sentence whose label column is missing")
    result = finetune(ws, "--task_name", "SST-2", "--glue_dir", glue, "--output_dir", os.path.join(here, "out"))
    return SimpleNamespace(result=result, path=train)


@scenario
def label_outside_label_set(ws, here, started):
    glue = os.path.join(here, "glue")
    dev = os.path.join(copy_task(ws, glue), "dev.tsv")
    replace_line(dev, 3, "a good film\t2")
    result = finetune(ws, "--task_name", "SST-2", "--glue_dir", glue, "--output_dir", os.path.join(here, "out"))
    return SimpleNamespace(result=result, path=dev)


@scenario
def nonexistent_model_path(ws, here, started):
    missing = os.path.join(here, "no_model_here")
    result = finetune(ws, "--task_name", "SST-2", "--model_name_or_path", missing,
                      "--output_dir", os.path.join(here, "out"))
    return SimpleNamespace(result=result, missing=missing)


@scenario
def zero_batch_size(ws, here, started):
    return SimpleNamespace(result=finetune(ws, "--task_name", "SST-2", "--batch_size", "0", "--output_dir", here))


@scenario
def zero_epochs(ws, here, started):
    return SimpleNamespace(result=finetune(ws, "--task_name", "SST-2", "--num_train_epochs", "0", "--output_dir", here))


@pytest.fixture(scope="module")
def runs(workspace):
    """Start every scenario (in SCENARIOS order: the long ones first); name -> Future."""
    pool = ThreadPoolExecutor(PARALLEL_RUNS)
    started = {}
    for name, function in SCENARIOS.items():
        here = str(workspace.base / name)
        started[name] = pool.submit(function, workspace, here, started)
    yield SimpleNamespace(**{name: future.result for name, future in started.items()})  # run.<name>() waits
    pool.shutdown(wait=True)


# ------------------------------------------------------------ successful runs
@pytest.fixture(params=["sst2", "mrpc"])
def finished_run(request, runs):
    run = getattr(runs, request.param)()
    assert run.result.returncode == 0, run.result.stderr
    return run


def test_run_succeeds_without_traceback_and_reports_the_best_score(finished_run):
    assert "Traceback" not in finished_run.result.stderr
    assert "best dev score" in finished_run.result.stdout


def test_best_model_has_the_layout_from_pretrained_loads(finished_run):
    best = os.path.join(finished_run.output_dir, "best_model")
    for name in ("config.json", "model_state.pdparams", "vocab.txt"):
        assert os.path.isfile(os.path.join(best, name)), name


def test_eval_results_has_one_json_line_per_evaluation(finished_run):
    records = read_jsonl(os.path.join(finished_run.output_dir, "eval_results.jsonl"))
    assert [r["step"] for r in records] == finished_run.evals
    assert finished_run.result.stdout.count("eval step") == len(records)
    assert all(r["stage"] == "finetune" and "score" in r for r in records)
    assert records[0]["best"] is True


def test_no_temporary_directories_are_left(finished_run):
    leftovers = glob.glob(os.path.join(finished_run.output_dir, "**", "*.tmp-*"), recursive=True)
    leftovers += glob.glob(os.path.join(finished_run.output_dir, "**", "*.old-*"), recursive=True)
    assert leftovers == []


def dev_metrics_of_reloaded_model(run, glue):
    """Reload best_model/ with PaddleNLP's own classes and score the dev set one example at a time."""
    import paddle
    from paddlenlp.transformers import BertForSequenceClassification, BertTokenizer
    from sklearn.metrics import accuracy_score, f1_score

    from tinybert.data.glue import load_split
    from tinybert.data.tasks import get_task

    best = os.path.join(run.output_dir, "best_model")
    model = BertForSequenceClassification.from_pretrained(best)
    tokenizer = BertTokenizer.from_pretrained(best)
    assert tokenizer.vocab_size == len(tiny.VOCAB)
    spec = get_task(run.task)
    dev, = load_split(glue, spec, "dev", allow_download=False)
    model.eval()
    preds = []
    with paddle.no_grad():
        for example in dev.examples:
            encoded = tokenizer(example.texts[0], text_pair=example.texts[1] if spec.is_pair else None,
                                max_length=run.max_seq_length, truncation=True)
            logits = model(input_ids=paddle.to_tensor([encoded["input_ids"]]),
                           token_type_ids=paddle.to_tensor([encoded["token_type_ids"]]))
            assert logits.shape == [1, 2]
            preds.append(int(np.argmax(logits.numpy())))
    labels = [example.label for example in dev.examples]
    metrics = {"acc": accuracy_score(labels, preds)}
    if "f1" in spec.metrics:
        metrics["f1"] = f1_score(labels, preds, zero_division=0)
    return metrics


def test_best_model_reloads_and_gives_the_recorded_dev_metric_again(finished_run, workspace):
    records = read_jsonl(os.path.join(finished_run.output_dir, "eval_results.jsonl"))
    saved = [r for r in records if r["best"]][-1]  # the last improvement is what best_model/ holds
    again = dev_metrics_of_reloaded_model(finished_run, workspace.glue)
    for name, value in again.items():
        assert value == pytest.approx(saved[name], abs=1e-6), name


def test_teacher_learns_the_sst2_fixtures(runs, workspace):
    run = runs.sst2()
    assert run.result.returncode == 0, run.result.stderr
    records = read_jsonl(os.path.join(run.output_dir, "eval_results.jsonl"))
    assert records[0]["acc"] < 0.8  # not solved at the first evaluation...
    assert max(r["acc"] for r in records) > 0.8  # ...but learnt by the end
    assert dev_metrics_of_reloaded_model(run, workspace.glue)["acc"] > 0.8


def test_requesting_gpu_on_cpu_only_paddle_warns_and_uses_the_cpu(runs):
    import paddle

    if paddle.device.is_compiled_with_cuda():
        pytest.skip("this Paddle build has CUDA: no fallback to test")
    run = runs.gpu_requested()
    assert run.result.returncode == 0, run.result.stderr
    warnings = [line for line in run.result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "--device gpu" in warnings[0] and "using the CPU" in warnings[0]
    assert os.path.isdir(os.path.join(run.output_dir, "best_model"))


def test_parser_accepts_the_flags_of_paddlenlp_run_glue():
    import finetune_teacher

    args = finetune_teacher.parse_args(
        "--model_type bert --model_name_or_path bert-base-uncased --task_name SST-2 --max_seq_length 128 "
        "--batch_size 32 --learning_rate 2e-5 --num_train_epochs 3 --logging_steps 1 --save_steps 500 "
        "--output_dir ./tmp/SST-2/ --device gpu --glue_dir g --seed 3 --weight_decay 0.01 "
        "--warmup_proportion 0.1 --max_steps 10".split())
    assert (args.task_name, args.batch_size, args.learning_rate, args.max_steps) == ("SST-2", 32, 2e-5, 10)


# ---------------------------------------------------------------- bad input
def test_unknown_task_is_refused(runs):
    assert_usage_error(runs.unknown_task().result, "unknown task 'SST-3'", "SST-2")


def test_missing_glue_dir_is_refused_naming_where_the_files_go(runs):
    run = runs.missing_glue_dir()
    assert_usage_error(run.result, os.path.join(run.missing, "SST-2"), "--glue_dir")


def test_missing_dev_file_is_refused(runs):
    run = runs.missing_dev_file()
    assert_usage_error(run.result, run.dev)


def test_malformed_row_is_refused_naming_file_and_line(runs):
    run = runs.malformed_row()
    assert_usage_error(run.result, f"{run.path}:5:", "--skip_bad_rows")


def test_label_outside_the_label_set_is_refused_naming_file_and_line(runs):
    run = runs.label_outside_label_set()
    assert_usage_error(run.result, f"{run.path}:3:", "'2'")


def test_nonexistent_model_path_is_refused(runs):
    run = runs.nonexistent_model_path()
    message = assert_usage_error(run.result, f"--model_name_or_path {run.missing}")
    assert "no such directory" in message


def test_non_positive_batch_size_is_refused(runs):
    assert_usage_error(runs.zero_batch_size().result, "--batch_size", "positive")


def test_non_positive_num_train_epochs_is_refused(runs):
    assert_usage_error(runs.zero_epochs().result, "--num_train_epochs", "positive")


def test_output_dir_holding_a_different_run_is_refused(runs):
    run = runs.different_run_in_output_dir()
    assert_usage_error(run.result, run.output_dir, "learning_rate", "--overwrite_output_dir", "--resume")


def test_overwrite_output_dir_starts_the_run_over(runs):
    run = runs.overwrite_output_dir()
    assert run.result.returncode == 0, run.result.stderr
    with open(os.path.join(run.output_dir, "run_finetune.json"), encoding="utf-8") as handle:
        assert json.load(handle)["arguments"]["learning_rate"] == 1e-4
    assert [r["step"] for r in read_jsonl(os.path.join(run.output_dir, "eval_results.jsonl"))] == [2]


def test_a_run_refused_for_bad_input_does_not_block_the_corrected_rerun(runs):
    run = runs.rerun_after_refusal()
    assert_usage_error(run.refused, "dev.tsv")
    assert run.result.returncode == 0, run.result.stderr
