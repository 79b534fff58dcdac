"""What each job is asked to do, as frozen values: the library's inputs instead of argparse.

Each entry point parses its flags (``tinybert.cli``) and builds one of these in one place
(``cli.settings_from``); below the entry points nothing sees an argparse ``Namespace``. A
notebook or a script builds them directly and calls ``tinybert.api`` (see the README's
"Python API"). Field names are the flags' names (``--no_length_buckets`` is
``bucket_by_length=False``, ``--no_per_channel`` is ``per_channel=False``) and the defaults
here *are* the flags' defaults: the parsers read them from these classes.

Why frozen: a run records its settings in ``run_<stage>.json`` and compares them on
``--resume``; a value that cannot change after the run started is what that record promises.
Checks that need no model or file (choices, types) happen at construction, so a typo in a
notebook fails at once with the flag's name; everything else is checked where it is used,
with the same messages the command line gives.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional, Tuple

from .errors import UserError

CHOICES = {
    "amp": ("off", "float16", "bfloat16"),
    "projection": ("auto", "per_layer", "shared"),
    "data_worker": ("thread", "process"),
    "format": ("paddle", "onnx"),
    "precision": ("float32", "int8"),
    "cpu_kernels": ("mkl", "onednn"),
    "gate_init": ("importance", "uniform"),
}


class _Checked:
    """Shared construction checks: choices, and lists of paths stored as tuples."""

    def __post_init__(self):
        for item in fields(self):
            value = getattr(self, item.name)
            allowed = CHOICES.get(item.name)
            if allowed is not None and value not in allowed:
                raise UserError(f"--{item.name} {value!r}: choose one of {', '.join(allowed)}")
        if hasattr(self, "corpus"):
            corpus = (self.corpus,) if isinstance(self.corpus, str) else tuple(self.corpus)
            object.__setattr__(self, "corpus", corpus)

    def identity(self) -> dict:
        """Every field by name (what ``run_<stage>.json`` records)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}


@dataclass(frozen=True, kw_only=True)
class DataSettings(_Checked):
    """A GLUE task's files and how they are featurized."""

    task_name: str
    glue_dir: Optional[str] = None
    max_seq_length: int = 128
    skip_bad_rows: bool = False
    cache_dir: Optional[str] = None  # token stores and cached teacher logits; None: <output_dir>/cache


@dataclass(frozen=True, kw_only=True)
class TrainingSettings(_Checked):
    """The loop, the output directory and the device (every training job)."""

    output_dir: str
    batch_size: int = 32
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    max_steps: int = -1
    warmup_proportion: float = 0.1
    weight_decay: float = 0.0
    logging_steps: int = 100
    save_steps: int = 100
    seed: int = 42
    device: str = "gpu"
    resume: bool = False
    overwrite_output_dir: bool = False
    bucket_by_length: bool = True
    eval_batch_size: int = 64
    export_dir: Optional[str] = None
    amp: str = "off"


@dataclass(frozen=True, kw_only=True)
class IntermediateSettings(_Checked):
    """The intermediate-layer loss (task stage 1 and general distillation)."""

    layer_map: Optional[str] = None
    hidden_weight: float = 1.0
    attention_weight: float = 1.0


@dataclass(frozen=True, kw_only=True)
class FinetuneSettings(DataSettings, TrainingSettings):
    """``finetune_teacher.py``: fine-tune a teacher on a task."""

    model_type: str = "bert"
    model_name_or_path: str = "bert-base-uncased"
    learning_rate: float = 2e-5


@dataclass(frozen=True, kw_only=True)
class DistillSettings(DataSettings, IntermediateSettings, TrainingSettings):
    """``task_distill.py``: stage 1 (``intermediate_distill=True``) or stage 2 of task distillation."""

    teacher_path: str
    model_type: str = "tinybert"
    student_model_name_or_path: str = "tinybert-6l-768d-v2"
    teacher_model_type: str = "bert"
    intermediate_distill: bool = False
    T: float = 1.0
    use_aug: bool = False
    projection: str = "auto"


@dataclass(frozen=True, kw_only=True)
class PruneSettings(DataSettings, TrainingSettings):
    """``prune_distill.py``: prune the fine-tuned teacher to ``prune_to`` while distilling from it."""

    teacher_path: str
    prune_to: str
    teacher_model_type: str = "bert"
    use_aug: bool = False
    T: float = 1.0
    hidden_weight: float = 1.0
    attention_weight: float = 0.0  # CoFi distils hidden states only; with scores the classifier collapsed (math.md)
    prediction_weight: float = 1.0
    learning_rate: float = 1e-4
    gate_learning_rate: float = 0.05
    target_warmup: float = 0.5
    gate_init: str = "importance"
    importance_examples: int = 1024


@dataclass(frozen=True, kw_only=True)
class GeneralSettings(IntermediateSettings, TrainingSettings):
    """``general_distill.py``: general distillation of a student on plain text."""

    teacher_path: str
    corpus: Tuple[str, ...]
    teacher_model_type: str = "bert"
    student_model_name_or_path: Optional[str] = None
    student_num_layers: Optional[int] = None
    student_hidden_size: Optional[int] = None
    student_intermediate_size: Optional[int] = None
    student_num_heads: Optional[int] = None
    max_seq_length: int = 128
    data_worker: str = "thread"
    learning_rate: float = 1e-4


@dataclass(frozen=True, kw_only=True)
class AugmentSettings(_Checked):
    """``data_augmentation.py``: write ``<glue_dir>/<TASK>/train_aug.tsv``."""

    task_name: str
    pretrained_bert_model: str = "bert-base-uncased"
    glove_embs: Optional[str] = None
    glue_dir: Optional[str] = None
    N: Optional[int] = None  # None: the task's augment_n in tinybert/data/glue.json
    M: int = 15
    p: float = 0.4
    seed: int = 42
    device: str = "gpu"
    batch_size: int = 64
    glove_vocab_limit: int = 100000
    skip_bad_rows: bool = False
    chunk_rows: int = 2048  # rows per part file: the unit of resuming and of sharing among processes
    segmented: bool = False  # text columns hold words separated by spaces: keep multi-character CJK words whole


@dataclass(frozen=True, kw_only=True)
class ExportSettings(_Checked):
    """``export_model.py``: export a classifier checkpoint and check it on the dev set."""

    model_dir: str
    output_dir: str
    task_name: str
    format: str = "paddle"
    precision: str = "float32"
    glue_dir: Optional[str] = None
    max_seq_length: int = 128
    device: str = "cpu"
    calibration_examples: int = 300
    cpu_kernels: str = "mkl"
    per_channel: bool = True
    tolerance: Optional[float] = None  # None: 1e-4 on the CPU, 1e-2 on a GPU (docs/deploying.md)
    eval_batch_size: int = 32
    skip_bad_rows: bool = False
    tensorrt: bool = False


@dataclass(frozen=True, kw_only=True)
class PredictSettings(_Checked):
    """``predict.py``: classify the lines of a file (or ``-``, standard input) with an export."""

    model_dir: str
    input: str
    batch_size: int = 32
    truncate: bool = False
    device: str = "cpu"
    threads: Optional[int] = None
    tensorrt: bool = False
