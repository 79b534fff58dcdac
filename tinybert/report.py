"""Reporting what a pipeline produced: dev metrics of checkpoints, parameter counts, and results
tables (markdown and CSV).

Used by ``scripts/evaluate_run.py`` (the last stage of ``scripts/run_task.sh``),
``scripts/collect_results.py`` (the table of ``scripts/sweep.sh``) and ``scripts/demo.py``.

Parameter counts are those of the model used for prediction: the TinyBERT projections
(``fit_dense``/``fit_denses``) exist only to train stage 1 (docs/math.md#projections) and are left out.

Latency figures come from the project's one latency function, :func:`tinybert.serving.latency.measure`
(real sentences, dynamic padding, warm-up, alternating rounds, median and spread).
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

TRAINING_ONLY = (".fit_dense.", ".fit_denses.")


# ------------------------------------------------------------------ models
def inference_parameters(model) -> int:
    """Parameters used for prediction (TinyBERT's stage-1 projections excluded)."""
    return int(sum(int(np.prod(p.shape)) for name, p in model.named_parameters()
                   if not any(part in f".{name}" for part in TRAINING_ONLY)))


@dataclass
class Evaluated:
    """A checkpoint, its dev metrics and its size."""

    name: str
    path: str
    model_type: str
    metrics: Dict[str, float]
    parameters: int
    layers: int
    hidden: int
    model: object = field(default=None, repr=False)
    tokenizer: object = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {"name": self.name, "path": os.path.abspath(self.path), "model_type": self.model_type,
                "metrics": self.metrics, "score": self.metrics.get("score"), "parameters": self.parameters,
                "layers": self.layers, "hidden_size": self.hidden}


def load_dev(spec, glue_dir: Optional[str], skip_bad_rows: bool = False):
    from .data.glue import load_split

    return load_split(glue_dir, spec, "dev", skip_bad_rows)


def evaluate_checkpoint(name: str, path: str, spec, dev_sets, max_seq_length: int, batch_size: int = 64,
                        model_type: Optional[str] = None) -> Evaluated:
    """Load a ``save_pretrained`` directory and compute the task's dev metrics."""
    from .data.features import featurize
    from .models.internals import hidden_size, num_layers
    from .models.loading import checkpoint_model_type, load_model, load_tokenizer
    from .training.evaluate import evaluate_task

    model_type = model_type or checkpoint_model_type(path)
    flag = f"{name} checkpoint"
    tokenizer = load_tokenizer(model_type, path, flag)
    model = load_model(model_type, path, flag, num_labels=spec.num_labels)
    model.eval()
    devs = [featurize(d.examples, tokenizer, max_seq_length, spec.is_regression) for d in dev_sets]
    metrics = evaluate_task(model, spec, devs, batch_size, tokenizer.pad_token_id)
    return Evaluated(name, path, model_type, {k: float(v) for k, v in metrics.items()},
                     inference_parameters(model), num_layers(model), hidden_size(model), model, tokenizer)


# ------------------------------------------------------------------ tables
def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def text_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Aligned plain-text table for the console."""
    cells = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(value.ljust(widths[i]) for i, value in enumerate(r)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def fmt_millions(count: int) -> str:
    """``22.7M``; small (test) models as ``41.2K`` or the plain count."""
    if count >= 100_000:
        return f"{count / 1e6:.1f}M"
    return f"{count / 1e3:.1f}K" if count >= 1000 else str(count)


def fmt_score(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4f}"


def write_text(path: str, text: str) -> None:
    """Write a small file under a temporary name and rename it (never a half-written table)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    os.replace(temporary, path)


def write_json(path: str, value) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    if numerator is None or not denominator:
        return None
    return numerator / denominator



# ------------------------------------------- run_task.sh / sweep.sh results
RESULT_COLUMNS = ("run", "task", "teacher", "student", "student/teacher", "student metrics", "teacher params",
                  "student params", "batch", "inter lr", "pred lr", "inter epochs", "pred epochs", "augmented", "T")


def _metric_text(metrics: Dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "score")


def _epochs(settings: dict, key: str) -> str:
    value = str(settings.get(key, ""))
    steps = str(settings.get("max_steps", "") or "")
    return f"{value} (max_steps {steps})" if steps and steps != "-1" else value


def result_row(record: dict) -> List[object]:
    """One table row (columns :data:`RESULT_COLUMNS`) from a ``results.json`` record."""
    settings = record.get("settings", {})
    teacher, student = record.get("teacher") or {}, record.get("student") or {}
    share = record.get("student_vs_teacher")
    return [record.get("run", ""), record.get("task", ""), fmt_score(teacher.get("score")),
            fmt_score(student.get("score")), "" if share is None else f"{100 * share:.1f}%",
            _metric_text(student.get("metrics", {})),
            fmt_millions(teacher["parameters"]) if teacher.get("parameters") else "",
            fmt_millions(student["parameters"]) if student.get("parameters") else "",
            settings.get("batch_size", ""), settings.get("inter_lr", ""), settings.get("pred_lr", ""),
            _epochs(settings, "inter_epochs"), _epochs(settings, "pred_epochs"),
            settings.get("augment", ""), settings.get("temperature", "")]
