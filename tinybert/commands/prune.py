r"""Prune the fine-tuned teacher to a smaller BERT while distilling from it (CoFi-style learned
masks; docs/math.md#pruning-while-distilling), then train the result with stage 2 as any student.

    python prune_distill.py --teacher_path $TEACHER_DIR --prune_to 3x192 --task_name SST-2 --use_aug \
        --max_seq_length 64 --batch_size 32 --learning_rate 1e-4 --num_train_epochs 5 \
        --logging_steps 50 --save_steps 100 --output_dir ./tmp/SST-2/prune --device gpu
    python task_distill.py --model_type bert --student_model_name_or_path ./tmp/SST-2/prune/best_pruned_model \
        --teacher_path $TEACHER_DIR --task_name SST-2 --use_aug --max_seq_length 64 --batch_size 32 \
        --learning_rate 2e-4 --num_train_epochs 3 --output_dir ./tmp/SST-2/pred --device gpu

--prune_to takes a shape, LAYERSxHIDDEN[xINTERMEDIATE] (heads are kept whole, so the hidden size
is a multiple of the teacher's head size; the FFN defaults to the teacher's ratio), or a share of
the teacher's encoder, params:F or flops:F. <output_dir>/best_pruned_model is an ordinary PaddleNLP
BERT classifier (config, weights, tokenizer, and pruning.json: what was kept), the best on the dev
set of the hard-masked models evaluated every --save_steps.

Installed (``pip install .``), the same command is ``tinybert-prune``; ``python prune_distill.py`` runs it
from a checkout.
"""
import argparse

from ..runtime import prepare_process

prepare_process()

from ..cli import add_data_flags, add_training_flags, flag, settings_from  # noqa: E402
from ..errors import run_cli  # noqa: E402
from ..settings import PruneSettings  # noqa: E402


def parse_args(argv=None) -> PruneSettings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = lambda *a, **k: flag(parser, PruneSettings, *a, **k)  # noqa: E731
    add("--teacher_path", help="directory of the fine-tuned BERT teacher: the model that is pruned and the one "
                               "it distils from")
    add("--teacher_model_type", help="bert (the only family the masked forward knows)")
    add("--prune_to", help="target: a shape LxH[xI] (e.g. 3x192) or a share of the teacher's encoder, "
                           "params:F or flops:F (e.g. flops:0.2)")
    add("--use_aug", action="store_true", help="train on <glue_dir>/<TASK>/train_aug.tsv (CLUE: train_aug.json)")
    add("--T", type=float, help="softmax temperature of the prediction-layer loss")
    add("--hidden_weight", type=float, help="weight of the hidden-state terms")
    add("--attention_weight", type=float, help="weight of the attention-score terms (0: hidden states only, "
                                                "as CoFi)")
    add("--prediction_weight", type=float, help="weight of the prediction-layer term")
    add("--gate_learning_rate", type=float, help="learning rate of the gates' log_alpha")
    add("--gate_init", choices=["importance", "uniform"],
        help="where the gates start: ranked by the one-shot cut's importance on the training data, or all equal")
    add("--importance_examples", type=int, help="training examples (a seeded sample) importance is measured on")
    add("--target_warmup", type=float,
        help="share of the steps over which the target moves from the teacher's size to the final one")
    add_data_flags(parser, PruneSettings)
    add_training_flags(parser, PruneSettings)
    return settings_from(PruneSettings, parser.parse_args(argv))


@run_cli
def main(argv=None):
    from ..api import prune

    prune(parse_args(argv))

