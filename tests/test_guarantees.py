"""Guarantees the docs state, each checked on the real path (the command line or the API, on tiny
fixtures) in a way that fails when the guarantee is broken (issue 25):

- the teacher-logits cache is keyed by the teacher's weights, not its path;
- ``--resume`` after the training file changed is refused, naming the file;
- stage 1 keeps the best_inter_model of its *lowest* dev intermediate loss;
- AdamW's weight decay (``--weight_decay``) reaches the weights, biases and LayerNorm excepted;
- the INT8 export's recorded dev accuracy and argmax agreement are what its model really gives;
- ``predict.py`` feeds a pair's two columns to the model in their order.
"""
import importlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest
import tiny

from tinybert import api

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = dict(max_seq_length=24, batch_size=8, logging_steps=4, eval_batch_size=16, device="cpu")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("guarantees")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=32, n_dev=16)
    tiny.make_bert(str(work / "base"), layers=2, hidden=32, heads=2)
    tiny.make_bert(str(work / "student"), layers=1, hidden=16, heads=2, model_type="tinybert", fit_size=32)
    return work


def weights(path):
    """name -> numpy array of a weights file."""
    return {name: value.numpy() for name, value in paddle.load(str(path)).items()}


def max_difference(a, b):
    assert set(a) == set(b)
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


# ------------------------------------------------------------ the teacher-logits cache
def test_a_teacher_retrained_at_the_same_path_gets_fresh_logits_from_a_shared_cache(work):
    teacher, shared = str(work / "teacher"), str(work / "shared-cache")

    def finetune(seed, **extra):
        api.finetune_teacher(model_name_or_path=str(work / "base"), task_name="SST-2", glue_dir=str(work / "glue"),
                             output_dir=teacher, max_steps=4, save_steps=4, learning_rate=1e-3, seed=seed, **FAST,
                             **extra)
        return weights(os.path.join(teacher, "best_model", "model_state.pdparams"))

    def stage_two(output, **extra):
        api.distill(task_name="SST-2", glue_dir=str(work / "glue"), teacher_path=os.path.join(teacher, "best_model"),
                    student_model_name_or_path=str(work / "student"), output_dir=str(work / output), max_steps=4,
                    save_steps=4, learning_rate=1e-3, **FAST, **extra)
        return weights(work / output / "checkpoint-last" / "student.pdparams")

    first_teacher = finetune(seed=1)
    on_first = stage_two("on-first", cache_dir=shared)
    assert max_difference(finetune(seed=2, overwrite_output_dir=True), first_teacher) > 1e-3  # retrained in place
    shared_run = stage_two("shared", cache_dir=shared)
    fresh_run = stage_two("fresh")  # its own cache: nothing to reuse
    assert max_difference(shared_run, fresh_run) == 0.0
    assert max_difference(shared_run, on_first) > 1e-6  # the new teacher's targets did change the student


# ------------------------------------------------------------ resume after the data changed
def test_resume_after_sigkill_and_an_edited_training_file_is_refused_naming_the_file(tmp_path):
    tiny.write_task(str(tmp_path / "glue"), "SST-2", n_train=200, n_dev=8)
    tiny.make_bert(str(tmp_path / "teacher"), layers=2, hidden=32, heads=2)
    tiny.make_bert(str(tmp_path / "student"), layers=1, hidden=16, heads=2, model_type="tinybert", fit_size=32)
    argv = ["--student_model_name_or_path", "student", "--teacher_path", "teacher", "--task_name", "SST-2",
            "--intermediate_distill", "--glue_dir", "glue", "--device", "cpu", "--batch_size", "8",
            "--num_train_epochs", "3", "--save_steps", "2", "--logging_steps", "1000", "--max_seq_length", "24",
            "--output_dir", "out"]
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "task_distill.py"), *argv], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "out" / "checkpoint-last-inter" / "trainer_state.pkl"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline:
        assert proc.poll() is None, "stage 1 finished before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    with open(state, "rb") as handle:
        assert pickle.load(handle)["progress"]["step"] < 75  # killed mid-run
    checkpoint = snapshot(tmp_path / "out" / "checkpoint-last-inter")

    train = tmp_path / "glue" / "SST-2" / "train.tsv"
    lines = train.read_text(encoding="utf-8").split("\n")
    lines[5] = "a quite different but valid sentence\t1"
    train.write_text("\n".join(lines), encoding="utf-8")
    resumed = subprocess.run([sys.executable, os.path.join(ROOT, "task_distill.py"), *argv, "--resume"],
                             cwd=tmp_path, capture_output=True, text=True)
    err = [line for line in resumed.stderr.splitlines() if line.strip()]
    assert resumed.returncode == 2 and len(err) == 1 and err[0].startswith("error: --resume"), resumed.stderr[-3000:]
    assert str(train) in err[0] and "changed" in err[0], err[0]
    assert snapshot(tmp_path / "out" / "checkpoint-last-inter") == checkpoint


