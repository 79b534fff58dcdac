r"""Fine-tune a BERT or ERNIE teacher on a GLUE or CLUE task (flags of PaddleNLP's run_glue.py).

    python finetune_teacher.py --model_type bert --model_name_or_path bert-base-uncased \
        --task_name SST-2 --max_seq_length 128 --batch_size 32 --learning_rate 2e-5 \
        --num_train_epochs 3 --logging_steps 1 --save_steps 500 --output_dir ./tmp/SST-2/teacher --device gpu

Installed (``pip install .``), the same command is ``tinybert-finetune``; ``python finetune_teacher.py`` runs it
from a checkout.
"""
import argparse

from ..runtime import prepare_process

prepare_process()

from ..cli import add_data_flags, add_training_flags, flag, settings_from  # noqa: E402
from ..errors import run_cli  # noqa: E402
from ..settings import FinetuneSettings  # noqa: E402


def parse_args(argv=None) -> FinetuneSettings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    flag(parser, FinetuneSettings, "--model_type", help="bert or ernie (or tinybert)")
    flag(parser, FinetuneSettings, "--model_name_or_path",
         help="PaddleNLP model name (downloads when online) or a local directory")
    add_data_flags(parser, FinetuneSettings)
    add_training_flags(parser, FinetuneSettings)
    return settings_from(FinetuneSettings, parser.parse_args(argv))


@run_cli
def main(argv=None):
    from ..api import finetune_teacher

    finetune_teacher(parse_args(argv))

