r"""TinyBERT general distillation: a small student of any shape learns a BERT teacher on plain text.

    python general_distill.py --teacher_model_type bert --teacher_path bert-base-uncased \
        --student_num_layers 4 --student_hidden_size 312 --student_intermediate_size 1200 \
        --corpus ./corpus/ --max_seq_length 128 --batch_size 32 --learning_rate 1e-4 \
        --num_train_epochs 3 --save_steps 1000 --output_dir ./general --device gpu

The corpus is one or more text files or directories (``.gz`` too): one sentence or paragraph
per line, a blank line between documents. The student lands in <output_dir>/general_model/,
ready for task_distill.py --student_model_name_or_path.

Installed (``pip install .``), the same command is ``tinybert-general``; ``python general_distill.py`` runs it
from a checkout.
"""
import argparse

from ..runtime import prepare_process

prepare_process()

from ..cli import add_intermediate_flags, add_training_flags, flag, settings_from  # noqa: E402
from ..errors import run_cli  # noqa: E402
from ..settings import GeneralSettings  # noqa: E402


def parse_args(argv=None) -> GeneralSettings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = lambda *a, **k: flag(parser, GeneralSettings, *a, **k)  # noqa: E731
    add("--teacher_model_type")
    add("--teacher_path", help="any BERT encoder: PaddleNLP name or directory (no classifier or MLM head needed)")
    add("--student_model_name_or_path",
        help="start from this TinyBERT checkpoint instead of a fresh student of the shape below")
    add("--student_num_layers", type=int, help="default 4 (TinyBERT4)")
    add("--student_hidden_size", type=int, help="default 312")
    add("--student_intermediate_size", type=int, help="default 1200")
    add("--student_num_heads", type=int, help="default and required: the teacher's")
    add("--corpus", nargs="+",
        help="text files or directories (.gz accepted): one sentence per line, blank line between documents")
    add("--max_seq_length", type=int, help="sequences are packed up to this many tokens")
    add_intermediate_flags(parser, GeneralSettings)
    add("--data_worker", choices=["thread", "process"],
        help="where the corpus is tokenized ahead of the model (default: a thread)")
    add_training_flags(parser, GeneralSettings)
    return settings_from(GeneralSettings, parser.parse_args(argv))


@run_cli
def main(argv=None):
    from ..api import general_distill

    general_distill(parse_args(argv))

