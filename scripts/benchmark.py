"""Speed of our loops against a reference-style loop, measured in one run; prints JSON.

Everything is measured here, on the same synthetic SST-2-like data and the same
randomly initialised models:

- training throughput (examples/s) of teacher fine-tuning, stage 1 and stage 2 with our
  loop (``tinybert.training.loop.Trainer`` with the real objectives: dynamic padding, length buckets,
  masked losses, cached teacher logits in stage 2), and with a reference-style loop as in
  PaddleNLP's ``task_distill.py`` (every batch padded to ``max_seq_length``, unmasked losses,
  a teacher forward every step, random batches), and the ratios;
- TinyBERT4 (4L/312) against BERT-base (12L/768) inference in every runtime and precision
  (Paddle dygraph, Paddle Inference, ONNX Runtime float32 and INT8), batch 1 and 32, timed by
  the project's one latency function (``tinybert.serving.latency.measure``), with the issue-11 targets;
- the FLOP/s a stage-1 training step achieves against this machine's float32 matmul peak;
- the CPU settings of ``tinybert.runtime`` (threads, MKL code path on AMD) before/after, each
  in a fresh subprocess since MKL reads them when it loads.

    python scripts/benchmark.py [--quick] [--inference_only] > benchmark.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinybert.runtime import prepare_process  # noqa: E402

if __name__ == "__main__" and "--child" not in sys.argv:
    prepare_process()

import numpy as np  # noqa: E402

VOCAB = 30522
# Shapes: an SST-2-like workload for the training loops (a 12-layer/384 teacher like MiniLM-L12,
# a TinyBERT4-shaped student with 12 heads), and the paper's pair for inference.
TEACHER = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536)
STUDENT = dict(hidden_size=312, num_hidden_layers=4, num_attention_heads=12, intermediate_size=1200)
BERT_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
if os.environ.get("TINYBERT_BENCHMARK_QUICK") == "1":  # --quick: tiny shapes, here and in child processes
    TEACHER = dict(hidden_size=48, num_hidden_layers=4, num_attention_heads=4, intermediate_size=96)
    STUDENT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    BERT_BASE = TEACHER


def sst2_like_lengths(count: int, rng, max_len: int) -> np.ndarray:
    """Token counts like SST-2 train (short phrases: mean ~13 WordPieces, long tail to ~60)."""
    words = np.clip(rng.geometric(1 / 10.0, size=count), 1, max_len - 2)
    return words + 2


def synthetic_features(count: int, max_len: int, seed: int):
    from tinybert.data.features import Features

    rng = np.random.default_rng(seed)
    lengths = sst2_like_lengths(count, rng, max_len)
    ids = [[2] + list(rng.integers(5, VOCAB, size=n - 2)) + [3] for n in lengths]
    return Features(ids, [[0] * len(x) for x in ids], rng.integers(0, 2, size=count).astype("int64"))


def build(kind: str, shape: dict, seed: int, fit_size: int = None):
    import paddle
    from paddlenlp.transformers import (
        BertConfig,
        BertForSequenceClassification,
        TinyBertConfig,
        TinyBertForSequenceClassification,
    )

    paddle.seed(seed)
    common = dict(vocab_size=VOCAB, type_vocab_size=2, num_labels=2, **shape)
    if kind == "bert":
        return BertForSequenceClassification(BertConfig(**common))
    return TinyBertForSequenceClassification(TinyBertConfig(fit_size=fit_size or shape["hidden_size"], **common))


def shape_name(shape: dict) -> str:
    return f"{shape['num_hidden_layers']}L/{shape['hidden_size']}/{shape['num_attention_heads']}H"


def encoder_flops(shape: dict, tokens: int, attention_pairs: int) -> float:
    """Multiply-add FLOPs (x2) of one forward of the encoder layers."""
    h, f, layers = shape["hidden_size"], shape["intermediate_size"], shape["num_hidden_layers"]
    dense = 2 * tokens * (4 * h * h + 2 * h * f)
    attention = 2 * 2 * attention_pairs * h  # QK^T and AV over all heads
    return layers * (dense + attention)


# ------------------------------------------------------------------ our loop
def our_throughput(stage: str, teacher, student_seed: int, features, args) -> dict:
    """The product's loop (tinybert.training.loop.Trainer, silent reporter) on the product's objectives."""
    from tinybert.data.batches import TaskBatches
    from tinybert.data.tasks import get_task
    from tinybert.distillation import mapping
    from tinybert.distillation import task as distill
    from tinybert.distillation.teacher import supervised_loss
    from tinybert.models.student import PER_LAYER, DistillationStudent, freeze_unused
    from tinybert.training.evaluate import predict_logits
    from tinybert.training.loop import TrainConfig, Trainer

    spec = get_task("SST-2")
    # stage 2 runs its paper length (3 epochs) so the once-per-run teacher pass is counted as it
    # is spent in a real run; the reference loop's cost per epoch is constant.
    epochs = 3 if stage == "prediction" else 1
    with tempfile.TemporaryDirectory() as output:
        config = TrainConfig(output_dir=output, num_train_epochs=epochs, save_steps=10**9, logging_steps=10**9,
                             learning_rate=1e-5, stage=stage)
        start = time.perf_counter()
        if stage == "finetune":
            model = DistillationStudent(build("bert", TEACHER, student_seed))
            objective = supervised_loss(spec)
        else:
            student = build("tinybert", STUDENT, student_seed, fit_size=TEACHER["hidden_size"])
            if stage == "intermediate":
                model = DistillationStudent(student, PER_LAYER)
                layer_map = mapping.uniform(TEACHER["num_hidden_layers"], STUDENT["num_hidden_layers"])
                objective = distill.intermediate_objective(teacher, layer_map, (1.0, 1.0))
            else:
                model = DistillationStudent(student)
                logits = predict_logits(teacher, features, 64, 0)  # the once-per-run teacher pass, timed
                objective = distill.prediction_objective(logits, spec, 1.0)
        freeze_unused(model, stage)
        batches = TaskBatches(features, args.batch_size, seed=0, pad_token_id=0)
        trainer = Trainer(config, model, {}, lambda batch: objective(model, batch), batches)
        setup = time.perf_counter() - start
        model.train()
        for _ in range(epochs):
            trainer.run_epoch()
        elapsed = time.perf_counter() - start
    return {"examples_per_s": epochs * len(features) / elapsed, "seconds": elapsed, "epochs": epochs,
            "setup_seconds": setup}


def general_throughput(args) -> dict:
    """General distillation (teacher 12L/384, student 4L/312) on a generated corpus, through the
    product's streamed corpus and loop: tokens/s and the share of time the loop waited for data."""
    from paddlenlp.transformers import BertTokenizer

    from tinybert.data.batches import CorpusBatches
    from tinybert.data.corpus import PackedCorpus
    from tinybert.distillation import mapping
    from tinybert.distillation import task as distill
    from tinybert.models.student import PER_LAYER, DistillationStudent, freeze_unused
    from tinybert.training.loop import TrainConfig, Trainer
    from tinybert.training.reporter import SilentReporter

    class Capture(SilentReporter):
        windows: list = []

        def training(self, step, epoch, total, lr, values):
            self.windows.append(values)

    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(VOCAB - 5)]  # the models' vocabulary size
    window, windows = (2, 2) if args.quick else (4, 6)  # steps per measurement window; the first is warm-up
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "vocab.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
        tokenizer = BertTokenizer(os.path.join(work, "vocab.txt"))
        with open(os.path.join(work, "corpus.txt"), "w", encoding="utf-8") as handle:
            for _ in range(200 if args.quick else 3000):  # documents of 1-8 sentences of 5-30 words
                for _ in range(rng.integers(1, 9)):
                    handle.write(" ".join(rng.choice(words[:5000], size=rng.integers(5, 31))) + "\n")
                handle.write("\n")
        teacher = build("bert", TEACHER, 1)
        student = build("tinybert", STUDENT, 2, fit_size=TEACHER["hidden_size"])
        model = DistillationStudent(student, PER_LAYER)
        freeze_unused(model, "intermediate")
        layer_map = mapping.uniform(TEACHER["num_hidden_layers"], STUDENT["num_hidden_layers"])
        loss = distill.intermediate_objective(teacher, layer_map, (1.0, 1.0))
        corpus = PackedCorpus([os.path.join(work, "corpus.txt")], tokenizer, max_seq_length=128,
                              batch_size=args.batch_size, seed=0)

        def objective(batch):
            import paddle

            return {**loss(model, batch), "tokens": paddle.to_tensor(float(batch["attention_mask"].sum()))}

        reporter = Capture()
        config = TrainConfig(output_dir=work, max_steps=window * (windows + 1), logging_steps=window,
                             save_steps=10**9, learning_rate=1e-5, stage="general")
        trainer = Trainer(config, model, {}, objective, CorpusBatches(corpus), reporter=reporter)
        model.train()
        while trainer.progress.step < trainer.total_steps:
            trainer.run_epoch()
        timed = reporter.windows[1:]  # the first window includes the producer's start-up
    values = {k: float(np.mean([w[k] for w in timed])) for k in ("tokens_per_s", "data_wait")}
    steps = window * len(timed)
    return {"teacher": shape_name(TEACHER), "student": shape_name(STUDENT), "max_seq_length": 128,
            "batch_size": args.batch_size, "steps_timed": steps, "tokens_per_s": values["tokens_per_s"],
            "data_wait_share": values["data_wait"], "target_data_wait_share": 0.05,
            "data_wait_target_met": values["data_wait"] < 0.05}


