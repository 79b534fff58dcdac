"""Several processes at real scale: waits past gloo's 30-second default, a wait that does time out,
control messages in host memory only, the device and random state each rank restores.

The long tests run the real entry point under ``paddle.distributed.launch`` (gloo, CPU) with rank
0 working alone for longer than gloo's 30 s (rank 1 reports how long it waited): building token
stores of a generated 400,000-row file with PaddleNLP's tokenizer in this process
(``TINYBERT_FAST_TOKENIZER=0``, ``TINYBERT_STORE_WORKERS=0``: the slow path, so the file stays
small), then evaluating a 60,000-row dev set, which both ranks share.
"""
import ast
import glob
import json
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import tiny
from test_multiprocess import DIGEST, HERE, ROOT, environment, launch_cmd, worker_logs

from tinybert.errors import UserError


def write_sst2(directory, train_rows, aug_rows, dev_rows, seed=0):
    """SST-2 ``train.tsv``, ``train_aug.tsv`` and ``dev.tsv`` of tiny-vocabulary sentences."""
    rng = random.Random(seed)
    os.makedirs(directory, exist_ok=True)
    for name, rows in (("train.tsv", train_rows), ("train_aug.tsv", aug_rows), ("dev.tsv", dev_rows)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write("sentence\tlabel\n")
            for _ in range(rows):
                label = rng.randint(0, 1)
                handle.write(f"{tiny.sentence(rng, label)}\t{label}\n")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("waits")
    tiny.make_bert(str(work / "teacher"), layers=4, hidden=32, heads=2)
    tiny.make_bert(str(work / "student"), layers=2, hidden=16, heads=2, model_type="tinybert", fit_size=32)
    return work


def stage_one(output, glue, *extra):
    return ["--teacher_path", "teacher", "--student_model_name_or_path", "student", "--task_name", "SST-2",
            "--glue_dir", glue, "--device", "cpu", "--max_seq_length", "32", "--batch_size", "4",
            "--learning_rate", "1e-3", "--intermediate_distill", "--use_aug", "--output_dir", output, *extra]


def slow_stores(**extra):
    return dict(environment(), TINYBERT_FAST_TOKENIZER="0", TINYBERT_STORE_WORKERS="0", **extra)


def run(work, name, flags, env, timeout=900):
    log_dir = work / f"log-{name}"
    result = subprocess.run(launch_cmd(log_dir, "task_distill.py", *flags), cwd=work, capture_output=True, text=True,
                            timeout=timeout, env=env)
    return result, worker_logs(log_dir)


def build_seconds(cache):
    seconds = []
    for meta in glob.glob(os.path.join(cache, "*", "meta.json")):
        with open(meta, encoding="utf-8") as handle:
            seconds.append(json.load(handle)["seconds"])
    return sum(seconds)


def test_rank_zero_builds_stores_alone_for_longer_than_gloo_allows_and_both_ranks_finish_identical(work):
    write_sst2(work / "big" / "SST-2", train_rows=200, aug_rows=400_000, dev_rows=60_000)
    result, logs = run(work, "big", stage_one("big-run", "big", "--max_steps", "2", "--save_steps", "2",
                                              "--logging_steps", "1"), slow_stores())
    assert result.returncode == 0, result.stdout[-2000:] + "\n".join(log[-3000:] for log in logs)
    waited = re.search(r"process 1: waited (\d+) s for process 0 to build the token stores", logs[1])
    assert waited and int(waited.group(1)) > 30, logs[1][-2000:]  # past gloo's 30-second default
    assert build_seconds(work / "big-run" / "cache") > 30
    digests = [DIGEST.findall(log) for log in logs]
    assert digests[0] and digests[0] == digests[1]
    with open(work / "big-run" / "eval_results.jsonl", encoding="utf-8") as handle:
        record = json.loads(handle.readline())
    assert record["step"] == 2 and record["dev_loss"] > 0
    assert "Traceback" not in logs[0] + logs[1]


def test_a_wait_past_its_limit_stops_every_rank_with_one_line_and_leaves_no_half_written_store(work):
    write_sst2(work / "slow" / "SST-2", train_rows=200, aug_rows=100_000, dev_rows=100)  # ~12 s alone: well past 3
    result, logs = run(work, "timeout", stage_one("timeout-run", "slow", "--max_steps", "2"),
                       slow_stores(TINYBERT_WAIT_TIMEOUT="3"), timeout=300)
    assert result.returncode != 0
    waited = [line for line in logs[1].splitlines() if line.startswith("error:")]
    assert len(waited) == 1, logs[1][-2000:]
    assert "waited" in waited[0] and "process 0 to build the token stores" in waited[0]
    assert "TINYBERT_WAIT_TIMEOUT" in waited[0]
    stopped = [line for line in logs[0].splitlines() if line.startswith("error:")]
    assert len(stopped) == 1 and "stopped by signal 15" in stopped[0], logs[0][-2000:]
    assert "Traceback" not in logs[0] + logs[1]
    leftovers = glob.glob(str(work / "timeout-run" / "cache" / "*"))
    assert leftovers == [], leftovers  # the interrupted build removed its temporary directory


def test_every_control_message_reaches_gloo_as_an_explicit_host_tensor(work):
    out = work / "control.json"
    result = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                             str(work / "log-control"), os.path.join(HERE, "control_probe.py"), str(out)],
                            cwd=work, capture_output=True, text=True, timeout=300, env=environment())
    assert result.returncode == 0, "\n".join(worker_logs(work / "log-control"))
    with open(out, encoding="utf-8") as handle:
        seen = json.load(handle)
    assert {entry["op"] for entry in seen["received"]} == {"broadcast", "all_reduce"}
    assert all(entry["cpu"] and entry["explicit"] for entry in seen["received"]), seen["received"]
    assert seen["shared"] == {"rank 0 says": [0, 1, 2, 3, 4]}
    assert seen["gathered"] == [["rank", 0, 3], ["rank", 1, 4]]
    assert seen["stop"] is True and seen["smallest"] == 10
    assert seen["refused"] == "refused on 1" and seen["done"] == "written"  # rank 0's result, on rank 0