def snapshot(directory):
    return {name: (directory / name).read_bytes() for name in sorted(os.listdir(directory))}


# ------------------------------------------------------------ stage 1's selection
def test_stage_one_keeps_the_student_of_the_lowest_dev_loss_when_the_loss_rises_later(work):
    """A learning rate this large makes the intermediate loss jump after the first step."""
    def stage_one(output, steps):
        api.distill(task_name="SST-2", glue_dir=str(work / "glue"), teacher_path=str(work / "base"),
                    student_model_name_or_path=str(work / "student"), intermediate_distill=True,
                    output_dir=str(work / output), max_steps=steps, save_steps=1, learning_rate=0.3, **FAST)
        return work / output

    diverging, one_step = stage_one("diverging", 4), stage_one("one-step", 1)
    with open(diverging / "eval_results.jsonl") as handle:
        losses = [json.loads(line)["dev_loss"] for line in handle]
    assert len(losses) == 4 and min(losses[1:]) > losses[0], losses  # the run this test is about
    kept = weights(diverging / "best_inter_model" / "model_state.pdparams")
    assert max_difference(kept, weights(one_step / "best_inter_model" / "model_state.pdparams")) == 0.0
    final = weights(diverging / "checkpoint-last-inter" / "student.pdparams")
    assert max_difference({k: kept[k] for k in final}, final) > 1e-3  # training went on past the kept model


# ------------------------------------------------------------ AdamW's weight decay
def test_weight_decay_shrinks_weights_by_lr_times_decay_and_spares_biases_and_layernorm(work):
    """Through the loop's own optimizer: settings -> TrainConfig -> Trainer -> AdamW. With a zero
    gradient Adam's step is exactly zero, so what moves a parameter is the decay alone."""
    from tinybert.models.loading import load_model
    from tinybert.models.student import DistillationStudent, freeze_unused
    from tinybert.settings import FinetuneSettings
    from tinybert.training.loop import TrainConfig, Trainer

    lr, decay = 0.5, 0.1
    settings = FinetuneSettings(task_name="SST-2", output_dir=str(work / "unused"), learning_rate=lr,
                                weight_decay=decay, warmup_proportion=0.0, max_steps=10)
    model = DistillationStudent(load_model("bert", str(work / "base"), num_labels=2))
    freeze_unused(model, "finetune")
    trainer = Trainer(TrainConfig.from_settings(settings), model, {}, None, batches=None)
    trainable = {n: p for n, p in model.named_parameters() if not p.stop_gradient}
    before = {n: p.numpy().copy() for n, p in trainable.items()}
    trainer.optimize(paddle.add_n([(p * 0.0).sum() for p in trainable.values()]))

    spared = [n for n in trainable if n.endswith(".bias") or "norm" in n.split(".")[-2]]
    decayed = [n for n in trainable if n not in spared]
    assert any("norm" in n for n in spared) and any(n.endswith("classifier.bias") for n in spared)
    assert any(n.endswith("classifier.weight") for n in decayed) and len(decayed) > 10
    for name in spared:
        np.testing.assert_array_equal(trainable[name].numpy(), before[name], err_msg=name)
    for name in decayed:
        np.testing.assert_allclose(trainable[name].numpy(), before[name] * (1 - lr * decay), rtol=1e-6, atol=0,
                                   err_msg=name)


