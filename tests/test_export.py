"""Issue 11: export_model.py's pipeline on tiny models, in the real runtimes.

Every export below is a real Paddle Inference graph or ONNX file run by the real runtime;
the dygraph model it came from is the reference.
"""
import importlib
import json
import os
import random

import numpy as np
import paddle
import pytest
import tiny

from tinybert.errors import UserError
from tinybert.models.loading import load_model
from tinybert.serving.deploy import export_checkpoint
from tinybert.serving.inference import MANIFEST, Predictor, read_manifest

FORMATS = [("paddle", "float32"), ("onnx", "float32"), ("onnx", "int8")]
MAX_LEN = 48


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    for task in ("SST-2", "MRPC", "STS-B"):
        tiny.write_task(str(root / "glue"), task, n_train=16, n_dev=40)
    tiny.make_bert(str(root / "teacher"), layers=2, hidden=32, heads=2, intermediate=64, seed=3)
    tiny.make_bert(str(root / "student"), layers=2, hidden=24, heads=2, intermediate=48, model_type="tinybert",
                   fit_size=32, seed=4)
    tiny.make_bert(str(root / "pair_teacher"), layers=2, hidden=32, heads=2, seed=5)
    tiny.make_bert(str(root / "sts_student"), layers=1, hidden=16, heads=2, num_labels=1, model_type="tinybert",
                   fit_size=32, seed=6)
    return root


@pytest.fixture(scope="module")
def exports(work):
    """The tiny teacher and student in every format and precision (SST-2)."""
    done = {}
    for model in ("teacher", "student"):
        for fmt, precision in FORMATS:
            target = str(work / "deploy" / f"{model}-{fmt}-{precision}")
            done[(model, fmt, precision)] = (target, export_checkpoint(
                str(work / model), target, "SST-2", format=fmt, precision=precision, glue_dir=str(work / "glue"),
                max_seq_length=MAX_LEN))
    return done


def dygraph_logits(path, model_type, predictor, texts):
    model = load_model(model_type, path)
    model.eval()
    features = predictor.encode(texts)
    out = []
    with paddle.no_grad():
        for ids, types in zip(features.input_ids, features.token_type_ids):
            single = model(input_ids=paddle.to_tensor([ids]), token_type_ids=paddle.to_tensor([types]))
            out.append(single.numpy()[0])  # one at a time: no padding in the reference
    return np.stack(out)


def mixed_sentences(count, seed, pairs=False):
    rng = random.Random(seed)
    make = lambda: tiny.sentence(rng, rng.randint(0, 1), rng.choice([1, 2, 5, 9, 20]))  # noqa: E731
    return [(make(), make()) if pairs else make() for _ in range(count)]


@pytest.mark.parametrize("model,model_type", [("teacher", "bert"), ("student", "tinybert")])
@pytest.mark.parametrize("fmt", ["paddle", "onnx"])
def test_float32_exports_give_the_dygraph_logits_on_sentences_of_mixed_length(work, exports, model, model_type, fmt):
    target, _ = exports[(model, fmt, "float32")]
    predictor = Predictor(target, batch_size=8)
    texts = mixed_sentences(30, seed=1)
    expected = dygraph_logits(str(work / model), model_type, predictor, texts)
    served = predictor.logits(predictor.encode(texts))  # padded, length-sorted batches
    np.testing.assert_allclose(served, expected, atol=1e-4, rtol=0)


def test_pair_export_gives_the_dygraph_logits_on_pairs_of_mixed_length(work):
    target = str(work / "deploy" / "pair-onnx")
    export_checkpoint(str(work / "pair_teacher"), target, "MRPC", format="onnx", glue_dir=str(work / "glue"),
                      max_seq_length=MAX_LEN)
    predictor = Predictor(target, batch_size=4)
    pairs = mixed_sentences(20, seed=2, pairs=True)
    expected = dygraph_logits(str(work / "pair_teacher"), "bert", predictor, pairs)
    np.testing.assert_allclose(predictor.logits(predictor.encode(pairs)), expected, atol=1e-4, rtol=0)
    assert set(predictor.encode(pairs).token_type_ids[0]) == {0, 1}  # both segments reached the model


@pytest.mark.parametrize("model", ["teacher", "student"])
def test_int8_export_agrees_in_argmax_on_most_of_the_dev_set_and_is_smaller(exports, model):
    _, manifest = exports[(model, "onnx", "int8")]
    _, float32 = exports[(model, "onnx", "float32")]
    evaluation = manifest["evaluation"]
    assert evaluation["dev_examples"] == 40
    assert evaluation["argmax_agreement"] >= 0.8
    assert manifest["quantization"]["per_channel"] is True
    assert manifest["size_bytes"] < float32["size_bytes"]
    assert evaluation["score_change"] == pytest.approx(evaluation["metrics"]["score"]
                                                       - evaluation["dygraph_metrics"]["score"])


