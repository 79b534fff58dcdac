"""What every entry point does before training: validate flags, guard the output directory.

An ``output_dir`` records the arguments of each stage run in it (``run_<stage>.json``). A
second run of the same stage with other arguments is refused unless ``--resume`` or
``--overwrite_output_dir`` is given, so a typo never silently mixes two runs' checkpoints.
Stage 1 and stage 2 may share one directory, as in the PaddleNLP commands.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Iterable

from ..errors import UserError, require
from ..paths import check_writable_dir
from ..settings import DataSettings

IGNORED_FOR_IDENTITY = {"resume", "overwrite_output_dir", "device", "logging_steps"}


def check_positive(settings, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(settings, name, None)
        if value is not None and not value > 0:
            raise UserError(f"--{name} must be positive, got {value}")


def check_training_flags(settings) -> None:
    """Flags shared by all training entry points."""
    check_positive(settings, ("batch_size", "learning_rate", "max_seq_length", "logging_steps", "save_steps"))
    require(settings.max_steps > 0 or settings.num_train_epochs > 0,
            f"--num_train_epochs must be positive (got {settings.num_train_epochs}), or give --max_steps")
    require(settings.max_seq_length <= 512, f"--max_seq_length {settings.max_seq_length} exceeds BERT's 512 positions")
    require(0 <= settings.warmup_proportion < 1, f"--warmup_proportion must be in [0, 1), got {settings.warmup_proportion}")
    require(settings.weight_decay >= 0, f"--weight_decay must be >= 0, got {settings.weight_decay}")


def arguments_identity(settings) -> dict:
    return {k: v for k, v in sorted(settings.identity().items()) if k not in IGNORED_FOR_IDENTITY}


def check_output_dir(settings, stage: str, checkpoint_name: str) -> None:
    """Refuse to mix two runs of ``stage`` in ``output_dir`` (reads only: every rank may call it).

    Both directories the run writes are vetted first (a directory, or creatable; writable; not
    under a file), so a mistake there stops the run before any model loads, not at its end.
    """
    output_dir = settings.output_dir
    check_writable_dir(output_dir, "--output_dir")
    if settings.export_dir:
        check_writable_dir(settings.export_dir, "--export_dir", replaced=True)
    if isinstance(settings, DataSettings) and settings.cache_dir:  # jobs that featurize a task into token stores
        check_writable_dir(settings.cache_dir, "--cache_dir")
    record = os.path.join(output_dir, f"run_{stage}.json")
    saved_anything = os.path.isdir(os.path.join(output_dir, checkpoint_name))
    if settings.resume and not saved_anything:
        raise UserError(f"--resume: {os.path.join(output_dir, checkpoint_name)} does not exist; "
                        f"this run saved no checkpoint yet (run without --resume)")
    if os.path.exists(record) and not settings.resume and saved_anything and not settings.overwrite_output_dir:
        previous = _recorded_arguments(record)  # a run that saved nothing blocks nothing
        identity = json.loads(json.dumps(arguments_identity(settings), default=str))
        changed = sorted(k for k in set(previous) | set(identity) if previous.get(k) != identity.get(k))
        what = f"with other arguments ({', '.join(changed)})" if changed else "with the same arguments"
        raise UserError(
            f"--output_dir {output_dir} already holds a {stage} run {what}; pass --resume to continue "
            f"it or --overwrite_output_dir to start over"
        )


def claim_output_dir(settings, stage: str, checkpoint_name: str, run_info: dict) -> str:
    """Create ``output_dir``, clear this stage's state on overwrite, write ``run_<stage>.json``.

    The record holds the arguments (compared by :func:`check_output_dir`) and ``run_info``
    (the effective settings, package version and git commit: docs/formats.md#run_stagejson).
    Rank 0 alone calls this, after every rank has passed :func:`check_output_dir`.
    """
    output_dir = settings.output_dir
    os.makedirs(output_dir, exist_ok=True)
    if settings.overwrite_output_dir and not settings.resume:
        shutil.rmtree(os.path.join(output_dir, checkpoint_name), ignore_errors=True)
        _forget_evaluations(os.path.join(output_dir, "eval_results.jsonl"), stage)
    record = os.path.join(output_dir, f"run_{stage}.json")
    with open(record + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({"arguments": arguments_identity(settings), "run": run_info}, handle, indent=1, default=str)
    os.replace(record + ".tmp", record)
    return record


def _recorded_arguments(record: str) -> dict:
    with open(record, encoding="utf-8") as handle:
        saved = json.load(handle)
    return saved.get("arguments", saved) if isinstance(saved, dict) else {}


def _forget_evaluations(path: str, stage: str) -> None:
    """Drop the overwritten run's lines of ``stage`` from eval_results.jsonl (other stages stay)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as handle:
        kept = [line for line in handle if line.strip() and json.loads(line).get("stage") != stage]
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.writelines(kept)
    os.replace(path + ".tmp", path)
