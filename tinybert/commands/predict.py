r"""Classify sentences (or sentence pairs) with a model exported by export_model.py.

    python predict.py --model_dir ./deploy/sst2-onnx-int8 --input reviews.txt
    printf 'a gorgeous, witty film\nflat and lifeless\n' | python predict.py --model_dir DIR --input -

Input: one example per line; pair tasks (MRPC, QNLI, ...) take two tab-separated columns.
Output: one JSON line per input line, in input order: {"line", "label", "probabilities"} or,
for STS-B, {"line", "score"}.

Installed (``pip install .``), the same command is ``tinybert-predict``; ``python predict.py`` runs it
from a checkout.
"""
import argparse

from ..runtime import prepare_process

prepare_process()

from ..cli import flag, settings_from  # noqa: E402
from ..errors import run_cli  # noqa: E402
from ..settings import PredictSettings  # noqa: E402


def parse_args(argv=None) -> PredictSettings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = lambda *a, **k: flag(parser, PredictSettings, *a, **k)  # noqa: E731
    add("--model_dir", help="a directory written by export_model.py")
    add("--input", help="a text/TSV file, or - for standard input")
    add("--batch_size", type=int, help="inputs per runtime call (sorted by length)")
    add("--truncate", action="store_true",
                        help="cut inputs longer than the export's max_seq_length instead of refusing them")
    add("--device", help="cpu (default) or gpu (falls back to the CPU, saying so, when there is none)")
    add("--tensorrt", action="store_true",
                        help="Paddle exports on a GPU: run through TensorRT (needs its libraries; off by default)")
    add("--threads", type=int, help="CPU threads (default: all cores)")
    return settings_from(PredictSettings, parser.parse_args(argv))


@run_cli
def main(argv=None):
    from ..api import predict

    predict(parse_args(argv))

