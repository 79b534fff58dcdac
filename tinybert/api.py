"""The library's front door: every job of the command line, callable from Python.

Each function takes its settings value (``tinybert.settings``) or the same fields as keyword
arguments, and returns what the job produced::

    from tinybert import api
    from tinybert.settings import DistillSettings

    api.distill(DistillSettings(task_name="SST-2", teacher_path="teacher/best_model",
                                student_model_name_or_path="tinybert-4l-312d-v2",
                                intermediate_distill=True, output_dir="out", device="cpu"))
    api.distill(task_name="SST-2", teacher_path="teacher/best_model",
                student_model_name_or_path="out/best_inter_model", output_dir="out", device="cpu")

A problem the caller can fix raises ``tinybert.errors.UserError`` with the message the command
line prints (flags named as on the command line). The CPU settings the scripts apply before
Paddle loads (``runtime.prepare_process``) are applied on the first call when Paddle is not
loaded yet; in a process that already imported Paddle they are the caller's.
"""
from __future__ import annotations

from .settings import (
    AugmentSettings,
    DistillSettings,
    ExportSettings,
    FinetuneSettings,
    GeneralSettings,
    PredictSettings,
    PruneSettings,
)


def _settings(settings_class, settings, overrides):
    import sys

    if "paddle" not in sys.modules:
        from .runtime import prepare_process

        prepare_process()
    if settings is None:
        return settings_class(**overrides)
    if overrides:
        raise TypeError("give a settings value or keyword arguments, not both")
    if not isinstance(settings, settings_class):
        raise TypeError(f"expected {settings_class.__name__}, got {type(settings).__name__}")
    return settings


def finetune_teacher(settings: FinetuneSettings = None, **fields) -> dict:
    """Fine-tune a teacher; returns ``{"best", "stage", "best_dir"}``."""
    from .distillation.teacher import run

    return run(_settings(FinetuneSettings, settings, fields))


def distill(settings: DistillSettings = None, **fields) -> dict:
    """Task distillation, stage 1 (``intermediate_distill=True``) or stage 2; returns ``{"best", "stage", "best_dir"}``."""
    from .distillation.task import run

    return run(_settings(DistillSettings, settings, fields))


def prune(settings: PruneSettings = None, **fields) -> dict:
    """Prune the fine-tuned teacher to ``prune_to`` while distilling from it; returns ``{"best", "stage",
    "best_dir"}`` (``best_pruned_model/``, an ordinary BERT classifier for stage 2)."""
    from .distillation.prune import run

    return run(_settings(PruneSettings, settings, fields))


def general_distill(settings: GeneralSettings = None, **fields) -> dict:
    """General distillation on plain text; returns ``{"best", "stage", "best_dir"}`` (``general_model/``)."""
    from .distillation.general import run

    return run(_settings(GeneralSettings, settings, fields))


def augment(settings: AugmentSettings = None, progress: bool = True, **fields) -> str:
    """Write ``<glue_dir>/<TASK>/train_aug.tsv``; returns its path."""
    from .augmentation.augment import run

    return run(_settings(AugmentSettings, settings, fields), progress=progress)


def export(settings: ExportSettings = None, **fields) -> dict:
    """Export a classifier checkpoint and check it on the dev set; returns the manifest."""
    from .serving.deploy import run

    return run(_settings(ExportSettings, settings, fields))


def predict(settings: PredictSettings = None, **fields) -> None:
    """``predict.py``: classify the lines of ``input`` and print one JSON line each.

    To classify texts in Python, use ``tinybert.serving.inference.Predictor`` directly.
    """
    from .serving.inference import run_cli_predict

    run_cli_predict(_settings(PredictSettings, settings, fields))