# ------------------------------------------------------------ the INT8 export's dev figures
def dygraph_logits(model_dir, texts):
    """One example at a time, no padding, PaddleNLP's own tokenizer: independent of the exporter."""
    from paddlenlp.transformers import BertTokenizer

    from tinybert.models.loading import load_model

    model, tokenizer = load_model("bert", model_dir), BertTokenizer.from_pretrained(model_dir)
    model.eval()
    out = []
    with paddle.no_grad():
        for text in texts:
            encoded = tokenizer(*text) if isinstance(text, tuple) else tokenizer(text)
            out.append(model(input_ids=paddle.to_tensor([encoded["input_ids"]]),
                             token_type_ids=paddle.to_tensor([encoded["token_type_ids"]])).numpy()[0])
    return np.stack(out)


def test_the_int8_exports_recorded_dev_accuracy_and_agreement_are_recomputed_from_both_models(tmp_path):
    from tinybert.serving.deploy import export_checkpoint
    from tinybert.serving.inference import Predictor

    tiny.write_task(str(tmp_path / "glue"), "SST-2", n_train=8, n_dev=40)
    model_dir = tiny.make_bert(str(tmp_path / "model"), layers=2, hidden=32, heads=2, seed=2, initializer_range=0.5)
    manifest = export_checkpoint(model_dir, str(tmp_path / "int8"), "SST-2", format="onnx", precision="int8",
                                 glue_dir=str(tmp_path / "glue"), max_seq_length=48)
    with open(tmp_path / "glue" / "SST-2" / "dev.tsv", encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle][1:]
    texts, labels = [text for text, _ in rows], np.array([int(label) for _, label in rows])

    dygraph = dygraph_logits(model_dir, texts).argmax(1)
    served = Predictor(str(tmp_path / "int8"), batch_size=32, truncate=True)  # the exporter's check batches
    int8 = served.logits(served.encode(texts)).argmax(1)
    evaluation = manifest["evaluation"]
    assert evaluation["dev_examples"] == len(texts) == 40
    assert evaluation["argmax_agreement"] == pytest.approx(float(np.mean(int8 == dygraph)), abs=1e-12)
    assert evaluation["metrics"]["acc"] == pytest.approx(float(np.mean(int8 == labels)), abs=1e-12)
    assert evaluation["dygraph_metrics"]["acc"] == pytest.approx(float(np.mean(dygraph == labels)), abs=1e-12)
    assert evaluation["score_change"] == pytest.approx(float(np.mean(int8 == labels) - np.mean(dygraph == labels)))


# ------------------------------------------------------------ predict.py on pairs
def test_predict_on_swapped_pair_columns_gives_the_swapped_pairs_probabilities(tmp_path, capsys):
    from tinybert.serving.deploy import export_checkpoint

    tiny.write_task(str(tmp_path / "glue"), "MRPC", n_train=8, n_dev=8)
    model_dir = tiny.make_bert(str(tmp_path / "pair"), layers=2, hidden=32, heads=2, seed=1, initializer_range=0.5)
    export_checkpoint(model_dir, str(tmp_path / "export"), "MRPC", format="onnx", glue_dir=str(tmp_path / "glue"),
                      max_seq_length=48)
    pairs = [("the cat sat on the mat", "a good film"), ("he ran", "she was not happy but the story is fine"),
             ("bad plot", "bad plot and a dull actor")]

    def predict(rows, name):
        path = tmp_path / name
        path.write_text("".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")
        capsys.readouterr()
        importlib.import_module("predict").main(["--model_dir", str(tmp_path / "export"), "--input", str(path)])
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        return np.array([[line["probabilities"][label] for label in ("0", "1")] for line in lines])

    def softmax(logits):
        shifted = np.exp(logits - logits.max(1, keepdims=True))
        return shifted / shifted.sum(1, keepdims=True)

    swapped = [(b, a) for a, b in pairs]
    as_given, reversed_ = softmax(dygraph_logits(model_dir, pairs)), softmax(dygraph_logits(model_dir, swapped))
    assert np.abs(as_given - reversed_).max() > 0.05  # the order matters to this model
    np.testing.assert_allclose(predict(pairs, "pairs.tsv"), as_given, atol=2e-5)
    np.testing.assert_allclose(predict(swapped, "swapped.tsv"), reversed_, atol=2e-5)
