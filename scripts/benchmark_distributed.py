"""One process against several on the same big generated task; prints JSON. Run it alone on the machine.

For each process count in ``--procs`` (default 1 and 2), a stage-1 distillation with ``--use_aug``
(``task_distill.py --intermediate_distill``, tiny BERT teacher 4 x 64 and TinyBERT student 2 x 32)
starts from nothing on the same generated SST-2 files, each run with its own output directory and
so its own token stores (nothing shared between runs), and makes ``--steps`` steps with one
evaluation at the last. Reported per run:

- ``store_build_s``: the seconds process 0 spent building each token store (train_aug, dev);
- ``start_to_first_step_s``: from the command's start to the end of the first training step;
- ``eval_s``: the evaluation of the dev set (stage 1: teacher and student forwards), from
  ``eval_results.jsonl``;
- ``exit_code``, ``parameters_identical`` (every process's digest of its weights agrees),
  ``waited_for_store`` (a process said it waited for process 0's build).

    python scripts/benchmark_distributed.py                                   # 6M-row train_aug, 40k dev
    python scripts/benchmark_distributed.py --aug_rows 100000 --dev_rows 400000 --procs 2   # a big dev set
    python scripts/benchmark_distributed.py --aug_rows 20000 --dev_rows 2000   # a quick look

The sentences are words drawn Zipf-like from a generated vocabulary of 3,000 lowercase words (the
tokenizer's vocabulary holds them all, plus single letters and ``##`` pieces).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DIGEST = re.compile(r"parameters identical on all \d+ processes \(digest ([0-9a-f]+)\)")
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aug_rows", type=int, default=6_000_000, help="rows of train_aug.tsv")
    parser.add_argument("--dev_rows", type=int, default=40_000, help="rows of dev.tsv")
    parser.add_argument("--procs", default="1,2", help="comma-separated process counts")
    parser.add_argument("--steps", type=int, default=3, help="training steps of each run (evaluated at the last)")
    parser.add_argument("--work_dir", default=None, help="where files go (default: a temporary directory, removed)")
    return parser.parse_args(argv)


def words(count: int = 3000, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    found = set()
    while len(found) < count:
        found.add("".join(rng.choice(letters, size=int(rng.integers(3, 9)))))
    return sorted(found)


def write_task(directory: str, vocabulary, aug_rows: int, dev_rows: int, seed: int = 0) -> None:
    """SST-2's train.tsv (2,000 rows), train_aug.tsv and dev.tsv: 4 to 20 Zipf-drawn words and a label."""
    import numpy as np

    rng = np.random.default_rng(seed)
    table = np.array(vocabulary)
    weights = 1.0 / (np.arange(len(table)) + 10.0)
    weights /= weights.sum()
    os.makedirs(directory, exist_ok=True)
    for name, rows in (("train.tsv", 2000), ("train_aug.tsv", aug_rows), ("dev.tsv", dev_rows)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write("sentence\tlabel\n")
            for start in range(0, rows, 100_000):
                count = min(100_000, rows - start)
                lengths = rng.integers(4, 21, size=count)
                drawn = rng.choice(table, size=int(lengths.sum()), p=weights)
                labels = rng.integers(0, 2, size=count)
                ends = np.cumsum(lengths)
                lines = [" ".join(drawn[end - length:end]) + f"\t{label}\n"
                         for end, length, label in zip(ends, lengths, labels)]
                handle.writelines(lines)


def write_models(directory: str, vocabulary) -> None:
    """A 4 x 64 BERT teacher (with a classifier) and a 2 x 32 TinyBERT student over one vocabulary."""
    from tinybert.runtime import prepare_process

    prepare_process()
    import paddle
    from paddlenlp.transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizer,
        TinyBertConfig,
        TinyBertForSequenceClassification,
    )

    tokens = SPECIAL + list("abcdefghijklmnopqrstuvwxyz") + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + vocabulary
    vocab = os.path.join(directory, "vocab.txt")
    os.makedirs(directory, exist_ok=True)
    with open(vocab, "w", encoding="utf-8") as handle:
        handle.write("\n".join(tokens) + "\n")
    tokenizer = BertTokenizer(vocab, do_lower_case=True)
    paddle.seed(0)
    shape = dict(vocab_size=len(tokens), max_position_embeddings=128, type_vocab_size=2, num_labels=2)
    teacher = BertForSequenceClassification(BertConfig(hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                                                       intermediate_size=128, **shape))
    student = TinyBertForSequenceClassification(TinyBertConfig(hidden_size=32, num_hidden_layers=2,
                                                               num_attention_heads=4, intermediate_size=64,
                                                               fit_size=64, **shape))
    for name, model in (("teacher", teacher), ("student", student)):
        model.save_pretrained(os.path.join(directory, name))
        tokenizer.save_pretrained(os.path.join(directory, name))