# -------------------------------------------------------- reference-style loop
def reference_throughput(stage: str, teacher, student_seed: int, features, args) -> dict:
    """PaddleNLP-style: pad to max_seq_length, unmasked MSE, teacher forward every step."""
    import paddle
    import paddle.nn.functional as F

    from tinybert.data.features import collate
    from tinybert.distillation import mapping
    from tinybert.models.internals import forward_with_internals
    from tinybert.training.evaluate import model_inputs, to_tensors

    kind, shape = ("bert", TEACHER) if stage == "finetune" else ("tinybert", STUDENT)
    start = time.perf_counter()
    model = build(kind, shape, student_seed, fit_size=TEACHER["hidden_size"])
    optimizer = paddle.optimizer.AdamW(learning_rate=1e-5, parameters=model.parameters())
    layer_map = mapping.uniform(TEACHER["num_hidden_layers"], STUDENT["num_hidden_layers"])
    order = np.random.default_rng(0).permutation(len(features))
    model.train()
    teacher.train()  # the references leave the teacher in train mode (docs/reference-defects.md#teacher-left-in-training-mode §2)
    for first in range(0, len(order), args.batch_size):
        tensors = to_tensors(collate(features, order[first:first + args.batch_size], 0, pad_to=args.max_seq_length))
        inputs = model_inputs(tensors)
        if stage == "finetune":
            loss = F.cross_entropy(model(**inputs), tensors["labels"])
        elif stage == "intermediate":
            with paddle.no_grad():
                target = forward_with_internals(teacher, inputs)
            out = forward_with_internals(model, inputs)
            loss = 0
            for s, t in layer_map.hidden:
                loss = loss + F.mse_loss(model.tinybert.fit_denses[s](out.hidden[s]), target.hidden[t])
            for s, t in layer_map.attention:
                loss = loss + F.mse_loss(out.scores[s - 1], target.scores[t - 1])
        else:
            with paddle.no_grad():
                target = teacher(**inputs)
            logits = model(**inputs)
            loss = -(F.softmax(target, axis=-1) * F.log_softmax(logits, axis=-1)).sum(-1).mean()
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        float(loss)
    elapsed = time.perf_counter() - start
    teacher.eval()
    return {"examples_per_s": len(features) / elapsed, "seconds": elapsed}


