"""The offline end-to-end demo: real text, a real pretrained model, a CPU, no model hub.

    bash scripts/demo.sh                   # installs, fetches the assets, then runs this
    python scripts/demo.py [--output_dir demo_output] [--fresh]

Steps (each prints the command it runs, so they can be replayed by hand):
 1. assets: all-MiniLM-L6-v2, GloVe 6B 50d, Rotten Tomatoes snippets (scripts/fetch_assets.py);
 2. convert MiniLM to a PaddleNLP BERT checkpoint, checked against a numpy forward;
 3. an SST-2-format task from the Rotten Tomatoes snippets: seeded split, 1,000 dev sentences,
    a 3,000-sentence train set (scripts/make_rt_task.py);
 4. fine-tune the MiniLM teacher (finetune_teacher.py);
 5. GloVe as a text file, then augment the train set (data_augmentation.py
    --pretrained_bert_model none: the offline demo has no masked LM, GloVe serves every word);
 6. a 3-layer student from MiniLM's layers 1,3,5 (scripts/build_student.py);
 7. task distillation, stage 1 then stage 2, on the augmented set (task_distill.py --use_aug);
 8. the baseline: the same student fine-tuned directly on the train set, no teacher;
 9. dev accuracy, parameters and CPU latency (batch 1 and 32, measured now, in this process)
    of all three models, and of the teacher and the distilled student exported (export_model.py's
    pipeline) to Paddle Inference float32, ONNX Runtime float32 and ONNX Runtime INT8, each export
    checked on the dev set: printed and saved to <output_dir>/results.json and results.md.

Outputs of finished steps are reused when the step's command is unchanged (a ``.step.json``
stamp records it); a changed setting redoes that step and every step after it. ``--fresh``
starts over. The settings below were tuned to fit 20 minutes on two CPU cores (README).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

from tinybert.errors import UserError, run_cli  # noqa: E402

TASK = "SST-2"
STAMP = ".step.json"


@dataclass
class Settings:
    """Every choice of the demo; each is a flag of this script (``--train_size 3000`` ...)."""

    train_size: int = 3000
    dev_size: int = 1000
    seed: int = 42
    max_seq_length: int = 64
    batch_size: int = 32
    teacher_lr: float = 5e-5
    teacher_epochs: float = 2.0
    student_layers: str = "1,3,5"
    augment_n: int = 4
    glove_words: int = 100000
    inter_lr: float = 1e-4
    inter_epochs: float = 0.25
    pred_lr: float = 2e-4
    pred_epochs: float = 1.0
    temperature: float = 1.0
    baseline_lr: float = 2e-4
    baseline_epochs: float = 3.0
    teacher_evaluations: int = 2  # dev evaluations per run (the best one is kept)
    inter_evaluations: int = 1  # stage 1 keeps its last student; a dev pass costs a teacher forward
    pred_evaluations: int = 3
    baseline_evaluations: int = 3
    latency_sentences: int = 128
    latency_rounds: int = 3
    deploy: int = 1  # 1: export teacher and student (Paddle Inference, ONNX fp32/INT8) and time them


# ------------------------------------------------------------------ steps
class Pipeline:
    """Runs steps in order. A step is reused when its output exists, its stamp holds the same
    command, and none of the steps it depends on ran in this invocation."""

    def __init__(self, output_dir: str, python: str = sys.executable, previous: Optional[Dict[str, dict]] = None):
        self.output_dir = output_dir
        self.python = python
        self.ran: set = set()
        self.timings: Dict[str, dict] = {}
        self.previous = previous or {}  # step timings of the last run, kept for reused steps

    def path(self, *parts: str) -> str:
        return os.path.join(self.output_dir, *parts)

    @staticmethod
    def stamp_path(output: str) -> str:
        return os.path.join(os.path.dirname(output), f".{os.path.basename(output)}{STAMP}")

    def run(self, name: str, output: str, command: Sequence[object], summary: str = "",
            depends: Sequence[str] = ()) -> None:
        """Run ``command`` unless ``output`` exists from the same command with unchanged inputs."""
        command = [str(part) for part in command]
        stamp = self.stamp_path(output)
        shown = " ".join(shlex.quote(_relative(part)) for part in command)
        upstream = [d for d in depends if d in self.ran]
        if not upstream and os.path.exists(output) and _read_stamp(stamp) == command[1:]:
            print(f"\n== {name}: reusing {_relative(output)} (same command as before)", flush=True)
            self.timings[name] = {"seconds": 0.0, "reused": True}
            before = self.previous.get(name, {})
            when_run = before.get("seconds_when_run", None if before.get("reused") else before.get("seconds"))
            if when_run is not None:
                self.timings[name]["seconds_when_run"] = when_run
            return
        for stale in (output, stamp):
            if os.path.isdir(stale):
                shutil.rmtree(stale)
            elif os.path.exists(stale):
                os.remove(stale)
        print(f"\n== {name}{': ' + summary if summary else ''}\n$ {shown}", flush=True)
        started = time.time()
        result = subprocess.run(command, cwd=ROOT)
        if result.returncode != 0:
            raise UserError(f"step '{name}' failed (exit status {result.returncode}); the command was:\n  {shown}")
        seconds = time.time() - started
        with open(stamp, "w", encoding="utf-8") as handle:
            json.dump(command[1:], handle)  # without the interpreter: another python may reuse the step
        self.timings[name] = {"seconds": round(seconds, 1), "reused": False}
        self.ran.add(name)
        print(f"== {name}: {seconds:.0f}s", flush=True)

    def script(self, name: str, *args: object) -> List[str]:
        return [self.python, os.path.join(ROOT, name), *[str(a) for a in args]]


def _relative(path: str) -> str:
    return os.path.relpath(path, ROOT) if os.path.isabs(path) and path.startswith(ROOT + os.sep) else path


def _read_stamp(path: str) -> Optional[list]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def glove_text(cache_dir: str, output: str, words: int) -> None:
    """GloVe's .npy + parquet (the PyPI asset) -> the text format (``word v1 ... v50``) of the
    official glove.6B.50d.txt, first ``words`` words: what data_augmentation.py reads.

    Values are written with 6 significant digits, which reproduces the official file's
    numbers exactly (checked here: each row must parse back to the same float32 vector).
    """
    import numpy as np
    import pyarrow.parquet as pq

    index = os.path.join(cache_dir, "glove", "glove_6B_index.parquet")
    matrix = os.path.join(cache_dir, "glove", "glove_6B_50d_emb.npy")
    names = pq.read_table(index, columns=["index"]).column("index").to_pylist()[:words]
    vectors = np.load(matrix, mmap_mode="r")[:len(names)]
    if len(names) != len(vectors):
        raise UserError(f"{index} and {matrix} disagree on the number of words; fetch the glove asset again")
    text = np.char.mod("%.6g", vectors).astype("U16")  # room for the 9-digit fallback
    exact = np.all(text.astype(np.float32) == vectors, axis=1)
    text[~exact] = np.char.mod("%.9g", vectors[~exact])  # never taken on the real file
    if any(" " in name or not name for name in names):
        raise UserError(f"{index}: a word is empty or holds a space; it cannot be written as GloVe text")
    os.makedirs(os.path.dirname(output), exist_ok=True)
    temporary = f"{output}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
        for name, row in zip(names, text):
            handle.write(name + " " + " ".join(row) + "\n")
    os.replace(temporary, output)


def steps_between_evaluations(examples: int, batch_size: int, epochs: float, evaluations: int) -> int:
    """``--save_steps`` giving about ``evaluations`` dev evaluations over a run."""
    steps = max(1, int(-(-examples * epochs // batch_size)))
    return max(1, -(-steps // max(1, evaluations)))


def count_lines(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for _ in handle)


def previous_timings(output_dir: str) -> Dict[str, dict]:
    try:
        with open(os.path.join(output_dir, "results.json"), encoding="utf-8") as handle:
            return dict(json.load(handle).get("step_seconds") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def run_pipeline(settings: Settings, output_dir: str, cache_dir: str) -> Dict[str, object]:
    """Steps 1-8: every model on disk. Returns paths and timings."""
    p = Pipeline(output_dir, previous=previous_timings(output_dir))
    s = settings
    glue = p.path("glue")
    minilm, student0 = p.path("minilm"), p.path("student_init")
    teacher, distill, baseline = p.path("teacher"), p.path("distill"), p.path("baseline")
    glove = p.path("glove", f"glove.6B.50d.{s.glove_words}.txt")
    common = ["--task_name", TASK, "--glue_dir", glue, "--max_seq_length", s.max_seq_length,
              "--batch_size", s.batch_size, "--seed", s.seed, "--device", "cpu"]

    missing = [name for name in ("minilm", "glove", "rotten_tomatoes")
               if not os.path.isfile(os.path.join(cache_dir, name, "SOURCE.json"))]
    if missing:  # demo.sh fetched them already; this is for `python scripts/demo.py` alone
        p.run("fetch assets", os.path.join(cache_dir, missing[0]),
              p.script("scripts/fetch_assets.py", *missing, "--cache_dir", cache_dir))
    p.run("convert MiniLM", minilm,
          p.script("scripts/convert_minilm.py", "--source", os.path.join(cache_dir, "minilm"),
                   "--output_dir", minilm, "--check"),
          "all-MiniLM-L6-v2 (safetensors) -> PaddleNLP BERT, checked against a numpy forward")
    p.run("task", os.path.join(glue, TASK),
          p.script("scripts/make_rt_task.py", "--source",
                   os.path.join(cache_dir, "rotten_tomatoes", "rotten_tomatoes_corpus_full.csv.bz2"),
                   "--output_dir", os.path.join(glue, TASK), "--dev_size", s.dev_size,
                   "--train_size", s.train_size, "--seed", s.seed),
          f"Rotten Tomatoes in SST-2 format, {s.train_size} train / {s.dev_size} dev sentences")

    save = steps_between_evaluations(s.train_size, s.batch_size, s.teacher_epochs, s.teacher_evaluations)
    p.run("teacher", os.path.join(teacher, "best_model"),
          p.script("finetune_teacher.py", "--model_type", "bert", "--model_name_or_path", minilm, *common,
                   "--learning_rate", s.teacher_lr, "--num_train_epochs", s.teacher_epochs,
                   "--logging_steps", save, "--save_steps", save, "--output_dir", teacher, "--overwrite_output_dir"),
          f"fine-tune MiniLM-L6 on {s.train_size} sentences, {s.teacher_epochs:g} epoch(s)",
          depends=("convert MiniLM", "task"))

    if not os.path.isfile(glove):
        print(f"\n== GloVe 6B 50d as text (first {s.glove_words} words): {_relative(glove)}", flush=True)
        started = time.time()
        glove_text(cache_dir, glove, s.glove_words)
        p.timings["GloVe text"] = {"seconds": round(time.time() - started, 1), "reused": False}
    aug = os.path.join(glue, TASK, "train_aug.tsv")
    p.run("augmentation", aug,
          p.script("data_augmentation.py", "--pretrained_bert_model", "none", "--glove_embs", glove,
                   "--glue_dir", glue, "--task_name", TASK, "--N", s.augment_n, "--seed", s.seed,
                   "--device", "cpu", "--glove_vocab_limit", s.glove_words),
          f"up to N={s.augment_n} GloVe variants per sentence", depends=("task",))
    aug_size = count_lines(aug) - 1

    p.run("student", student0,
          p.script("scripts/build_student.py", "--source", minilm, "--layers", s.student_layers,
                   "--output_dir", student0, "--seed", s.seed),
          f"TinyBERT student from MiniLM's layers {s.student_layers} (0-based)", depends=("convert MiniLM",))
    teacher_model = os.path.join(teacher, "best_model")
    distill_common = ["--model_type", "tinybert", "--teacher_model_type", "bert", "--teacher_path", teacher_model,
                      *common, "--use_aug", "--T", s.temperature, "--output_dir", distill, "--overwrite_output_dir"]
    save = steps_between_evaluations(aug_size, s.batch_size, s.inter_epochs, s.inter_evaluations)
    p.run("stage 1", os.path.join(distill, "best_inter_model"),
          p.script("task_distill.py", "--student_model_name_or_path", student0, "--intermediate_distill",
                   *distill_common, "--learning_rate", s.inter_lr, "--num_train_epochs", s.inter_epochs,
                   "--logging_steps", save, "--save_steps", save),
          f"hidden states and attention scores on {aug_size} augmented sentences, {s.inter_epochs:g} epoch(s)",
          depends=("teacher", "augmentation", "student"))
    save = steps_between_evaluations(aug_size, s.batch_size, s.pred_epochs, s.pred_evaluations)
    p.run("stage 2", os.path.join(distill, "best_model"),
          p.script("task_distill.py", "--student_model_name_or_path", os.path.join(distill, "best_inter_model"),
                   *distill_common, "--learning_rate", s.pred_lr, "--num_train_epochs", s.pred_epochs,
                   "--logging_steps", save, "--save_steps", save),
          f"prediction layer on the teacher's soft targets (T={s.temperature:g}), {s.pred_epochs:g} epoch(s)",
          depends=("stage 1",))

    save = steps_between_evaluations(s.train_size, s.batch_size, s.baseline_epochs, s.baseline_evaluations)
    p.run("baseline", os.path.join(baseline, "best_model"),
          p.script("finetune_teacher.py", "--model_type", "tinybert", "--model_name_or_path", student0, *common,
                   "--learning_rate", s.baseline_lr, "--num_train_epochs", s.baseline_epochs,
                   "--logging_steps", save, "--save_steps", save, "--output_dir", baseline, "--overwrite_output_dir"),
          f"the same student fine-tuned directly on the {s.train_size} gold labels, no teacher",
          depends=("student", "task"))
    return {"teacher": teacher_model, "distilled": os.path.join(distill, "best_model"),
            "baseline": os.path.join(baseline, "best_model"), "glue": glue, "aug_size": aug_size,
            "timings": p.timings}


# ------------------------------------------------------------- the table
MODEL_LABELS = {"teacher": "teacher: MiniLM-L6 fine-tuned", "distilled": "student, distilled (TinyBERT)",
                "baseline": "student, fine-tuned directly"}
LATENCY_BATCHES = (1, 32)


def evaluate_models(paths: Dict[str, str], glue: str, settings: Settings):
    """Dev metrics of every model (tinybert.report.Evaluated, models kept in memory)."""
    from tinybert.data.tasks import get_task
    from tinybert.report import evaluate_checkpoint, load_dev

    spec = get_task(TASK)
    dev_sets = load_dev(spec, glue)
    return {name: evaluate_checkpoint(name, path, spec, dev_sets, settings.max_seq_length)
            for name, path in paths.items()}, [ex.texts[0] for ex in dev_sets[0].examples]


def measure_models(runners: Dict[str, object], sentences: Sequence[str], tokenizer, settings: Settings,
                   batch_sizes: Sequence[int] = LATENCY_BATCHES) -> dict:
    """tinybert.serving.latency.measure on the dev sentences: every runner, alternating rounds."""
    from tinybert.serving.latency import features_from_texts, measure

    features = features_from_texts(tokenizer, sentences[:settings.latency_sentences], settings.max_seq_length)
    examples = {b: settings.latency_sentences if b > 1 else max(1, settings.latency_sentences // 2)
                for b in batch_sizes}
    return measure(runners, features, tokenizer.pad_token_id, batch_sizes, rounds=settings.latency_rounds,
                   examples=examples)


def seconds_per_example(measured: dict) -> Dict[int, Dict[str, float]]:
    """{batch size: {runner: median seconds per example}} from a measure() result."""
    return {b: {name: entry["ms_per_example"] / 1000 for name, entry in per_runner.items()}
            for b, per_runner in measured["batch_sizes"].items()}


def latencies(evaluated, sentences: Sequence[str], settings: Settings,
              batch_sizes: Sequence[int] = LATENCY_BATCHES) -> Dict[int, Dict[str, float]]:
    """Seconds per example of each dygraph model at each batch size (tinybert.serving.latency.measure)."""
    from tinybert.serving.latency import dygraph_runner

    tokenizer = next(iter(evaluated.values())).tokenizer
    runners = {name: dygraph_runner(e.model) for name, e in evaluated.items()}
    return seconds_per_example(measure_models(runners, sentences, tokenizer, settings, batch_sizes))


# ------------------------------------------------- deployed student (issue 11)
DEPLOY_FORMATS = (("paddle", "float32", "Paddle Inference fp32"), ("onnx", "float32", "ONNX Runtime fp32"),
                  ("onnx", "int8", "ONNX Runtime INT8"))
DEPLOYED_MODELS = ("teacher", "distilled")  # the teacher too: the fair ratio is in the same runtime


def deployed_name(model: str, fmt: str, precision: str) -> str:
    return f"{model}:{fmt}-{precision}"


def export_models(paths: Dict[str, str], glue: str, settings: Settings, output_dir: str) -> Dict[str, dict]:
    """export_model.py's pipeline for the teacher and the distilled student in every runtime.

    Each export is verified on the dev set as it is written (float32 logits within 1e-4 of
    dygraph, INT8's accuracy change recorded); returns the manifests by deployed name.
    """
    from tinybert.serving.deploy import export_checkpoint

    manifests = {}
    for model in DEPLOYED_MODELS:
        for fmt, precision, _ in DEPLOY_FORMATS:
            target = os.path.join(output_dir, "deploy", f"{model}-{fmt}-{precision}")
            manifests[deployed_name(model, fmt, precision)] = export_checkpoint(
                paths[model], target, TASK, format=fmt, precision=precision, glue_dir=glue,
                max_seq_length=settings.max_seq_length, eval_batch_size=64)
            manifests[deployed_name(model, fmt, precision)]["directory"] = target
    return manifests


def deployed_runners(manifests: Dict[str, dict]) -> Dict[str, object]:
    from tinybert.serving.inference import Predictor

    return {name: Predictor(m["directory"]).run for name, m in manifests.items()}


def checkpoint_size(path: str) -> int:
    from tinybert.models.loading import WEIGHTS_FILE

    return os.path.getsize(os.path.join(path, WEIGHTS_FILE))


def deployed_rows(evaluated, manifests: Dict[str, dict], latency: Dict[int, Dict[str, float]],
                  reference: str = "teacher") -> List[dict]:
    """Rows for the distilled student in each runtime: accuracy of the export itself, size on
    disk, latency, speed-up against the teacher in dygraph and in the same runtime."""
    base, student = evaluated[reference], evaluated["distilled"]
    rows = []
    for fmt, precision, runtime in DEPLOY_FORMATS:
        name = deployed_name("distilled", fmt, precision)
        same = deployed_name(reference, fmt, precision)
        evaluation = manifests[name]["evaluation"]
        row = {"model": name, "label": f"{MODEL_LABELS['distilled']}, {runtime}", "runtime": runtime,
               "layers": student.layers, "hidden": student.hidden, "parameters": student.parameters,
               "dev_accuracy": evaluation["metrics"].get("acc", evaluation["metrics"]["score"]),
               "dev_score": evaluation["metrics"]["score"],
               "share_of_teacher": evaluation["metrics"]["score"] / base.metrics["score"] if base.metrics["score"] else None,
               "size_bytes": manifests[name]["size_bytes"], "path": manifests[name]["directory"],
               "max_abs_logit_difference": evaluation["max_abs_logit_difference"],
               "teacher_in_same_runtime_dev_score": manifests[same]["evaluation"]["metrics"]["score"]}
        for batch_size, per_model in sorted(latency.items()):
            row[f"ms_per_example_b{batch_size}"] = 1000 * per_model[name]
            row[f"speedup_b{batch_size}"] = per_model[reference] / per_model[name]
            row[f"same_runtime_speedup_b{batch_size}"] = per_model[same] / per_model[name]
            row[f"teacher_same_runtime_ms_b{batch_size}"] = 1000 * per_model[same]
        rows.append(row)
    return rows


def table_rows(evaluated, latency: Dict[int, Dict[str, float]], reference: str = "teacher") -> List[dict]:
    """One dict per model: accuracy, share of the reference, parameters, latency, speed-up."""
    base = evaluated[reference]
    rows = []
    for name, e in evaluated.items():
        row = {"model": name, "label": MODEL_LABELS.get(name, name), "layers": e.layers, "hidden": e.hidden,
               "parameters": e.parameters, "dev_accuracy": e.metrics.get("acc", e.metrics["score"]),
               "dev_score": e.metrics["score"], "share_of_teacher": e.metrics["score"] / base.metrics["score"]
               if base.metrics["score"] else None, "path": e.path, "runtime": "Paddle dygraph"}
        if os.path.isfile(os.path.join(e.path, "model_state.pdparams")):
            row["size_bytes"] = checkpoint_size(e.path)
        for batch_size, per_model in sorted(latency.items()):
            row[f"ms_per_example_b{batch_size}"] = 1000 * per_model[name]
            row[f"speedup_b{batch_size}"] = per_model[reference] / per_model[name]
            row[f"same_runtime_speedup_b{batch_size}"] = row[f"speedup_b{batch_size}"]  # dygraph vs dygraph
        rows.append(row)
    return rows


def format_rows(rows: List[dict]) -> tuple:
    """(columns, cells) for markdown/console tables."""
    batch_sizes = sorted(int(k[len("ms_per_example_b"):]) for k in rows[0] if k.startswith("ms_per_example_b"))
    deployed = any(row.get("runtime", "Paddle dygraph") != "Paddle dygraph" for row in rows)
    columns = ["model", "layers x hidden", "parameters", "dev acc", "% of teacher"]
    if deployed:
        columns += ["runtime", "size on disk"]
    for b in batch_sizes:
        columns += [f"ms/example (batch {b})", f"speed-up (batch {b})"]
        if deployed:
            columns += [f"vs teacher, same runtime (batch {b})"]
    cells = []
    for row in rows:
        line = [row["label"], f"{row['layers']} x {row['hidden']}", f"{row['parameters'] / 1e6:.1f}M",
                f"{row['dev_accuracy']:.4f}",
                "" if row["share_of_teacher"] is None else f"{100 * row['share_of_teacher']:.1f}%"]
        if deployed:
            size = row.get("size_bytes")
            line += [row.get("runtime", ""), "" if size is None else f"{size / 1e6:.1f} MB"]
        for b in batch_sizes:
            line += [f"{row[f'ms_per_example_b{b}']:.2f}", f"{row[f'speedup_b{b}']:.2f}x"]
            if deployed:
                same = row.get(f"same_runtime_speedup_b{b}")
                line += ["" if same is None else f"{same:.2f}x"]
        cells.append(line)
    return columns, cells


def check_targets(rows: List[dict], share: float = 0.97) -> Dict[str, object]:
    """The demo's goals: distilled >= 97% of the teacher, and above the baseline."""
    by_name = {row["model"]: row for row in rows}
    distilled, teacher, baseline = by_name["distilled"], by_name["teacher"], by_name["baseline"]
    keeps = distilled["dev_score"] >= share * teacher["dev_score"]
    beats = distilled["dev_score"] > baseline["dev_score"]
    return {"distilled_keeps_97_percent_of_teacher": bool(keeps), "distilled_beats_baseline": bool(beats),
            "required_score": share * teacher["dev_score"], "met": bool(keeps and beats)}


def report(rows: List[dict], targets: dict, settings: Settings, extra: dict, output_dir: str) -> str:
    from tinybert.report import markdown_table, text_table, write_json, write_text

    columns, cells = format_rows(rows)
    threads = os.environ.get("OMP_NUM_THREADS", "?")
    how = extra.get("latency_method") or (f"median of {settings.latency_rounds} alternating rounds, dynamic padding, "
                                          f"{threads} CPU thread(s)")
    note = (f"Rotten Tomatoes (SST-2 format): {settings.train_size} train / {settings.dev_size} dev sentences, "
            f"seed {settings.seed}. Latency (CPU, per example): {how}. Dev accuracy of a deployed row is that of "
            f"the exported model itself. 'vs teacher, same runtime' divides by the teacher exported the same way. "
            f"Parameters exclude the stage-1 projections.")
    by_name = {row["model"]: row for row in rows}
    distilled, baseline = by_name["distilled"], by_name["baseline"]
    verdict = (f"distilled student: {100 * distilled['share_of_teacher']:.1f}% of the teacher's dev accuracy "
               f"(target >= 97%: {'met' if targets['distilled_keeps_97_percent_of_teacher'] else 'NOT met'}), "
               f"{'above' if targets['distilled_beats_baseline'] else 'NOT above'} the baseline "
               f"({distilled['dev_score']:.4f} vs {baseline['dev_score']:.4f})")
    markdown = markdown_table(columns, cells) + "\n" + note + "\n\n" + verdict + "\n"
    write_text(os.path.join(output_dir, "results.md"), markdown)
    write_json(os.path.join(output_dir, "results.json"),
               {"task": TASK, "models": rows, "targets": targets, "settings": asdict(settings),
                "omp_num_threads": threads, **extra})
    return text_table(columns, cells) + "\n" + note + "\n" + verdict + "\n"


def machine() -> Dict[str, object]:
    """What the timings were measured on."""
    import platform

    import paddle

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "paddle": paddle.__version__, "python": platform.python_version()}


