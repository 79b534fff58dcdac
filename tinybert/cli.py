"""Argument groups shared by the entry points (flag names follow PaddleNLP's scripts)."""
from __future__ import annotations

import argparse


def add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task_name", required=True, help="GLUE task, case-insensitive (e.g. SST-2, sst-2, mnli)")
    parser.add_argument("--glue_dir", default=None,
                        help="directory holding <TASK>/train.tsv etc. (default: PaddleNLP's DATA_HOME/Glue)")
    parser.add_argument("--max_seq_length", type=int, default=128, help="longer inputs are truncated")
    parser.add_argument("--skip_bad_rows", action="store_true",
                        help="drop malformed TSV rows (counted and reported) instead of stopping")


def add_training_flags(parser: argparse.ArgumentParser, learning_rate: float, epochs: float) -> None:
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=learning_rate)
    parser.add_argument("--num_train_epochs", type=float, default=epochs)
    parser.add_argument("--max_steps", type=int, default=-1, help="if > 0, overrides --num_train_epochs")
    parser.add_argument("--warmup_proportion", type=float, default=0.1)
    parser.add_argument("--weight_decay", type=float, default=0.0)
    parser.add_argument("--logging_steps", type=int, default=100)
    parser.add_argument("--save_steps", type=int, default=100, help="evaluate and checkpoint every N steps")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="gpu", help="gpu (default, falls back to cpu without CUDA) or cpu")
    parser.add_argument("--resume", action="store_true", help="continue from <output_dir>/checkpoint-last*")
    parser.add_argument("--overwrite_output_dir", action="store_true",
                        help="start over even if output_dir holds a run of this stage")
    parser.add_argument("--no_length_buckets", dest="bucket_by_length", action="store_false",
                        help="plain random batches instead of length-bucketed ones")
    parser.add_argument("--eval_batch_size", type=int, default=64)
    parser.add_argument("--export_dir", default=None,
                        help="also save the best model as a Paddle inference model (paddle.jit.save) here")
    parser.add_argument("--amp", default="off", choices=["off", "float16", "bfloat16"],
                        help="mixed precision on GPU (float16 uses loss scaling); ignored with a warning on CPU")


def add_intermediate_flags(parser: argparse.ArgumentParser) -> None:
    """The intermediate-layer loss's flags, shared by task stage 1 and general distillation."""
    parser.add_argument("--layer_map", default=None,
                        help="teacher layer (1-based) for each student layer, e.g. 3,6,9,12 (default: uniform)")
    parser.add_argument("--hidden_weight", type=float, default=1.0, help="weight of the hidden-state terms")
    parser.add_argument("--attention_weight", type=float, default=1.0, help="weight of the attention terms")