# ----------------------------------------------------------------- inference
RUNTIMES = (("dygraph", None, None), ("paddle_inference", "paddle", "float32"),
            ("onnxruntime_fp32", "onnx", "float32"), ("onnxruntime_int8", "onnx", "int8"))


def latency_features(args):
    """Real dev sentences tokenized with BERT's vocabulary when the demo's files are present,
    else synthetic token ids with SST-2-like lengths (random weights: only lengths matter)."""
    dev = os.path.join(ROOT, "demo_output", "glue", "SST-2", "dev.tsv")
    vocab = os.path.join(ROOT, "assets", "minilm", "vocab.txt")
    if not args.quick and os.path.isfile(dev) and os.path.isfile(vocab):
        from paddlenlp.transformers import BertTokenizer

        from tinybert.serving.latency import features_from_texts

        with open(dev, encoding="utf-8") as handle:
            sentences = [line.split("\t")[0] for line in handle.read().splitlines()[1:] if line.strip()]
        tokenizer = BertTokenizer(vocab, do_lower_case=True)
        return features_from_texts(tokenizer, sentences[:args.latency_sentences], args.max_seq_length), \
            f"Rotten Tomatoes dev sentences ({dev}), bert-base-uncased WordPieces"
    return synthetic_features(args.latency_sentences, args.max_seq_length, seed=11), "synthetic SST-2-like lengths"


