r"""Augment a GLUE task's training set for TinyBERT task distillation (docs/math.md#data-augmentation).

Writes <glue_dir>/<TASK>/train_aug.tsv in the format of train.tsv: each original example,
then up to N versions with words replaced by masked-LM predictions (single-WordPiece words)
or nearest GloVe words (others). Chinese works with a Chinese masked LM (bert-base-chinese):
each character is a word, or each space-separated word with --segmented.

    python data_augmentation.py --pretrained_bert_model bert-base-uncased \
        --glove_embs glove.6B.300d.txt --glue_dir ./glue --task_name SST-2
    python data_augmentation.py --pretrained_bert_model none --glove_embs glove.6B.50d.txt \
        --glue_dir ./glue --task_name sst-2 --N 5     # offline: GloVe for every word
    python data_augmentation.py --pretrained_bert_model bert-base-chinese --glue_dir ./zh --task_name SST-2
    python -m paddle.distributed.launch --nproc_per_node 2 data_augmentation.py ...  # 2 processes

The file is written chunk by chunk (--chunk_rows) into train_aug.tsv.parts/; rerunning an
interrupted command with the same flags continues where it stopped, and the result is the same
bytes as an uninterrupted run.

Installed (``pip install .``), the same command is ``tinybert-augment``; ``python data_augmentation.py`` runs it
from a checkout.
"""
import argparse

from ..runtime import prepare_process

prepare_process()

from ..cli import flag, settings_from  # noqa: E402
from ..errors import run_cli  # noqa: E402
from ..settings import AugmentSettings  # noqa: E402


def parse_args(argv=None) -> AugmentSettings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = lambda *a, **k: flag(parser, AugmentSettings, *a, **k)  # noqa: E731
    add("--pretrained_bert_model",
                        help="BERT with its masked-LM head: PaddleNLP name or local directory; "
                             "'none' uses GloVe for every word")
    add("--glove_embs", help="GloVe-format word-vector file (word v1 ... vd per line), e.g. glove.6B.300d.txt or "
                             "Chinese word vectors; without it, words of several WordPieces stay unchanged")
    add("--glue_dir",
                        help="directory holding <TASK>/train.tsv (default: PaddleNLP's DATA_HOME/Glue)")
    add("--task_name", help="GLUE task, case-insensitive (e.g. SST-2, mnli)")
    add("--N", type=int,
                        help="samples per text column (default per task: tinybert/data/glue.json augment_n)")
    add("--M", type=int, help="candidates per word: top-K predictions or neighbours")
    add("--p", type=float, help="probability of replacing each candidate word")
    add("--seed", type=int)
    add("--device", help="gpu (default, falls back to cpu without CUDA) or cpu")
    add("--batch_size", type=int,
                        help="masked sentences per forward pass (the output does not depend on it)")
    add("--glove_vocab_limit", type=int,
                        help="search neighbours among the first V GloVe words (0: all)")
    add("--skip_bad_rows", action="store_true",
                        help="drop malformed TSV rows (counted and reported) instead of stopping")
    add("--chunk_rows", type=int,
        help="input rows per part file under train_aug.tsv.parts/: an interrupted run rerun with the same "
             "flags redoes at most one chunk per process (the output does not depend on it)")
    add("--segmented", action="store_true",
        help="the text is already segmented into words separated by spaces (Chinese): a multi-character "
             "word is replaced as a whole, from --glove_embs; without the flag every CJK character is a word")
    return settings_from(AugmentSettings, parser.parse_args(argv))


@run_cli
def main(argv=None):
    from ..api import augment

    augment(parse_args(argv))

