"""The training data path at GLUE's largest sizes: old (read + featurize in memory) vs the token
store; prints JSON. Run it alone on the machine: every figure is a time or a memory peak.

For each R in ``--rows`` it writes a synthetic MNLI-format ``train.tsv`` of R rows (premise ~22
words, hypothesis ~11, words drawn Zipf-like from the real uncased BERT vocabulary of the demo's
MiniLM, so WordPiece sees real words and real pieces; each premise repeated by about half the
rows, as augmented files repeat the unchanged side) and measures, each in a fresh process:

- ``old``: the previous path (``load_task_data`` without a store: every row read into Python
  objects and tokenized by PaddleNLP) on the first ``--old_rows`` rows (it is linear in rows):
  rows/s and memory growth;
- ``cold``: building the store: rows/s, size on disk, memory growth;
- ``stage_cold`` / ``stage_warm``: a real stage start (``api.finetune_teacher`` of a tiny BERT
  with the same vocabulary, one step) with a missing and with a finished store: seconds from
  the call to the end of the first step, and the peak resident memory above a start on a
  100-row file (the model, Paddle and the dev set cost the same in both);

and once: augmentation rows/s (``api.augment`` with GloVe replacement only, a synthetic
50-d GloVe over the vocabulary's words, on ``--aug_rows`` rows of the same file).

    python scripts/benchmark_data.py                       # 200k and 1M rows (about 10 min here)
    python scripts/benchmark_data.py --rows 20000 --old_rows 5000 --aug_rows 200   # a quick look
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
          "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
LABELS = ["contradiction", "entailment", "neutral"]


def vocabulary(path: str):
    with open(path, encoding="utf-8") as handle:
        tokens = [line.rstrip("\n") for line in handle]
    return tokens, [t for t in tokens if t.isalpha() and t.isascii() and len(t) > 1]


def write_mnli(directory: str, rows: int, words, seed: int = 0) -> str:
    """MNLI-format train.tsv (and a 200-row dev set) of synthetic sentences over real words."""
    rng = random.Random(seed)
    weights = [1.0 / (rank + 10) for rank in range(len(words))]  # Zipf-like: common words repeat
    pool = rng.choices(words, weights=weights, k=1 << 20)

    def sentence(length):
        start = rng.randrange(len(pool) - length)
        return " ".join(pool[start:start + length]).capitalize() + "."

    os.makedirs(directory, exist_ok=True)
    for name, count in (("train.tsv", rows), ("dev_matched.tsv", 200), ("dev_mismatched.tsv", 200)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write("\t".join(HEADER) + "\n")
            premise = sentence(22)
            for i in range(count):
                if i % 2 == 0:
                    premise = sentence(rng.randint(16, 28))
                label = rng.choice(LABELS)
                fields = [str(i), "0", "0", "fiction", "", "", "", "", premise, sentence(rng.randint(7, 15)), label,
                          label]
                handle.write("\t".join(fields) + "\n")
    return os.path.join(directory, "train.tsv")


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------- measurements (child processes)
def measure(kind: str, options: dict) -> dict:
    from tinybert.runtime import prepare_process

    prepare_process()
    from paddlenlp.transformers import BertTokenizer

    from tinybert.data.task_data import load_task_data
    from tinybert.data.store import open_store
    from tinybert.data.tasks import get_task

    spec = get_task("MNLI")
    tokenizer = BertTokenizer.from_pretrained(options["model"])
    before = rss_mb()
    started = time.perf_counter()
    if kind == "old":
        data = load_task_data(spec, tokenizer, options["glue"], 128)
        rows = len(data.train)
        return {"rows": rows, "seconds": time.perf_counter() - started,
                "rows_per_s": rows / (time.perf_counter() - started), "memory_growth_mb": peak_mb() - before}
    if kind == "cold":
        store = open_store(options["cache"], options["train"], spec, "train", tokenizer, 128, False, True,
                           progress=False)
        seconds = time.perf_counter() - started
        size = sum(os.path.getsize(os.path.join(store.directory, n)) for n in os.listdir(store.directory))
        return {"rows": len(store), "seconds": seconds, "rows_per_s": len(store) / seconds,
                "tokenizer": store.meta["tokenizer_used"], "store_mb": size / 2**20, "tokens": store.meta["tokens"],
                "bytes_per_row": size / len(store), "memory_growth_mb": peak_mb() - before}
    # a real stage start: finetune one step; the loop's first step ends the measurement
    from tinybert import api
    from tinybert.settings import FinetuneSettings
    from tinybert.training import loop

    first_step = {}
    original = loop.Trainer.optimize

    def timed(self, value):
        original(self, value)
        first_step.setdefault("seconds", time.perf_counter() - started)
    loop.Trainer.optimize = timed
    api.finetune_teacher(FinetuneSettings(
        model_name_or_path=options["model"], task_name="MNLI", glue_dir=options["glue"], cache_dir=options["cache"],
        output_dir=options["output"], max_seq_length=128, batch_size=32, max_steps=1, save_steps=1000,
        logging_steps=1000, device="cpu", overwrite_output_dir=True, eval_batch_size=64))
    return {"seconds_to_first_step": first_step["seconds"], "peak_rss_mb": peak_mb(), "rss_before_mb": before}


def child(kind: str, **options) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--_measure", kind, "--_options", json.dumps(options)]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def tiny_bert(directory: str, vocab_path: str) -> str:
    """A 2-layer, 32-wide BERT classifier over the real vocabulary (the stage start's model)."""
    from tinybert.runtime import prepare_process

    prepare_process()
    import paddle
    from paddlenlp.transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizer,
    )

    paddle.seed(0)
    tokenizer = BertTokenizer(vocab_path, do_lower_case=True)
    config = BertConfig(vocab_size=len(tokenizer.get_vocab()), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512, num_labels=3)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def augmentation(work: str, train: str, words, rows: int) -> dict:
    """Rows/s of data_augmentation (GloVe replacement only) on the first ``rows`` rows."""
    glue = os.path.join(work, "aug_glue")
    os.makedirs(os.path.join(glue, "MNLI"), exist_ok=True)
    with open(train, encoding="utf-8") as source, open(os.path.join(glue, "MNLI", "train.tsv"), "w",
                                                       encoding="utf-8") as target:
        for number, line in enumerate(source):
            if number > rows:
                break
            target.write(line)
    rng = random.Random(0)
    glove = os.path.join(work, "glove.txt")
    with open(glove, "w", encoding="utf-8") as handle:
        for word in words:
            handle.write(word + " " + " ".join(f"{rng.gauss(0, 1):.4f}" for _ in range(50)) + "\n")
    command = [sys.executable, "data_augmentation.py", "--pretrained_bert_model", "none", "--glove_embs", glove,
               "--glue_dir", glue, "--task_name", "MNLI", "--N", "4", "--device", "cpu"]
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"augmentation failed:\n{out.stderr[-3000:]}")
    return {"rows": rows, "N": 4, "seconds_with_start": seconds, "rows_per_s": rows / seconds,
            "last_line": out.stdout.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="200000,1000000", help="training-file sizes, comma-separated")
    parser.add_argument("--old_rows", type=int, default=50000, help="rows the old path is timed on")
    parser.add_argument("--aug_rows", type=int, default=2000)
    parser.add_argument("--vocab", default=os.path.join(ROOT, "assets", "minilm", "vocab.txt"),
                        help="a BERT vocab.txt (default: the demo's MiniLM, scripts/fetch_assets.py minilm)")
    parser.add_argument("--work_dir", default=None, help="keep the generated files here (default: a temp dir)")
    parser.add_argument("--_measure", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._measure:
        print(json.dumps(measure(args._measure, json.loads(args._options))))
        return
    if not os.path.isfile(args.vocab):
        raise SystemExit(f"{args.vocab} not found: run python scripts/fetch_assets.py minilm, or pass --vocab")
    work = args.work_dir or tempfile.mkdtemp(prefix="benchmark_data_")
    _, words = vocabulary(args.vocab)
    model = tiny_bert(os.path.join(work, "model"), args.vocab)
    report = {"machine": {"cpus": os.cpu_count()}, "vocab": args.vocab, "sizes": []}
    small = write_mnli(os.path.join(work, "small", "MNLI"), 100, words)
    baseline = child("stage", model=model, glue=os.path.dirname(os.path.dirname(small)),
                     cache=os.path.join(work, "small_cache"), output=os.path.join(work, "out_small"))
    report["stage_baseline_100_rows"] = baseline
    for rows in [int(r) for r in args.rows.split(",")]:
        glue = os.path.join(work, f"glue_{rows}")
        train = write_mnli(os.path.join(glue, "MNLI"), rows, words)
        old_glue = os.path.join(work, f"old_{rows}")
        os.makedirs(os.path.join(old_glue, "MNLI"), exist_ok=True)
        for name in os.listdir(os.path.join(glue, "MNLI")):
            source = os.path.join(glue, "MNLI", name)
            if name == "train.tsv":
                with open(source, encoding="utf-8") as src, open(os.path.join(old_glue, "MNLI", name), "w",
                                                                 encoding="utf-8") as dst:
                    for number, line in enumerate(src):
                        if number > min(rows, args.old_rows):
                            break
                        dst.write(line)
            else:
                shutil.copy(source, os.path.join(old_glue, "MNLI", name))
        entry = {"rows": rows, "file_mb": os.path.getsize(train) / 2**20}
        entry["old"] = child("old", model=model, glue=old_glue)
        cache = os.path.join(work, f"cache_{rows}")
        entry["cold"] = child("cold", model=model, train=train, cache=cache)
        shutil.rmtree(cache)
        entry["stage_cold"] = child("stage", model=model, glue=glue, cache=cache, output=os.path.join(work, "out"))
        entry["stage_warm"] = child("stage", model=model, glue=glue, cache=cache, output=os.path.join(work, "out"))
        for name in ("stage_cold", "stage_warm"):
            entry[name]["memory_growth_mb"] = entry[name]["peak_rss_mb"] - baseline["peak_rss_mb"]
        entry["featurization_speedup"] = entry["cold"]["rows_per_s"] / entry["old"]["rows_per_s"]
        entry["old_extrapolated"] = {"seconds": rows / entry["old"]["rows_per_s"],
                                     "memory_mb": entry["old"]["memory_growth_mb"] * rows / entry["old"]["rows"]}
        report["sizes"].append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)
    first = report["sizes"][-1]
    report["augmentation"] = augmentation(work, os.path.join(work, f"glue_{first['rows']}", "MNLI", "train.tsv"),
                                          words, args.aug_rows)
    mnli_aug = 8_250_000
    report["mnli_aug_extrapolated"] = {
        "rows": mnli_aug,
        "old_minutes_per_process": mnli_aug / first["old"]["rows_per_s"] / 60,
        "old_memory_gb_per_process": first["old"]["memory_growth_mb"] / first["old"]["rows"] * mnli_aug / 1024,
        "store_build_minutes_once": mnli_aug / first["cold"]["rows_per_s"] / 60,
        "store_gb_on_disk": first["cold"]["bytes_per_row"] * mnli_aug / 2**30,
    }
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