def test_every_float32_export_records_its_dev_check(exports):
    for (model, fmt, precision), (target, manifest) in exports.items():
        if precision == "float32":
            assert manifest["evaluation"]["max_abs_logit_difference"] <= 1e-4
            assert manifest["evaluation"]["metrics"] == manifest["evaluation"]["dygraph_metrics"]


def test_manifest_round_trips_and_describes_the_export(work, exports):
    target, manifest = exports[("student", "onnx", "int8")]
    on_disk = read_manifest(target)
    assert on_disk == json.loads(json.dumps(manifest))
    assert on_disk["task"] == "SST-2" and on_disk["labels"] == ["0", "1"] and on_disk["pair"] is False
    assert on_disk["max_seq_length"] == MAX_LEN and on_disk["format"] == "onnx" and on_disk["precision"] == "int8"
    assert on_disk["source_checkpoint"] == str(work / "student") and on_disk["source_model_type"] == "tinybert"
    assert sorted(os.listdir(target)) == sorted(["model.onnx", MANIFEST, "vocab.txt", "tokenizer_config.json",
                                                 "special_tokens_map.json"])
    assert not [n for n in os.listdir(work / "deploy") if ".tmp-" in n]  # atomic: no leftovers


def test_regression_export_returns_the_score(work):
    target = str(work / "deploy" / "sts")
    manifest = export_checkpoint(str(work / "sts_student"), target, "STS-B", glue_dir=str(work / "glue"),
                                 max_seq_length=MAX_LEN)
    assert manifest["labels"] is None and manifest["pair"] is True
    results = Predictor(target).predict([("a cat sat", "a dog sat"), ("good film", "bad film")])
    assert [set(r) for r in results] == [{"score"}, {"score"}]


def test_a_float32_export_outside_the_tolerance_fails_and_leaves_nothing(work):
    target = work / "deploy" / "refused"
    with pytest.raises(UserError, match="differ from the dygraph model"):
        export_checkpoint(str(work / "student"), str(target), "SST-2", format="onnx", glue_dir=str(work / "glue"),
                          max_seq_length=MAX_LEN, tolerance=-1.0)
    assert not target.exists() and not [n for n in os.listdir(work / "deploy") if n.startswith("refused")]


# ----------------------------------------------------------------- bad input
def run_script(name, argv, capsys):
    module = importlib.import_module(name)
    with pytest.raises(SystemExit) as exit_info:
        module.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


def export_args(work, model_dir, *extra):
    return ["--model_dir", str(model_dir), "--output_dir", str(work / "deploy" / "bad"), "--task_name", "SST-2",
            "--glue_dir", str(work / "glue"), "--max_seq_length", str(MAX_LEN), *extra]


def test_an_encoder_without_classifier_is_refused(work, capsys):
    from paddlenlp.transformers import BertConfig, BertModel

    encoder = work / "encoder"
    BertModel(BertConfig(vocab_size=len(tiny.VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(str(encoder))
    line = run_script("export_model", export_args(work, encoder), capsys)
    assert "has no classifier" in line and "finetune_teacher.py" in line


@pytest.mark.parametrize("case,fragment", [
    ("missing", "no such directory"),
    ("not_a_checkpoint", "not a classifier checkpoint: no config.json"),
    ("wrong_labels", "needs 2: pass the --task_name"),
])
def test_a_directory_that_is_not_a_classifier_checkpoint_is_refused(work, capsys, case, fragment):
    path = work / case
    if case == "not_a_checkpoint":
        path.mkdir(exist_ok=True)
        (path / "notes.txt").write_text("hello")
    elif case == "wrong_labels":
        tiny.make_bert(str(path), layers=1, hidden=16, num_labels=3)
    assert fragment in run_script("export_model", export_args(work, path), capsys)


def test_paddle_int8_is_refused_with_the_reason(work, capsys):
    line = run_script("export_model", export_args(work, work / "student", "--format", "paddle", "--precision", "int8"),
                      capsys)
    assert "--format onnx" in line and "paddle.jit.save" in line


def test_export_model_cli_smoke(work, tmp_path):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "cli-export"
    result = subprocess.run([sys.executable, os.path.join(root, "export_model.py"), "--model_dir", str(work / "student"),
                             "--output_dir", str(out), "--format", "onnx", "--precision", "int8", "--task_name", "sst-2",
                             "--glue_dir", str(work / "glue"), "--max_seq_length", str(MAX_LEN)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "onnx int8" in result.stdout and "argmax agreement" in result.stdout
    assert read_manifest(str(out))["precision"] == "int8"
