"""General distillation, demonstrated at small scale on the demo's real model and text.

    bash scripts/demo.sh                  # first: the assets, the MiniLM port, the task, the teacher
    python scripts/demo_general.py        # then this (about 20 minutes on two CPU cores)

The question: does general distillation let a *narrow* student (TinyBERT4's shape, 4 layers of
width 312, where the demo's student keeps MiniLM's width 384) start task distillation from
something better than random weights, for the same task-distillation budget?

 1. corpus: the Rotten Tomatoes snippets that are not in the demo's dev set (the train side of
    the same seeded split; checked: no dev sentence in it), one snippet per document;
 2. (a) general-distil a 4 x 312 student from the pretrained MiniLM-L6 (general_distill.py);
    (b) the same shape, randomly initialised (same seed);
 3. both through task-distillation stage 1 and stage 2 with the demo's fine-tuned teacher, on
    the demo's augmented training set, with the same settings;
 4. dev accuracy, parameters and latency (tinybert.serving.latency) of both and of the teacher:
    printed, and saved to <output_dir>/results.json and results.md.

A demonstration on ~12k short sentences, not a reproduction: the paper general-distils on
English Wikipedia for days.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

from tinybert.errors import UserError, require, run_cli  # noqa: E402

TASK = "SST-2"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo_dir", default=os.path.join(ROOT, "demo_output"), help="what scripts/demo.py wrote")
    parser.add_argument("--cache_dir", default=os.path.join(ROOT, "assets"), help="the demo's fetched assets")
    parser.add_argument("--output_dir", default=None, help="default: <demo_dir>/general")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=312)
    parser.add_argument("--intermediate", type=int, default=1200)
    parser.add_argument("--layer_map", default="2,3,4,6",
                        help="teacher layer for each student layer (MiniLM's 6 layers do not divide by 4)")
    parser.add_argument("--general_epochs", type=float, default=1)
    parser.add_argument("--general_lr", type=float, default=5e-4)
    parser.add_argument("--general_max_seq_length", type=int, default=64)
    parser.add_argument("--inter_epochs", type=float, default=0.5)
    parser.add_argument("--inter_lr", type=float, default=5e-4)
    parser.add_argument("--pred_epochs", type=float, default=1.0)
    parser.add_argument("--pred_lr", type=float, default=5e-4)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def run(name: str, command, log_dir: str) -> float:
    """Run one step, its output in <log_dir>/<name>.log; a failure stops the demo with its log's tail."""
    started = time.time()
    log = os.path.join(log_dir, f"{name}.log")
    print(f"\n== {name}: {' '.join(str(c) for c in command)}", flush=True)
    with open(log, "w", encoding="utf-8") as handle:
        code = subprocess.call([str(c) for c in command], stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    seconds = time.time() - started
    if code != 0:
        with open(log, encoding="utf-8", errors="replace") as handle:
            tail = handle.read()[-2000:]
        raise UserError(f"step '{name}' failed (exit {code}); its log is {log}:\n{tail}")
    print(f"   done in {seconds:.0f}s (log: {log})", flush=True)
    return seconds


def write_corpus(args, out: str) -> dict:
    """Every non-dev snippet of the demo's seeded split, one per document; no dev sentence."""
    from tinybert.data.glue import read_examples
    from tinybert.data.tasks import get_task

    split_dir = os.path.join(out, "corpus_split")
    run("corpus split", [sys.executable, os.path.join(ROOT, "scripts", "make_rt_task.py"), "--source",
                         os.path.join(args.cache_dir, "rotten_tomatoes", "rotten_tomatoes_corpus_full.csv.bz2"),
                         "--output_dir", split_dir, "--dev_size", "1000", "--train_size", "0", "--seed", args.seed], out)
    spec = get_task(TASK)
    train = [e.texts[0] for e in read_examples(os.path.join(split_dir, "train.tsv"), spec).examples]
    dev = {e.texts[0] for e in read_examples(os.path.join(args.demo_dir, "glue", TASK, "dev.tsv"), spec).examples}
    overlap = dev.intersection(train)
    require(not overlap, f"{len(overlap)} dev sentences in the corpus: the split differs from the demo's")
    path = os.path.join(out, "corpus.txt")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n\n".join(train) + "\n")
    return {"path": path, "sentences": len(train), "dev_sentences_in_corpus": 0}


def random_student(args, teacher_dir: str, path: str) -> None:
    """The general student's shape, randomly initialised (the comparison's other arm)."""
    import paddle
    from paddlenlp.transformers import BertTokenizer, TinyBertForSequenceClassification

    from tinybert.distillation.general import student_config
    from tinybert.models.loading import load_model

    teacher = load_model("bert", teacher_dir, "--teacher_path")
    shape = argparse.Namespace(student_num_layers=args.layers, student_hidden_size=args.hidden,
                               student_intermediate_size=args.intermediate, student_num_heads=None)
    paddle.seed(args.seed)
    model = TinyBertForSequenceClassification(student_config(shape, teacher))
    model.save_pretrained(path)
    BertTokenizer.from_pretrained(teacher_dir).save_pretrained(path)


def task_distill(args, name: str, student: str, out: str, log_dir: str) -> dict:
    demo = args.demo_dir
    common = ["--model_type", "tinybert", "--teacher_model_type", "bert", "--teacher_path",
              os.path.join(demo, "teacher", "best_model"), "--task_name", TASK, "--glue_dir", os.path.join(demo, "glue"),
              "--use_aug", "--max_seq_length", args.max_seq_length, "--batch_size", args.batch_size, "--seed", args.seed,
              "--device", "cpu", "--output_dir", os.path.join(out, name), "--overwrite_output_dir",
              "--logging_steps", 50, "--save_steps", 100000]
    seconds = run(f"{name} stage 1", [sys.executable, os.path.join(ROOT, "task_distill.py"),
                                      "--student_model_name_or_path", student, "--intermediate_distill", *common,
                                      "--layer_map", args.layer_map,
                                      "--learning_rate", args.inter_lr, "--num_train_epochs", args.inter_epochs], log_dir)
    seconds += run(f"{name} stage 2", [sys.executable, os.path.join(ROOT, "task_distill.py"),
                                       "--student_model_name_or_path", os.path.join(out, name, "best_inter_model"),
                                       *common, "--learning_rate", args.pred_lr, "--num_train_epochs", args.pred_epochs],
                   log_dir)
    return {"best_model": os.path.join(out, name, "best_model"), "seconds": round(seconds, 1)}


def evaluate(args, models: dict) -> dict:
    from tinybert.data.tasks import get_task
    from tinybert.report import evaluate_checkpoint, load_dev
    from tinybert.serving import latency

    spec = get_task(TASK)
    devs = load_dev(spec, os.path.join(args.demo_dir, "glue"))
    evaluated = {name: evaluate_checkpoint(name, path, spec, devs, args.max_seq_length) for name, path in models.items()}
    teacher = evaluated["teacher"]
    sentences = [e.texts[0] for e in devs[0].examples[:256]]
    features = latency.features_from_texts(teacher.tokenizer, sentences, args.max_seq_length)
    measured = latency.measure({n: latency.dygraph_runner(e.model) for n, e in evaluated.items()}, features,
                               teacher.tokenizer.pad_token_id)
    rows = {}
    for name, e in evaluated.items():
        ms = {b: latency.ms_per_example(measured, b, name) for b in latency.BATCH_SIZES}
        rows[name] = {"accuracy": e.metrics["acc"] if "acc" in e.metrics else e.metrics["score"],
                      "layers": e.layers, "hidden": e.hidden, "parameters": e.parameters,
                      "ms_per_example": ms,
                      "speedup": {b: latency.ms_per_example(measured, b, "teacher") / ms[b] for b in ms}}
    return {"rows": rows, "latency": latency.describe(measured)}


def markdown(result: dict) -> str:
    labels = {"teacher": "teacher: MiniLM-L6 fine-tuned",
              "general": "(a) general-distilled, then task-distilled",
              "random": "(b) random init, then task-distilled"}
    lines = ["| student | layers x hidden | parameters | dev acc | ms/example b1 | speed-up b1 | ms/example b32 | speed-up b32 |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in result["evaluation"]["rows"].items():
        lines.append(f"| {labels[name]} | {row['layers']} x {row['hidden']} | {row['parameters'] / 1e6:.1f}M | "
                     f"{row['accuracy']:.4f} | {row['ms_per_example'][1]:.2f} | {row['speedup'][1]:.2f}x | "
                     f"{row['ms_per_example'][32]:.2f} | {row['speedup'][32]:.2f}x |")
    return "\n".join(lines) + f"\n\n{result['evaluation']['latency']}\n"


@run_cli
def main(argv=None) -> dict:
    args = parse_args(argv)
    out = os.path.abspath(args.output_dir or os.path.join(args.demo_dir, "general"))
    for needed in ("minilm", os.path.join("teacher", "best_model"), os.path.join("glue", TASK, "train_aug.tsv")):
        require(os.path.exists(os.path.join(args.demo_dir, needed)),
                f"{os.path.join(args.demo_dir, needed)} is missing: run bash scripts/demo.sh first")
    os.makedirs(out, exist_ok=True)
    corpus = write_corpus(args, out)
    minilm = os.path.join(args.demo_dir, "minilm")
    timings = {"general distillation": run("general distillation", [
        sys.executable, os.path.join(ROOT, "general_distill.py"), "--teacher_path", minilm,
        "--student_num_layers", args.layers, "--student_hidden_size", args.hidden,
        "--student_intermediate_size", args.intermediate, "--layer_map", args.layer_map, "--corpus", corpus["path"],
        "--max_seq_length", args.general_max_seq_length, "--batch_size", args.batch_size,
        "--learning_rate", args.general_lr, "--num_train_epochs", args.general_epochs, "--logging_steps", 50,
        "--save_steps", 100000, "--seed", args.seed, "--device", "cpu", "--output_dir", os.path.join(out, "general_run"),
        "--overwrite_output_dir"], out)}
    random_student(args, minilm, os.path.join(out, "random_init"))
    arms = {"general": task_distill(args, "general", os.path.join(out, "general_run", "general_model"), out, out),
            "random": task_distill(args, "random", os.path.join(out, "random_init"), out, out)}
    timings.update({f"{k} task distillation": v["seconds"] for k, v in arms.items()})
    models = {"teacher": os.path.join(args.demo_dir, "teacher", "best_model"),
              **{k: v["best_model"] for k, v in arms.items()}}
    result = {"settings": vars(args), "corpus": corpus, "timings_seconds": timings, "evaluation": evaluate(args, models)}
    table = markdown(result)
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1, default=str)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(table)
    print("\n" + table)
    return result


if __name__ == "__main__":
    main()
