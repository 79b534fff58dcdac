"""Fine-tune a BERT teacher on a GLUE task (flags of PaddleNLP's run_glue.py).

    python finetune_teacher.py --model_type bert --model_name_or_path bert-base-uncased \
        --task_name SST-2 --max_seq_length 128 --batch_size 32 --learning_rate 2e-5 \
        --num_train_epochs 3 --logging_steps 1 --save_steps 500 --output_dir ./tmp/SST-2/ --device gpu
"""
import argparse

from tinybert.runtime import prepare_process

prepare_process()

from tinybert.cli import add_data_flags, add_training_flags  # noqa: E402
from tinybert.errors import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_type", default="bert", help="bert (or tinybert)")
    parser.add_argument("--model_name_or_path", default="bert-base-uncased",
                        help="PaddleNLP model name (downloads when online) or a local directory")
    add_data_flags(parser)
    add_training_flags(parser, learning_rate=2e-5, epochs=3)
    return parser.parse_args(argv)


@run_cli
def main(argv=None):
    from tinybert.finetune import run

    run(parse_args(argv))


if __name__ == "__main__":
    main()
