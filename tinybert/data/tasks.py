"""The nine GLUE tasks and seven CLUE classification tasks as one table of data
(docs/formats.md#glue-files, docs/formats.md#clue-files).

One :class:`TaskSpec` per task replaces the per-task processor classes of the reference
implementations. A task's ``file_format`` says how its files are read (``data.glue``
dispatches on it, so everything above the reader is the same for both benchmarks):

- ``tsv`` (GLUE): column indices are 0-based; ``label_column=-1`` means the last column
  (MNLI's label column differs between train and dev files, but it is always the last);
- ``jsonl`` (CLUE, as published and as PaddleNLP's ``load_dataset("clue", ...)`` reads it):
  one JSON object per line, texts in ``text_fields`` (a list value, CSL's ``keyword``, is
  joined with spaces), the label in ``label``. CLUEWSC2020 has one text whose two spans
  (``target``) are marked in it (``mark_spans``); rows labelled ``drop_label`` (OCNLI's and
  CMNLI's ``-``, no annotator majority) are dropped and counted.

The label order equals PaddleNLP's ``Glue`` and ``Clue`` datasets so teachers fine-tuned by
PaddleNLP's ``run_glue.py`` or its CLUE classifier work unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import UserError


@dataclass(frozen=True)
class TaskSpec:
    name: str  # canonical spelling, also the directory name under glue_dir
    text_columns: Tuple[int, ...]  # tsv only
    label_column: int  # tsv only
    labels: Optional[Tuple[str, ...]]  # None for regression
    metrics: Tuple[str, ...]  # names reported by tinybert.training.metrics
    selection: str  # how the single "best model" number is formed, see metrics.selection_score
    has_header: bool = True
    dev_files: Tuple[str, ...] = ("dev.tsv",)
    train_file: str = "train.tsv"
    file_format: str = "tsv"  # "tsv" (GLUE) or "jsonl" (CLUE)
    benchmark: str = "glue"  # the PaddleNLP dataset that downloads it: load_dataset(benchmark, name.lower())
    text_fields: Tuple[str, ...] = ()  # jsonl only
    mark_spans: bool = False  # jsonl: the text is ``text`` with target.span1/span2 marked (CLUEWSC2020)
    drop_label: Optional[str] = None  # jsonl: rows with this label carry no gold label and are dropped

    @property
    def aug_file(self) -> str:
        """The augmented training file beside ``train_file``, in the task's own format."""
        return "train_aug.json" if self.file_format == "jsonl" else "train_aug.tsv"

    @property
    def num_texts(self) -> int:
        if self.file_format == "jsonl":
            return 1 if self.mark_spans else len(self.text_fields)
        return len(self.text_columns)

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return self.num_texts == 2

    @property
    def min_columns(self) -> int:
        """Fewest columns a data row must have for every field to be present."""
        needed = list(self.text_columns)
        if self.label_column >= 0:
            needed.append(self.label_column)
        return max(needed) + 1


GLUE_TASKS = {
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


def _clue(name: str, text_fields: Tuple[str, ...], labels: Tuple[str, ...], **extra) -> TaskSpec:
    return TaskSpec(name, (), -1, labels, ("acc",), "acc", has_header=False, dev_files=("dev.json",),
                    train_file="train.json", file_format="jsonl", benchmark="clue", text_fields=text_fields,
                    **extra)


NLI_DROPPED = "-"
CLUE_TASKS = {
    spec.name: spec
    for spec in (
        _clue("AFQMC", ("sentence1", "sentence2"), ("0", "1")),
        # TNEWS: 15 category codes; 105 and 111 are not used by the published data
        _clue("TNEWS", ("sentence",), tuple(str(code) for code in range(100, 117) if code not in (105, 111))),
        _clue("IFLYTEK", ("sentence",), tuple(str(code) for code in range(119))),
        _clue("OCNLI", ("sentence1", "sentence2"), ("entailment", "contradiction", "neutral"), drop_label=NLI_DROPPED),
        _clue("CMNLI", ("sentence1", "sentence2"), ("contradiction", "entailment", "neutral"), drop_label=NLI_DROPPED),
        _clue("CLUEWSC2020", ("text",), ("true", "false"), mark_spans=True),
        _clue("CSL", ("keyword", "abst"), ("0", "1")),
    )
}
TASKS = {**GLUE_TASKS, **CLUE_TASKS}

_ALIASES = {key.lower().replace("-", ""): key for key in TASKS}


def get_task(name: str) -> TaskSpec:
    """Look a task up case-insensitively, with or without the dash (``sst-2``, ``SST2``)."""
    key = _ALIASES.get(str(name).strip().lower().replace("-", "").replace("_", ""))
    if key is None:
        raise UserError(
            f"unknown task '{name}': --task_name must be one of {', '.join(TASKS)} (case-insensitive)"
        )
    return TASKS[key]
