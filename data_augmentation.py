"""Augment a GLUE task's training set for TinyBERT task distillation (docs/math.md#data-augmentation).

Writes <glue_dir>/<TASK>/train_aug.tsv in the format of train.tsv: each original example,
then up to N versions with words replaced by masked-LM predictions (single-WordPiece words)
or nearest GloVe words (others).

    python data_augmentation.py --pretrained_bert_model bert-base-uncased \
        --glove_embs glove.6B.300d.txt --glue_dir ./glue --task_name SST-2
    python data_augmentation.py --pretrained_bert_model none --glove_embs glove.6B.50d.txt \
        --glue_dir ./glue --task_name sst-2 --N 5     # offline: GloVe for every word
"""
import argparse

from tinybert.runtime import prepare_process

prepare_process()

from tinybert.errors import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pretrained_bert_model", default="bert-base-uncased",
                        help="BERT with its masked-LM head: PaddleNLP name or local directory; "
                             "'none' uses GloVe for every word")
    parser.add_argument("--glove_embs", default=None, help="GloVe text file (word v1 ... vd per line)")
    parser.add_argument("--glue_dir", default=None,
                        help="directory holding <TASK>/train.tsv (default: PaddleNLP's DATA_HOME/Glue)")
    parser.add_argument("--task_name", required=True, help="GLUE task, case-insensitive (e.g. SST-2, mnli)")
    parser.add_argument("--N", type=int, default=None,
                        help="samples per text column (default per task: configs/glue.json augment_n)")
    parser.add_argument("--M", type=int, default=15, help="candidates per word: top-K predictions or neighbours")
    parser.add_argument("--p", type=float, default=0.4, help="probability of replacing each candidate word")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--device", default="gpu", help="gpu (default, falls back to cpu without CUDA) or cpu")
    parser.add_argument("--batch_size", type=int, default=64,
                        help="masked sentences per forward pass (the output does not depend on it)")
    parser.add_argument("--glove_vocab_limit", type=int, default=100000,
                        help="search neighbours among the first V GloVe words (0: all)")
    parser.add_argument("--skip_bad_rows", action="store_true",
                        help="drop malformed TSV rows (counted and reported) instead of stopping")
    return parser.parse_args(argv)


@run_cli
def main(argv=None):
    from tinybert.augment import run

    run(parse_args(argv))


if __name__ == "__main__":
    main()
