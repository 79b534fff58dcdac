"""The command line's side of the settings: shared flag groups, and the one place a parsed
``Namespace`` becomes a settings value (flag names follow PaddleNLP's scripts).

Every default comes from the settings class the flags fill (``tinybert.settings``), so the
command line and the Python API cannot drift apart.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

REQUIRED = object()


def default(settings_class, name: str):
    """The default of field ``name`` of ``settings_class`` (``REQUIRED`` when it has none)."""
    for item in fields(settings_class):
        if item.name == name:
            return REQUIRED if item.default is MISSING else item.default
    raise KeyError(f"{settings_class.__name__} has no field {name!r}")


def flag(parser: argparse.ArgumentParser, settings_class, name: str, *names: str, **options) -> None:
    """``parser.add_argument(--name, ...)`` with the default (or ``required``) of the field it fills."""
    dest = options.get("dest", name.lstrip("-"))
    value = default(settings_class, dest)
    if value is REQUIRED:
        options["required"] = True
    else:
        options["default"] = value
    parser.add_argument(name, *names, **options)


def settings_from(settings_class, namespace: argparse.Namespace):
    """The settings value of a parsed command line (every flag is a field, and every field a flag)."""
    return settings_class(**vars(namespace))  # lists of paths become tuples in the settings themselves


def add_data_flags(parser: argparse.ArgumentParser, settings_class) -> None:
    flag(parser, settings_class, "--task_name", help="GLUE task, case-insensitive (e.g. SST-2, sst-2, mnli)")
    flag(parser, settings_class, "--glue_dir",
         help="directory holding <TASK>/train.tsv etc. (default: PaddleNLP's DATA_HOME/Glue)")
    flag(parser, settings_class, "--max_seq_length", type=int, help="longer inputs are truncated")
    flag(parser, settings_class, "--skip_bad_rows", action="store_true",
         help="drop malformed TSV rows (counted and reported) instead of stopping")
    flag(parser, settings_class, "--cache_dir",
         help="where the featurized token stores and cached teacher logits live (default: <output_dir>/cache); "
              "reused by later stages and runs, rebuilt when the data, tokenizer or length change")


def add_training_flags(parser: argparse.ArgumentParser, settings_class) -> None:
    add = lambda *a, **k: flag(parser, settings_class, *a, **k)  # noqa: E731
    add("--batch_size", type=int)
    add("--learning_rate", type=float)
    add("--num_train_epochs", type=float)
    add("--max_steps", type=int, help="if > 0, overrides --num_train_epochs")
    add("--warmup_proportion", type=float)
    add("--weight_decay", type=float)
    add("--logging_steps", type=int)
    add("--save_steps", type=int, help="evaluate and checkpoint every N steps")
    add("--output_dir")
    add("--seed", type=int)
    add("--device", help="gpu (default, falls back to cpu without CUDA) or cpu")
    add("--resume", action="store_true", help="continue from <output_dir>/checkpoint-last*")
    add("--overwrite_output_dir", action="store_true", help="start over even if output_dir holds a run of this stage")
    add("--no_length_buckets", dest="bucket_by_length", action="store_false",
        help="plain random batches instead of length-bucketed ones")
    add("--eval_batch_size", type=int)
    add("--export_dir", help="also save the best model as a Paddle inference model (paddle.jit.save) here")
    add("--amp", choices=["off", "float16", "bfloat16"],
        help="mixed precision on GPU (float16 uses loss scaling); ignored with a warning on CPU")


def add_intermediate_flags(parser: argparse.ArgumentParser, settings_class) -> None:
    """The intermediate-layer loss's flags, shared by task stage 1 and general distillation."""
    flag(parser, settings_class, "--layer_map",
         help="teacher layer (1-based) for each student layer, e.g. 3,6,9,12 (default: uniform)")
    flag(parser, settings_class, "--hidden_weight", type=float, help="weight of the hidden-state terms")
    flag(parser, settings_class, "--attention_weight", type=float, help="weight of the attention terms")
