"""A training run never overwrites what it reads (docs/formats.md#outputs-never-replace-inputs).

Why: the seed commands fine-tuned the teacher into ``./tmp/SST-2/`` and ran stage 2 with the
same ``--output_dir``, so stage 2 wrote its student over the teacher it was reading
(``best_model/``), with exit 0; on a real task that teacher costs hours of GPU time. Each job
therefore checks, before it loads or writes anything, every directory it replaces whole
against every input it reads (and against the directories holding them).

What a stage replaces is precise, so the documented layouts stay allowed: stage 1 writes
``best_inter_model/`` and ``checkpoint-last-inter/``, stage 2 ``best_model/`` and
``checkpoint-last/``, so stage 2 may read ``<output_dir>/best_inter_model`` and write beside
it; fine-tuning writes ``best_model/`` and ``checkpoint-last/``, general distillation
``general_model/`` and ``checkpoint-last-general/``; ``--export_dir`` is replaced after
training and must spare the run's own output too. Files a run adds inside ``--output_dir``
(``run_<stage>.json``, ``eval_results.jsonl``, ``vdl/``, ``cache/``) replace no directory.
"""
from __future__ import annotations

import os
from typing import List, Tuple

from ..paths import check_not_replacing

MODEL_FLAGS = ("teacher_path", "student_model_name_or_path", "model_name_or_path")
HINT = " (one directory per run: e.g. teacher/, inter/ and pred/ under the task's, as scripts/run_task.sh does)"


def inputs_of(settings) -> List[Tuple[str, str]]:
    """``(flag, path)`` of everything a training job reads: models, corpus, task files, cache."""
    found = [(f"--{name}", getattr(settings, name)) for name in MODEL_FLAGS if getattr(settings, name, None)]
    found += [("--corpus", path) for path in getattr(settings, "corpus", ())]
    if getattr(settings, "task_name", None):
        found.append(("--glue_dir's task directory", task_directory(settings.glue_dir, settings.task_name)))
    if getattr(settings, "cache_dir", None):
        found.append(("--cache_dir", settings.cache_dir))
    return found


def task_directory(glue_dir, task_name: str) -> str:
    from ..data.glue import task_dir
    from ..data.tasks import get_task

    return task_dir(glue_dir, get_task(task_name))


def check_stage_keeps_inputs(settings, stage) -> None:
    """Refuse (one line) a stage whose outputs would replace one of its inputs.

    ``stage`` names what the run writes under ``--output_dir`` (``best_name``,
    ``checkpoint_name``: ``tinybert.training.stage.Stage``).
    """
    output = settings.output_dir
    best, checkpoint = os.path.join(output, stage.best_name), os.path.join(output, stage.checkpoint_name)
    inputs = inputs_of(settings)
    check_not_replacing([("--output_dir", output, best), ("--output_dir", output, checkpoint)], inputs, HINT)
    if getattr(settings, "export_dir", None):
        check_not_replacing([("--export_dir", settings.export_dir, settings.export_dir)],
                            inputs + [("--output_dir", output), (f"the run's {stage.best_name}", best),
                                      (f"the run's {stage.checkpoint_name}", checkpoint)])
