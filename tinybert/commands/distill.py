r"""TinyBERT task distillation, stage 1 (--intermediate_distill) then stage 2 (flags of
PaddleNLP's model_zoo/tinybert/task_distill.py).

    python task_distill.py --model_type tinybert --student_model_name_or_path tinybert-6l-768d-v2 \
        --task_name SST-2 --intermediate_distill --max_seq_length 64 --batch_size 32 --T 1 \
        --teacher_model_type bert --teacher_path $TEACHER_DIR --learning_rate 5e-5 \
        --num_train_epochs 20 --logging_steps 10 --save_steps 10 --output_dir ./tmp/SST-2/inter --device gpu
    python task_distill.py --model_type tinybert --student_model_name_or_path ./tmp/SST-2/inter/best_inter_model \
        --task_name SST-2 --max_seq_length 64 --batch_size 32 --T 1 --teacher_model_type bert \
        --teacher_path $TEACHER_DIR --learning_rate 3e-5 --num_train_epochs 3 --logging_steps 10 \
        --save_steps 10 --output_dir ./tmp/SST-2/pred --device gpu

with TEACHER_DIR=./tmp/SST-2/teacher/best_model (finetune_teacher.py). An output that would
replace what the run reads is refused before anything loads (e.g. stage 2 with --output_dir
./tmp/SST-2/teacher, whose best_model/ is the teacher).

Installed (``pip install .``), the same command is ``tinybert-distill``; ``python task_distill.py`` runs it
from a checkout.
"""
import argparse

from ..runtime import prepare_process

prepare_process()

from ..cli import (  # noqa: E402
    add_data_flags,
    add_intermediate_flags,
    add_training_flags,
    flag,
    settings_from,
)
from ..errors import run_cli  # noqa: E402
from ..settings import DistillSettings  # noqa: E402


def parse_args(argv=None) -> DistillSettings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = lambda *a, **k: flag(parser, DistillSettings, *a, **k)  # noqa: E731
    add("--model_type", help="student type: tinybert, ernie or bert")
    add("--student_model_name_or_path",
        help="PaddleNLP TinyBERT name or a local directory (stage 2: stage 1's best_inter_model)")
    add("--teacher_model_type", help="bert or ernie (the teacher's PaddleNLP family)")
    add("--teacher_path", help="directory of the fine-tuned teacher")
    add("--intermediate_distill", action="store_true", help="stage 1: distil embeddings, hidden states and attention scores")
    add("--T", type=float, help="softmax temperature of the stage-2 soft targets")
    add("--use_aug", action="store_true", help="train on <glue_dir>/<TASK>/train_aug.tsv (CLUE: train_aug.json)")
    add_intermediate_flags(parser, DistillSettings)
    add("--projection", choices=["auto", "per_layer", "shared"],
        help="student->teacher projections: per-layer fit_denses (v2) or one shared fit_dense; "
             "auto = what the student checkpoint provides")
    add_data_flags(parser, DistillSettings)
    add_training_flags(parser, DistillSettings)
    return settings_from(DistillSettings, parser.parse_args(argv))


@run_cli
def main(argv=None):
    from ..api import distill

    distill(parse_args(argv))

