"""TinyBERT task distillation, stage 1 (--intermediate_distill) then stage 2 (flags of
PaddleNLP's model_zoo/tinybert/task_distill.py).

    python task_distill.py --model_type tinybert --student_model_name_or_path tinybert-6l-768d-v2 \
        --task_name SST-2 --intermediate_distill --max_seq_length 64 --batch_size 32 --T 1 \
        --teacher_model_type bert --teacher_path $TEACHER_DIR --learning_rate 5e-5 \
        --num_train_epochs 20 --logging_steps 10 --save_steps 10 --output_dir ./tmp/SST-2/ --device gpu
    python task_distill.py --model_type tinybert --student_model_name_or_path ./tmp/SST-2/best_inter_model \
        --task_name SST-2 --max_seq_length 64 --batch_size 32 --T 1 --teacher_model_type bert \
        --teacher_path $TEACHER_DIR --learning_rate 3e-5 --num_train_epochs 3 --logging_steps 10 \
        --save_steps 10 --output_dir ./tmp/SST-2/ --device gpu
"""
import argparse

from tinybert.runtime import prepare_process

prepare_process()

from tinybert.cli import add_data_flags, add_intermediate_flags, add_training_flags  # noqa: E402
from tinybert.errors import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_type", default="tinybert", help="student type: tinybert")
    parser.add_argument("--student_model_name_or_path", default="tinybert-6l-768d-v2",
                        help="PaddleNLP TinyBERT name or a local directory (stage 2: stage 1's best_inter_model)")
    parser.add_argument("--teacher_model_type", default="bert")
    parser.add_argument("--teacher_path", required=True, help="directory of the fine-tuned teacher")
    parser.add_argument("--intermediate_distill", action="store_true",
                        help="stage 1: distil embeddings, hidden states and attention scores")
    parser.add_argument("--T", type=float, default=1.0, help="softmax temperature of the stage-2 soft targets")
    parser.add_argument("--use_aug", action="store_true", help="train on <glue_dir>/<TASK>/train_aug.tsv")
    add_intermediate_flags(parser)
    parser.add_argument("--projection", choices=["auto", "per_layer", "shared"], default="auto",
                        help="student->teacher projections: per-layer fit_denses (v2) or one shared fit_dense; "
                             "auto = what the student checkpoint provides")
    add_data_flags(parser)
    add_training_flags(parser, learning_rate=5e-5, epochs=3)
    return parser.parse_args(argv)


@run_cli
def main(argv=None):
    from tinybert.distill import run

    run(parse_args(argv))


if __name__ == "__main__":
    main()