COLLECTIVES = {"broadcast_object_list", "all_gather_object", "scatter_object_list", "gather_object",
                      "all_reduce", "broadcast", "all_gather", "barrier", "reduce", "scatter", "send", "recv"}


def collective_calls(tree):
    """``alias.op`` uses of paddle.distributed's collectives in a module (its own import names)."""
    aliases, direct = {"paddle.distributed"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name == "paddle.distributed" and a.asname}
        elif isinstance(node, ast.ImportFrom) and node.module == "paddle":
            aliases |= {a.asname or a.name for a in node.names if a.name == "distributed"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("paddle.distributed"):
            direct |= {a.name for a in node.names if a.name in COLLECTIVES}
    found = [f"from paddle.distributed import {name}" for name in sorted(direct)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in COLLECTIVES and ast.unparse(node.value) in aliases:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_no_code_calls_paddles_collectives_except_the_distribution():
    """Paddle's object collectives build their buffers on the current device (the GPU after
    init_parallel_env), which the gloo control group cannot take: only training/messages.py may
    call collectives, with host tensors."""
    sources = glob.glob(os.path.join(ROOT, "tinybert", "**", "*.py"), recursive=True)
    sources += glob.glob(os.path.join(ROOT, "*.py")) + glob.glob(os.path.join(ROOT, "scripts", "*.py"))
    offenders, allowed = {}, os.path.join("tinybert", "training", "messages.py")
    for path in sources:
        with open(path, encoding="utf-8") as handle:
            calls = collective_calls(ast.parse(handle.read(), path))
        if calls and not path.endswith(allowed):
            offenders[os.path.relpath(path, ROOT)] = calls
    assert offenders == {}, offenders
    with open(os.path.join(ROOT, allowed), encoding="utf-8") as handle:  # the check sees real calls
        assert "line" in " ".join(collective_calls(ast.parse(handle.read())))


def test_every_script_started_under_the_launcher_leaves_as_the_commands_do():
    """A launched process that ends through the interpreter's shutdown now and then dies with
    SIGABRT in gloo's teardown after finishing its work (CI: the shared-evaluation probe, launcher
    exit -6): each script that starts a Distribution itself must wrap its main in run_cli."""
    sources = glob.glob(os.path.join(HERE, "*.py")) + glob.glob(os.path.join(ROOT, "scripts", "*.py"))
    starters = {}
    for path in sources:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if "Distribution.start(" in text and not path.endswith("test_distributed_waits.py"):
            starters[os.path.relpath(path, ROOT)] = "run_cli(main)" in text or "@run_cli" in text
    assert len(starters) >= 4, starters  # the three probes and gpu_check's
    assert all(starters.values()), starters


def test_the_wait_limit_is_read_from_its_variable_and_a_bad_value_is_one_line(monkeypatch):
    from tinybert.training.rendezvous import DEFAULT_WAIT_SECONDS, WAIT_VARIABLE, wait_seconds

    monkeypatch.delenv(WAIT_VARIABLE, raising=False)
    assert wait_seconds() == DEFAULT_WAIT_SECONDS >= 1800  # at least NCCL's 30 minutes
    monkeypatch.setenv(WAIT_VARIABLE, "7200")
    assert wait_seconds() == 7200
    for bad in ("soon", "0", "-5"):
        monkeypatch.setenv(WAIT_VARIABLE, bad)
        with pytest.raises(UserError, match=f"{WAIT_VARIABLE}=.*seconds"):
            wait_seconds()


def test_a_cpu_run_under_the_launcher_asks_paddle_for_gloo_and_stays_on_the_cpu(monkeypatch):
    """On a CUDA build ``init_parallel_env`` would pick NCCL and the rank's GPU: a CPU run must set
    ``PADDLE_DISTRI_BACKEND=gloo`` before it and the CPU place after it. (Stand-in for the launcher:
    the real 2-process runs above cover the CPU build; scripts/gpu_check.sh the CUDA one.)"""
    import paddle
    import paddle.distributed as dist
    from paddle.base import core

    from tinybert.training.distributed import Distribution

    seen = {}
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")
    monkeypatch.setenv("PADDLE_TRAINER_ID", "0")
    monkeypatch.delenv("PADDLE_DISTRI_BACKEND", raising=False)
    monkeypatch.setattr(dist, "init_parallel_env",
                        lambda: (seen.update(backend=os.environ.get("PADDLE_DISTRI_BACKEND")),
                                 paddle.set_device("gpu:0")))  # what a CUDA build does here
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_rank", lambda: 0)
    monkeypatch.setattr(dist, "new_group", lambda ranks, backend=None: ("group", tuple(ranks), backend))
    monkeypatch.setattr(core, "create_or_get_global_tcp_store", lambda: "store")
    monkeypatch.setattr(paddle, "set_device", lambda device: seen.setdefault("placed", []).append(device))
    control = Distribution.start("cpu")
    control._rendezvous.closed = True  # nothing to close: no real store
    assert seen["backend"] == "gloo"
    assert seen["placed"][-1] == "cpu" and control.device == "cpu"
    assert control._messages.group == ("group", (0, 1), "gloo")


def test_random_state_restores_this_devices_generator_and_says_when_it_cannot():
    import paddle

    from tinybert.training import rng

    paddle.seed(3)
    saved = rng.capture("cpu")
    expected = paddle.rand([4]).numpy()
    paddle.seed(99)
    assert rng.restore(saved, "cpu", fallback_seed=0) is True
    np.testing.assert_array_equal(paddle.rand([4]).numpy(), expected)
    old_format = paddle.get_rng_state()  # what checkpoints of 0.3.x hold
    expected = paddle.rand([4]).numpy()
    assert rng.restore(old_format, "cpu", fallback_seed=0) is True
    np.testing.assert_array_equal(paddle.rand([4]).numpy(), expected)


def test_a_random_state_from_another_kind_of_device_is_said_and_replaced_by_a_seed(capsys):
    import paddle

    from tinybert.training import rng

    saved_on_gpu = {"device": "gpu", "cpu": rng.capture("cpu")["cpu"], "gpu": None}
    assert rng.restore(saved_on_gpu, "cpu", fallback_seed=1234) is False
    assert "saved on gpu" in capsys.readouterr().err
    drawn = paddle.rand([3]).numpy()
    paddle.seed(1234)
    np.testing.assert_array_equal(paddle.rand([3]).numpy(), drawn)