def run(work: str, procs: int, steps: int) -> dict:
    output = os.path.join(work, f"run-{procs}")
    log_dir = os.path.join(work, f"log-{procs}")
    shutil.rmtree(output, ignore_errors=True)
    shutil.rmtree(log_dir, ignore_errors=True)
    flags = ["--teacher_path", os.path.join(work, "models", "teacher"), "--student_model_name_or_path",
             os.path.join(work, "models", "student"), "--task_name", "SST-2", "--glue_dir", os.path.join(work, "glue"),
             "--device", "cpu", "--max_seq_length", "64", "--batch_size", "32", "--eval_batch_size", "64",
             "--intermediate_distill", "--use_aug", "--max_steps", str(steps), "--save_steps", str(steps),
             "--logging_steps", "1", "--output_dir", output]
    script = os.path.join(ROOT, "task_distill.py")
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // procs)))
    os.makedirs(log_dir)
    if procs == 1:
        command, first_log = [sys.executable, script, *flags], os.path.join(log_dir, "workerlog.0")
    else:
        command = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(procs), "--log_dir",
                   log_dir, script, *flags]
        first_log = os.path.join(log_dir, "workerlog.0")
    started = time.time()
    with open(os.path.join(log_dir, "launcher.log" if procs > 1 else "workerlog.0"), "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
        first_step = None
        while process.poll() is None:
            if first_step is None and _has_step_one(first_log):
                first_step = time.time() - started
            time.sleep(0.05)
    total = time.time() - started
    if first_step is None and _has_step_one(first_log):
        first_step = total  # the run ended between two looks
    logs = [open(path, encoding="utf-8", errors="replace").read()
            for path in sorted(glob.glob(os.path.join(log_dir, "workerlog.*")))]
    digests = [DIGEST.findall(log) for log in logs] if procs > 1 else []
    record = {}
    history = os.path.join(output, "eval_results.jsonl")
    if os.path.exists(history):
        with open(history, encoding="utf-8") as handle:
            record = json.loads(handle.readlines()[-1])
    stores = {}
    for meta in glob.glob(os.path.join(output, "cache", "*", "meta.json")):
        with open(meta, encoding="utf-8") as handle:
            content = json.load(handle)
        stores[os.path.basename(content["source"])] = {"rows": content["examples"], "seconds": content["seconds"]}
    return {"processes": procs, "exit_code": process.returncode, "total_s": round(total, 1),
            "start_to_first_step_s": None if first_step is None else round(first_step, 1),
            "store_build_s": {name: entry["seconds"] for name, entry in stores.items()},
            "eval_s": record.get("eval_seconds"), "dev_loss": record.get("dev_loss"),
            "parameters_identical": (bool(digests) and all(d and d == digests[0] for d in digests)) if procs > 1 else None,
            "waited_for_store": any("waiting for process 0 to build the token stores" in log for log in logs[1:]),
            "errors": [line for log in logs for line in log.splitlines() if line.startswith("error:")][:4]}


def _has_step_one(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return re.search(r"\] step 1/\d+", handle.read()) is not None
    except OSError:
        return False


def main(argv=None) -> None:
    args = parse_args(argv)
    work = args.work_dir or tempfile.mkdtemp(prefix="tinybert-bench-dist-")
    try:
        vocabulary = words()
        started = time.time()
        write_task(os.path.join(work, "glue", "SST-2"), vocabulary, args.aug_rows, args.dev_rows)
        generated = time.time() - started
        write_models(os.path.join(work, "models"), vocabulary)
        report = {"aug_rows": args.aug_rows, "dev_rows": args.dev_rows, "steps": args.steps,
                  "cpu_count": os.cpu_count(), "generate_s": round(generated, 1),
                  "runs": [run(work, int(n), args.steps) for n in args.procs.split(",")]}
        print(json.dumps(report, indent=1))
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