# ------------------------------------------------------------------ main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default=os.path.join(ROOT, "demo_output"))
    parser.add_argument("--cache_dir", default=os.path.join(ROOT, "assets"), help="fetch_assets.py's cache")
    parser.add_argument("--fresh", action="store_true", help="delete output_dir first: redo every step")
    defaults = Settings()
    for field in fields(Settings):
        parser.add_argument(f"--{field.name}", type=type(getattr(defaults, field.name)),
                            default=getattr(defaults, field.name), help=f"(default {getattr(defaults, field.name)})")
    return parser.parse_args(argv)


@run_cli
def main(argv=None) -> dict:
    args = parse_args(argv)
    started = float(os.environ.get("DEMO_STARTED", time.time()))
    settings = Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)})
    output_dir = os.path.abspath(args.output_dir)
    if args.fresh and os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    print(f"demo settings: {json.dumps(asdict(settings))}", flush=True)
    built = run_pipeline(settings, output_dir, os.path.abspath(args.cache_dir))

    print("\n== evaluation, export and CPU latency (this process)", flush=True)
    eval_started = time.time()
    evaluated, sentences = evaluate_models(
        {"teacher": built["teacher"], "distilled": built["distilled"], "baseline": built["baseline"]},
        built["glue"], settings)
    from tinybert.serving.latency import describe, dygraph_runner

    runners = {name: dygraph_runner(e.model) for name, e in evaluated.items()}
    manifests = {}
    if settings.deploy:
        manifests = export_models({"teacher": built["teacher"], "distilled": built["distilled"]}, built["glue"],
                                  settings, output_dir)
        runners.update(deployed_runners(manifests))
    measured = measure_models(runners, sentences, evaluated["teacher"].tokenizer, settings)
    latency = seconds_per_example(measured)
    rows = table_rows(evaluated, latency)
    if manifests:
        rows += deployed_rows(evaluated, manifests, latency)
    targets = check_targets(rows)
    timings = dict(built["timings"])
    timings["evaluation and latency"] = {"seconds": round(time.time() - eval_started, 1), "reused": False}
    total = time.time() - started
    text = report(rows, targets, settings, {"augmented_examples": built["aug_size"], "step_seconds": timings,
                                            "total_seconds": round(total, 1), "machine": machine(),
                                            "latency": measured, "latency_method": describe(measured)}, output_dir)
    print("\n" + text, end="")
    print(f"total wall time {total / 60:.1f} min"
          + (" (including set-up and asset fetch)" if "DEMO_STARTED" in os.environ else "")
          + f"; saved {_relative(os.path.join(output_dir, 'results.json'))} and results.md")
    if not targets["met"]:
        print("warning: the demo's targets were not met on this run (see above)", file=sys.stderr)
    return {"rows": rows, "targets": targets, "total_seconds": total}


if __name__ == "__main__":
    main()
