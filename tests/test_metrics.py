"""GLUE metrics against paddlenlp.metrics / scikit-learn / scipy, and the selection number
(docs/math.md#selection-numbers)."""
import math

import numpy as np
import paddle
import pytest
from paddlenlp.metrics import AccuracyAndF1, Mcc, PearsonAndSpearman
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from tinybert.data.tasks import get_task
from tinybert.training.metrics import (
    accuracy,
    f1_positive,
    matthews,
    pearson,
    predictions,
    spearman,
    task_metrics,
)

SEEDS = range(5)


def random_classification(seed, n=64, classes=2):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)).astype(np.float32)
    labels = rng.integers(0, classes, size=n).astype(np.int64)
    return logits, labels


def paddlenlp_acc_and_f1(logits, labels):
    metric = AccuracyAndF1()
    correct = metric.compute(paddle.to_tensor(logits), paddle.to_tensor(labels.reshape(-1, 1)))
    metric.update(correct)
    acc, _, _, f1, _ = metric.accumulate()
    return acc, f1


def paddlenlp_mcc(preds, labels):
    metric = Mcc()
    metric.update((preds.reshape(-1, 1), paddle.to_tensor(labels.reshape(-1, 1))))
    return metric.accumulate()[0]


def paddlenlp_pearson_spearman(preds, labels):
    metric = PearsonAndSpearman()
    metric.update((paddle.to_tensor(preds.reshape(-1, 1)), paddle.to_tensor(labels.reshape(-1, 1))))
    pearson_value, spearman_value, _ = metric.accumulate()
    return pearson_value, spearman_value


# ----------------------------------------------------------- accuracy and F1
@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_and_f1_equal_paddlenlp_and_sklearn(seed):
    logits, labels = random_classification(seed)
    preds = logits.argmax(-1)
    reference_acc, reference_f1 = paddlenlp_acc_and_f1(logits, labels)
    assert accuracy(preds, labels) == pytest.approx(reference_acc, abs=1e-9)
    assert accuracy(preds, labels) == pytest.approx(accuracy_score(labels, preds), abs=1e-12)
    assert f1_positive(preds, labels) == pytest.approx(reference_f1, abs=1e-9)
    assert f1_positive(preds, labels) == pytest.approx(f1_score(labels, preds), abs=1e-12)


def test_f1_is_zero_without_true_positives_like_sklearn():
    labels = np.array([1, 1, 0, 0])
    preds = np.array([0, 0, 0, 0])
    assert f1_positive(preds, labels) == f1_score(labels, preds, zero_division=0) == 0.0


def test_accuracy_of_three_classes_equals_sklearn():
    logits, labels = random_classification(11, n=90, classes=3)
    preds = logits.argmax(-1)
    assert accuracy(preds, labels) == pytest.approx(accuracy_score(labels, preds), abs=1e-12)


