"""GLUE metrics and the one number per task that picks the best checkpoint
(docs/math.md#selection-numbers).

Computed with numpy/scipy from predictions and gold labels. Tests check them against
``paddlenlp.metrics`` (and scikit-learn) where those are right; our MCC differs on purpose:
PaddleNLP's ``Mcc`` returns 0.0 whenever one cell of the confusion matrix is empty
(docs/reference-defects.md#paddlenlps-mcc-returns-0), which on small dev sets hides real correlation.
"""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

import numpy as np

from ..data.tasks import TaskSpec


def accuracy(preds: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(preds == labels)) if len(labels) else 0.0


def f1_positive(preds: np.ndarray, labels: np.ndarray, positive: int = 1) -> float:
    tp = float(np.sum((preds == positive) & (labels == positive)))
    fp = float(np.sum((preds == positive) & (labels != positive)))
    fn = float(np.sum((preds != positive) & (labels == positive)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def matthews(preds: np.ndarray, labels: np.ndarray) -> float:
    tp = float(np.sum((preds == 1) & (labels == 1)))
    tn = float(np.sum((preds == 0) & (labels == 0)))
    fp = float(np.sum((preds == 1) & (labels == 0)))
    fn = float(np.sum((preds == 0) & (labels == 1)))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def pearson(preds: np.ndarray, labels: np.ndarray) -> float:
    if np.std(preds) == 0 or np.std(labels) == 0:
        return 0.0
    return float(np.corrcoef(preds, labels)[0, 1])


def spearman(preds: np.ndarray, labels: np.ndarray) -> float:
    from scipy.stats import rankdata

    return pearson(rankdata(preds), rankdata(labels))


METRICS = {"acc": accuracy, "f1": f1_positive, "mcc": matthews, "pearson": pearson, "spearman": spearman}


def predictions(logits: np.ndarray, spec: TaskSpec) -> np.ndarray:
    return logits.reshape(-1) if spec.is_regression else np.argmax(logits, axis=-1)


def task_metrics(spec: TaskSpec, per_dev_file: Sequence[tuple]) -> Dict[str, float]:
    """Metrics of every dev file, plus ``score``, the task's selection number.

    ``per_dev_file`` holds one (logits, labels) pair per dev file. MNLI's two dev files give
    ``acc_m`` and ``acc_mm``; its score is their mean (Huawei's code silently switched to the
    mismatched set, issue #115: we never do).
    """
    results: Dict[str, float] = {}
    suffixes: List[str] = ["_m", "_mm"] if len(per_dev_file) == 2 else [""]
    for suffix, (logits, labels) in zip(suffixes, per_dev_file):
        preds = predictions(np.asarray(logits), spec)
        for name in spec.metrics:
            results[name + suffix] = METRICS[name](preds, np.asarray(labels))
    values = list(results.values())
    results["score"] = values[0] if spec.selection in ("acc", "mcc") else float(np.mean(values))
    return results