def exported_runner(model, directory: str, fmt: str, precision: str, max_seq_length: int):
    """Write ``model`` as export_model.py does (no dev check: random weights) and load its runtime."""
    from tinybert.serving import deploy
    from tinybert.serving.inference import BACKENDS

    os.makedirs(directory, exist_ok=True)
    if fmt == "paddle":
        files = deploy.write_paddle(model, directory)
    else:
        deploy.write_onnx(model, directory, precision == "int8")
        files = ["model.onnx"]
    manifest = {"format": fmt, "precision": precision, "max_seq_length": max_seq_length, "model_files": files,
                "cpu_kernels": "mkl"}
    size = sum(os.path.getsize(os.path.join(directory, f)) for f in files)
    return BACKENDS[fmt](directory, manifest).run, size


def inference(args) -> dict:
    """TinyBERT4 (4L/312) against BERT-base (12L/768) in every runtime and precision, timed by
    tinybert.serving.latency.measure in one run (alternating rounds, median)."""
    from tinybert.report import inference_parameters
    from tinybert.serving.latency import describe, dygraph_runner, measure

    models = {"teacher": build("bert", BERT_BASE, 1), "student": build("tinybert", STUDENT, 2,
                                                                        fit_size=BERT_BASE["hidden_size"])}
    features, source = latency_features(args)
    result = {"inputs": source, "teacher": {"shape": shape_name(BERT_BASE)}, "student": {"shape": shape_name(STUDENT)}}
    runners = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, model in models.items():
            model.eval()
            result[name]["parameters"] = inference_parameters(model)
            for runtime, fmt, precision in RUNTIMES:
                if fmt is None:
                    runners[f"{name}/{runtime}"] = dygraph_runner(model)
                    continue
                runner, size = exported_runner(model, os.path.join(directory, f"{name}-{runtime}"), fmt, precision,
                                               args.max_seq_length)
                runners[f"{name}/{runtime}"] = runner
                result[name][f"{runtime}_bytes"] = size
        measured = measure(runners, features, 0, (1, 32), rounds=args.rounds,
                           examples={1: max(1, args.latency_sentences // 4), 32: args.latency_sentences})
    result["latency"] = measured
    result["method"] = describe(measured)
    ms = lambda key, b: measured["batch_sizes"][b][key]["ms_per_example"]  # noqa: E731
    for b in (1, 32):
        for runtime, _, _ in RUNTIMES:
            result[f"speedup_{runtime}_batch{b}"] = ms(f"teacher/{runtime}", b) / ms(f"student/{runtime}", b)
        result[f"student_int8_vs_teacher_dygraph_batch{b}"] = ms("teacher/dygraph", b) / ms("student/onnxruntime_int8", b)
        result[f"student_int8_vs_student_onnx_fp32_batch{b}"] = (ms("student/onnxruntime_fp32", b)
                                                                 / ms("student/onnxruntime_int8", b))
    result["parameter_ratio"] = result["teacher"]["parameters"] / result["student"]["parameters"]
    result["targets"] = {
        "int8_student_20x_faster_than_fp32_teacher_dygraph_batch1": result["student_int8_vs_teacher_dygraph_batch1"] >= 20,
        "int8_student_2x_faster_than_fp32_student_same_runtime_batch1":
            result["student_int8_vs_student_onnx_fp32_batch1"] >= 2}
    return result


def matmul_peak(trials: int = 8) -> float:
    """Best float32 FLOP/s of a 2048x2048 matmul over several trials (robust to other load)."""
    import paddle

    a, b = paddle.randn([2048, 2048]), paddle.randn([2048, 2048])
    paddle.matmul(a, b).numpy()
    best = 0.0
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(2):
            paddle.matmul(a, b).numpy()
        best = max(best, 2 * 2 * 2048**3 / (time.perf_counter() - start))
    return best


def stage1_flops(features, batch_size: int) -> float:
    """FLOPs of one epoch of our stage 1: teacher forward + student forward/backward (3x forward)."""
    from tinybert.data.features import epoch_batches

    total = 0.0
    for batch in epoch_batches(features.lengths, batch_size, 42, 0):
        width = int(features.lengths[batch].max())
        tokens, pairs = len(batch) * width, len(batch) * width * width
        total += encoder_flops(TEACHER, tokens, pairs) + 3 * encoder_flops(STUDENT, tokens, pairs)
    return total


# ------------------------------------------------------------- CPU settings
CHILD_STEP = """
import sys, time
sys.path.insert(0, {root!r})
sys.argv.append("--child")
if {ours}:
    from tinybert.runtime import prepare_process
    prepare_process()
import paddle
sys.path.insert(0, {scripts!r})
import benchmark as b
teacher = b.build("bert", b.TEACHER, 1)
features = b.synthetic_features({count}, 64, 7)
class A: batch_size = 32; max_seq_length = 64
b.reference_throughput("intermediate", teacher, 2, b.synthetic_features(32, 64, 3), A)  # warm-up
r = b.reference_throughput("intermediate", teacher, 2, features, A)
print(r["seconds"] / ({count} // 32))
"""


def cpu_settings(count: int) -> dict:
    """Seconds per reference-style stage-1 step (batch 32, length 64), Paddle defaults vs ours."""
    results = {}
    keep = ("OMP_NUM_THREADS", "MKL_DEBUG_CPU_TYPE")
    for label, ours in (("paddle_defaults", False), ("tinybert_runtime", True)):
        env = {k: v for k, v in os.environ.items() if k not in keep or ours}
        code = CHILD_STEP.format(root=ROOT, scripts=os.path.join(ROOT, "scripts"), ours=ours, count=count)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
        try:
            results[label] = {"seconds_per_step": float(out.stdout.strip().splitlines()[-1])}
        except (ValueError, IndexError):
            results[label] = {"error": out.stderr.strip().splitlines()[-1:] or ["no output"]}
    if all("seconds_per_step" in r for r in results.values()):
        results["speedup"] = results["paddle_defaults"]["seconds_per_step"] / results["tinybert_runtime"]["seconds_per_step"]
    results["settings"] = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                           "MKL_DEBUG_CPU_TYPE": os.environ.get("MKL_DEBUG_CPU_TYPE")}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=256, help="training examples per loop measurement")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="alternating latency rounds (median reported)")
    parser.add_argument("--latency_sentences", type=int, default=256, help="sentences timed at batch 32 (1/4 at batch 1)")
    parser.add_argument("--inference_only", action="store_true", help="only the runtime/precision comparison")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--skip_cpu_settings", action="store_true")
    args = parser.parse_args()
    if args.quick and os.environ.get("TINYBERT_BENCHMARK_QUICK") != "1":
        os.environ["TINYBERT_BENCHMARK_QUICK"] = "1"
        os.execv(sys.executable, [sys.executable] + sys.argv)  # re-read the tiny shapes at import
    if args.quick:
        args.examples, args.rounds, args.latency_sentences = 64, 2, 32
    started = time.perf_counter()
    if args.inference_only:
        print(json.dumps({"inference": inference(args), "wall_seconds": time.perf_counter() - started}, indent=1))
        return
    features = synthetic_features(args.examples, args.max_seq_length, seed=0)
    teacher = build("bert", TEACHER, 1)
    teacher.eval()
    report = {"workload": {"examples": args.examples, "batch_size": args.batch_size,
                           "max_seq_length": args.max_seq_length, "mean_length": float(features.lengths.mean()),
                           "teacher": TEACHER, "student": STUDENT}, "training": {}}
    for stage in ("finetune", "intermediate", "prediction"):
        ours = our_throughput(stage, teacher, 2, features, args)
        reference = reference_throughput(stage, teacher, 2, features, args)
        report["training"][stage] = {"ours": ours, "reference_style": reference,
                                     "speedup": ours["examples_per_s"] / reference["examples_per_s"]}
    peak = matmul_peak()
    flops = stage1_flops(features, args.batch_size)
    seconds = report["training"]["intermediate"]["ours"]["seconds"] - report["training"]["intermediate"]["ours"]["setup_seconds"]
    report["flops"] = {"matmul_peak_gflops": peak / 1e9, "stage1_achieved_gflops": flops / seconds / 1e9,
                       "fraction_of_peak": flops / seconds / peak}
    report["general_distillation"] = general_throughput(args)
    report["inference"] = inference(args)
    if not args.skip_cpu_settings:
        report["cpu_settings"] = cpu_settings(64 if not args.quick else 32)
    report["wall_seconds"] = time.perf_counter() - started
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
