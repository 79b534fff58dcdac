"""Convert all-MiniLM-L6-v2 (Hugging Face safetensors) into a PaddleNLP BERT checkpoint directory.

    python scripts/fetch_assets.py minilm
    python scripts/convert_minilm.py --output_dir demo_output/minilm --check

The output loads with ``BertModel.from_pretrained`` / ``BertForSequenceClassification.from_pretrained``
and as ``--model_name_or_path`` of the suite's scripts. ``--check`` compares the Paddle forward
with an independent numpy forward on real sentences and prints the largest absolute difference
(it fails above ``--tolerance``). Any Hugging Face ``BertModel`` directory in the same layout
(config.json, model.safetensors, vocab.txt) converts the same way.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

from tinybert.errors import UserError, run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=os.path.join(ROOT, "assets", "minilm"),
                        help="Hugging Face BERT directory (default: <repo>/assets/minilm from fetch_assets.py)")
    parser.add_argument("--output_dir", required=True, help="where the PaddleNLP checkpoint is written")
    parser.add_argument("--check", action="store_true",
                        help="compare with a numpy forward and print the max abs difference")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="--check fails if the difference exceeds this (default 1e-4)")
    return parser.parse_args(argv)


@run_cli
def main(argv=None):
    from tinybert.tools.convert_minilm import check, convert

    args = parse_args(argv)
    if not os.path.isdir(args.source):
        raise UserError(f"--source {args.source} is not a directory; run scripts/fetch_assets.py minilm first")
    summary = convert(args.source, args.output_dir)
    print(f"converted {args.source} ({summary['layers']} layers, hidden {summary['hidden']}, "
          f"{summary['parameters']:,} parameters) to {args.output_dir}")
    if args.check:
        diff = check(args.source, args.output_dir)
        print(f"check: max abs diff numpy vs Paddle: sequence output {diff['sequence']:.3g}, "
              f"pooled output {diff['pooled']:.3g} (tolerance {args.tolerance:g})")
        worst = max(diff.values())
        if not worst <= args.tolerance:  # also catches NaN
            raise UserError(f"the converted model differs from the numpy reference by {worst:.3g} > "
                            f"{args.tolerance:g}; the port is wrong, do not use {args.output_dir}")
    return summary


if __name__ == "__main__":
    main()
