"""Classify sentences (or sentence pairs) with a model exported by export_model.py.

    python predict.py --model_dir ./deploy/sst2-onnx-int8 --input reviews.txt
    printf 'a gorgeous, witty film\nflat and lifeless\n' | python predict.py --model_dir DIR --input -

Input: one example per line; pair tasks (MRPC, QNLI, ...) take two tab-separated columns.
Output: one JSON line per input line, in input order: {"line", "label", "probabilities"} or,
for STS-B, {"line", "score"}.
"""
import argparse

from tinybert.runtime import prepare_process

prepare_process()

from tinybert.errors import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a directory written by export_model.py")
    parser.add_argument("--input", required=True, help="a text/TSV file, or - for standard input")
    parser.add_argument("--batch_size", type=int, default=32, help="inputs per runtime call (sorted by length)")
    parser.add_argument("--truncate", action="store_true",
                        help="cut inputs longer than the export's max_seq_length instead of refusing them")
    parser.add_argument("--device", default="cpu", help="cpu (default) or gpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    return parser.parse_args(argv)


@run_cli
def main(argv=None):
    from tinybert.inference import run_cli_predict

    run_cli_predict(parse_args(argv))


if __name__ == "__main__":
    main()
