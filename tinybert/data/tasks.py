"""The nine GLUE tasks as one table of data (docs/formats.md#glue-files).

One :class:`TaskSpec` per task replaces the per-task processor classes of the reference
implementations. Column indices are 0-based; ``label_column=-1`` means the last column
(MNLI's label column differs between train and dev files, but it is always the last).
The label order equals PaddleNLP's ``Glue`` dataset so teachers fine-tuned by PaddleNLP's
``run_glue.py`` work unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import UserError


@dataclass(frozen=True)
class TaskSpec:
    name: str  # canonical spelling, also the directory name under glue_dir
    text_columns: Tuple[int, ...]
    label_column: int
    labels: Optional[Tuple[str, ...]]  # None for regression
    metrics: Tuple[str, ...]  # names reported by tinybert.training.metrics
    selection: str  # how the single "best model" number is formed, see metrics.selection_score
    has_header: bool = True
    dev_files: Tuple[str, ...] = ("dev.tsv",)
    train_file: str = "train.tsv"

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def min_columns(self) -> int:
        """Fewest columns a data row must have for every field to be present."""
        needed = list(self.text_columns)
        if self.label_column >= 0:
            needed.append(self.label_column)
        return max(needed) + 1


TASKS = {
    spec.name: spec
    for spec in (
        TaskSpec("CoLA", (3,), 1, ("0", "1"), ("mcc",), "mcc", has_header=False),
        TaskSpec("SST-2", (0,), 1, ("0", "1"), ("acc",), "acc"),
        TaskSpec("MRPC", (3, 4), 0, ("0", "1"), ("acc", "f1"), "mean"),
        TaskSpec("STS-B", (7, 8), -1, None, ("pearson", "spearman"), "mean"),
        TaskSpec("QQP", (3, 4), 5, ("0", "1"), ("acc", "f1"), "mean"),
        TaskSpec(
            "MNLI",
            (8, 9),
            -1,
            ("contradiction", "entailment", "neutral"),
            ("acc",),
            "mean_dev_sets",
            dev_files=("dev_matched.tsv", "dev_mismatched.tsv"),
        ),
        TaskSpec("QNLI", (1, 2), 3, ("entailment", "not_entailment"), ("acc",), "acc"),
        TaskSpec("RTE", (1, 2), 3, ("entailment", "not_entailment"), ("acc",), "acc"),
        TaskSpec("WNLI", (1, 2), 3, ("0", "1"), ("acc",), "acc"),
    )
}

_ALIASES = {key.lower().replace("-", ""): key for key in TASKS}


def get_task(name: str) -> TaskSpec:
    """Look a task up case-insensitively, with or without the dash (``sst-2``, ``SST2``)."""
    key = _ALIASES.get(str(name).strip().lower().replace("-", "").replace("_", ""))
    if key is None:
        raise UserError(
            f"unknown task '{name}': --task_name must be one of {', '.join(TASKS)} (case-insensitive)"
        )
    return TASKS[key]
