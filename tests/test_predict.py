"""Issue 11: tinybert.serving.inference.Predictor and predict.py on real exports of tiny models."""
import importlib
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tiny

from tinybert.serving.deploy import export_checkpoint
from tinybert.serving.inference import MANIFEST, Predictor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LEN = 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    tiny.write_task(str(root / "glue"), "SST-2", n_train=8, n_dev=16)
    tiny.write_task(str(root / "glue"), "MRPC", n_train=8, n_dev=16)
    tiny.make_bert(str(root / "student"), layers=1, hidden=16, heads=2, model_type="tinybert", fit_size=32)
    tiny.make_bert(str(root / "pair"), layers=1, hidden=16, heads=2, seed=1)
    single = str(root / "single")
    export_checkpoint(str(root / "student"), single, "SST-2", format="paddle", glue_dir=str(root / "glue"),
                      max_seq_length=MAX_LEN)
    pair = str(root / "pair-export")
    export_checkpoint(str(root / "pair"), pair, "MRPC", format="onnx", glue_dir=str(root / "glue"),
                      max_seq_length=MAX_LEN)
    return root, single, pair


def shuffled_lengths(count, seed):
    rng = random.Random(seed)
    lengths = [1, 2, 3, 5, 8, 13, 20] * (count // 7 + 1)
    rng.shuffle(lengths)
    return [tiny.sentence(rng, rng.randint(0, 1), n) for n in lengths[:count]]


def test_results_come_back_in_input_order_for_shuffled_lengths(exported):
    _, single, _ = exported
    texts = shuffled_lengths(40, seed=0)
    predictor = Predictor(single, batch_size=6)  # several length-sorted batches
    batched = predictor.predict(texts)
    one_by_one = [Predictor.predict(predictor, [t])[0] for t in texts]
    assert len(batched) == len(texts)
    for got, alone in zip(batched, one_by_one):
        assert got["label"] == alone["label"]
        for label in ("0", "1"):
            assert got["probabilities"][label] == pytest.approx(alone["probabilities"][label], abs=1e-5)
        assert sum(got["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_predictor_takes_sentence_pairs(exported):
    _, _, pair = exported
    results = Predictor(pair).predict([("the cat sat", "the dog sat"), ("good", "bad film")])
    assert [r["label"] in ("0", "1") for r in results] == [True, True]


def run_predict(argv, capsys, stdin_text=None, monkeypatch=None):
    import io

    if stdin_text is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin_text))
    module = importlib.import_module("predict")
    module.main(argv)
    return capsys.readouterr().out.strip().splitlines()


def test_predict_reads_stdin_and_prints_one_json_line_per_input_in_order(exported, capsys, monkeypatch):
    _, single, _ = exported
    texts = shuffled_lengths(12, seed=3)
    lines = run_predict(["--model_dir", single, "--input", "-"], capsys, "\n".join(texts) + "\n", monkeypatch)
    results = [json.loads(line) for line in lines]
    assert [r["line"] for r in results] == list(range(1, 13))
    expected = Predictor(single).predict(texts)
    assert [r["label"] for r in results] == [e["label"] for e in expected]


def test_predict_reads_a_tsv_of_pairs(exported, capsys, tmp_path):
    _, _, pair = exported
    path = tmp_path / "pairs.tsv"
    path.write_text("the cat sat\tthe dog sat\n\ngood film\tbad film\n", encoding="utf-8")
    results = [json.loads(line) for line in run_predict(["--model_dir", pair, "--input", str(path)], capsys)]
    assert [r["line"] for r in results] == [1, 3]  # blank lines are skipped, numbering follows the file


# ----------------------------------------------------------------- bad input
def predict_error(argv, capsys, stdin_text=None, monkeypatch=None):
    import io

    if stdin_text is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin_text))
    module = importlib.import_module("predict")
    with pytest.raises(SystemExit) as exit_info:
        module.main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: ")
    assert not captured.out.strip()  # nothing half-printed
    return err[0]


def test_an_export_dir_without_manifest_is_refused(exported, capsys):
    root, single, _ = exported
    line = predict_error(["--model_dir", str(root / "student"), "--input", "-"], capsys)
    assert f"has no {MANIFEST}" in line and "export_model.py" in line


def test_a_tsv_whose_columns_do_not_fit_the_task_is_refused(exported, capsys, tmp_path):
    _, single, pair = exported
    path = tmp_path / "dev.tsv"
    path.write_text("sentence\tlabel\ngood film\t1\n", encoding="utf-8")
    line = predict_error(["--model_dir", single, "--input", str(path)], capsys)
    assert f"{path}:1: 2 tab-separated column(s)" in line and "takes one column" in line
    path.write_text("only one column here\n", encoding="utf-8")
    line = predict_error(["--model_dir", pair, "--input", str(path)], capsys)
    assert "1 tab-separated column(s)" in line and "MRPC" in line and "two tab-separated columns" in line


def test_an_over_long_input_is_refused_unless_truncated(exported, capsys, monkeypatch):
    _, single, _ = exported
    text = "good film\n" + " ".join(["movie"] * 60) + "\n"
    line = predict_error(["--model_dir", single, "--input", "-"], capsys, text, monkeypatch)
    assert "<stdin>:2:" in line and "62 WordPieces" in line and f"max_seq_length {MAX_LEN}" in line
    assert "--truncate" in line
    lines = run_predict(["--model_dir", single, "--input", "-", "--truncate"], capsys, text, monkeypatch)
    assert len(lines) == 2


def test_predict_cli_smoke(exported):
    _, single, _ = exported
    result = subprocess.run([sys.executable, os.path.join(ROOT, "predict.py"), "--model_dir", single, "--input", "-"],
                            input="a good film\nbad\n", capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [json.loads(line)["line"] for line in result.stdout.splitlines()] == [1, 2]


def test_latency_measures_a_predictor_and_a_dygraph_model_the_same_way(exported):
    from tinybert.models.loading import load_model
    from tinybert.serving.latency import dygraph_runner, features_from_texts, measure

    root, single, _ = exported
    predictor = Predictor(single)
    features = features_from_texts(predictor.tokenizer, shuffled_lengths(40, seed=5), MAX_LEN)
    runners = {"dygraph": dygraph_runner(load_model("tinybert", str(root / "student"))), "exported": predictor.run}
    measured = measure(runners, features, 0, batch_sizes=(1, 32), rounds=3, examples={1: 8})
    assert measured["examples"] == {1: 8, 32: 40} and measured["rounds"] == 3 and measured["threads"] >= 1
    for batch_size in (1, 32):
        for entry in measured["batch_sizes"][batch_size].values():
            assert len(entry["round_ms"]) == 3 and entry["min"] <= entry["ms_per_example"] <= entry["max"]
    assert np.isfinite(measured["mean_tokens"])