# ---------------------------------------------------------------------- MCC
@pytest.mark.parametrize("seed", SEEDS)
def test_mcc_equals_sklearn(seed):
    logits, labels = random_classification(seed, n=50)
    preds = logits.argmax(-1)
    assert matthews(preds, labels) == pytest.approx(matthews_corrcoef(labels, preds), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_mcc_equals_paddlenlp_when_every_confusion_cell_is_filled(seed):
    logits, labels = random_classification(seed, n=200)
    preds = logits.argmax(-1)
    assert matthews(preds, labels) == pytest.approx(paddlenlp_mcc(preds, labels), abs=1e-12)


@pytest.mark.parametrize("preds, labels", [
    ([1, 1, 0, 0, 0, 1], [1, 1, 0, 0, 1, 1]),  # no false positive
    ([1, 0, 0, 0, 1, 1], [1, 0, 0, 1, 1, 1]),  # another FP-free case
    ([1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]),  # no false negative
])
def test_mcc_is_right_where_paddlenlp_mcc_wrongly_returns_zero(preds, labels):
    preds, labels = np.array(preds), np.array(labels)
    expected = matthews_corrcoef(labels, preds)
    assert expected > 0.4
    assert paddlenlp_mcc(preds, labels) == 0.0  # PaddleNLP's Mcc bails out on an empty cell
    assert matthews(preds, labels) == pytest.approx(expected, abs=1e-12)


def test_mcc_of_constant_predictions_is_zero_like_sklearn():
    labels = np.array([0, 1, 1, 0, 1])
    preds = np.ones(5, dtype=np.int64)
    assert matthews(preds, labels) == matthews_corrcoef(labels, preds) == 0.0


def test_mcc_of_perfect_and_inverted_predictions():
    labels = np.array([0, 1, 1, 0, 1])
    assert matthews(labels, labels) == pytest.approx(1.0)
    assert matthews(1 - labels, labels) == pytest.approx(-1.0)


# --------------------------------------------------------- Pearson, Spearman
@pytest.mark.parametrize("seed", SEEDS)
def test_pearson_and_spearman_equal_paddlenlp_and_scipy(seed):
    rng = np.random.default_rng(seed)
    labels = rng.uniform(0, 5, size=60)
    preds = labels + rng.normal(scale=1.5, size=60)  # continuous values: no ties
    reference_pearson, reference_spearman = paddlenlp_pearson_spearman(preds, labels)
    assert pearson(preds, labels) == pytest.approx(reference_pearson, abs=1e-9)
    assert pearson(preds, labels) == pytest.approx(pearsonr(preds, labels)[0], abs=1e-12)
    assert spearman(preds, labels) == pytest.approx(reference_spearman, abs=1e-9)
    assert spearman(preds, labels) == pytest.approx(spearmanr(preds, labels)[0], abs=1e-12)


def test_spearman_with_tied_scores_equals_scipy():
    labels = np.array([0.0, 1.0, 1.0, 2.5, 2.5, 2.5, 4.0, 5.0])
    preds = np.array([0.3, 0.9, 1.4, 2.2, 2.6, 2.0, 4.4, 4.1])
    assert spearman(preds, labels) == pytest.approx(spearmanr(preds, labels)[0], abs=1e-12)


def test_correlations_of_a_constant_prediction_are_zero_not_nan():
    labels = np.array([0.0, 1.0, 2.0, 3.0])
    preds = np.full(4, 2.5)
    assert pearson(preds, labels) == 0.0
    assert spearman(preds, labels) == 0.0


# ------------------------------------------------------------- per task
def test_predictions_are_argmax_for_classification_and_the_logit_for_regression():
    assert predictions(np.array([[0.1, 0.9], [2.0, -1.0]]), get_task("SST-2")).tolist() == [1, 0]
    assert predictions(np.array([[3.5], [1.25]]), get_task("STS-B")).tolist() == [3.5, 1.25]


@pytest.mark.parametrize("task", ["SST-2", "QNLI", "RTE", "WNLI"])
def test_accuracy_tasks_select_on_accuracy(task):
    logits, labels = random_classification(1)
    results = task_metrics(get_task(task), [(logits, labels)])
    assert set(results) == {"acc", "score"}
    assert results["acc"] == pytest.approx(accuracy_score(labels, logits.argmax(-1)))
    assert results["score"] == results["acc"]


@pytest.mark.parametrize("task", ["MRPC", "QQP"])
def test_mrpc_and_qqp_select_on_the_mean_of_accuracy_and_f1(task):
    logits, labels = random_classification(2)
    results = task_metrics(get_task(task), [(logits, labels)])
    acc, f1 = paddlenlp_acc_and_f1(logits, labels)
    assert set(results) == {"acc", "f1", "score"}
    assert results["acc"] == pytest.approx(acc)
    assert results["f1"] == pytest.approx(f1)
    assert results["score"] == pytest.approx((acc + f1) / 2)


def test_stsb_selects_on_the_mean_of_pearson_and_spearman():
    rng = np.random.default_rng(3)
    labels = rng.uniform(0, 5, size=40).astype(np.float32)
    logits = (labels + rng.normal(size=40)).astype(np.float32).reshape(-1, 1)
    results = task_metrics(get_task("STS-B"), [(logits, labels)])
    p, s = pearsonr(logits[:, 0], labels)[0], spearmanr(logits[:, 0], labels)[0]
    assert set(results) == {"pearson", "spearman", "score"}
    assert results["pearson"] == pytest.approx(p, abs=1e-6)
    assert results["spearman"] == pytest.approx(s, abs=1e-6)
    assert results["score"] == pytest.approx((p + s) / 2, abs=1e-6)


def test_mnli_reports_matched_and_mismatched_accuracy_and_selects_on_their_mean():
    matched = random_classification(4, n=30, classes=3)
    mismatched = random_classification(5, n=50, classes=3)
    results = task_metrics(get_task("MNLI"), [matched, mismatched])
    acc_m = accuracy_score(matched[1], matched[0].argmax(-1))
    acc_mm = accuracy_score(mismatched[1], mismatched[0].argmax(-1))
    assert acc_m != acc_mm
    assert set(results) == {"acc_m", "acc_mm", "score"}
    assert results["acc_m"] == pytest.approx(acc_m)
    assert results["acc_mm"] == pytest.approx(acc_mm)
    assert results["score"] == pytest.approx((acc_m + acc_mm) / 2)


def test_cola_selects_on_mcc_even_when_paddlenlp_would_say_zero():
    labels = np.array([1, 1, 0, 0, 0, 1])
    logits = np.eye(2)[[1, 1, 0, 0, 0, 0]]  # one false negative, no false positive
    assert paddlenlp_mcc(logits.argmax(-1), labels) == 0.0
    results = task_metrics(get_task("CoLA"), [(logits, labels)])
    expected = matthews_corrcoef(labels, logits.argmax(-1))
    assert set(results) == {"mcc", "score"}
    assert results["mcc"] == pytest.approx(expected)
    assert results["score"] == results["mcc"] > 0.5


def test_every_metric_is_a_finite_python_float():
    for task in ["CoLA", "SST-2", "MRPC", "QQP", "QNLI", "RTE", "WNLI"]:
        results = task_metrics(get_task(task), [random_classification(6)])
        assert all(isinstance(v, float) and math.isfinite(v) for v in results.values())
