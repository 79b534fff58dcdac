r"""Export a classifier checkpoint of this suite for serving, and check it on the dev set.

    python export_model.py --model_dir ./tmp/SST-2/pred/best_model --output_dir ./deploy/sst2-onnx-int8 \
        --format onnx --precision int8 --task_name SST-2 --glue_dir ~/.paddlenlp/datasets/Glue/ --device cpu

Writes the model (Paddle inference graph or ONNX), the tokenizer files and manifest.json;
serve it with predict.py or tinybert.serving.inference.Predictor. See docs/deploying.md.

Installed (``pip install .``), the same command is ``tinybert-export``; ``python export_model.py`` runs it
from a checkout.
"""
import argparse

from ..runtime import prepare_process

prepare_process()

from ..cli import flag, settings_from  # noqa: E402
from ..errors import run_cli  # noqa: E402
from ..settings import ExportSettings  # noqa: E402


def parse_args(argv=None) -> ExportSettings:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = lambda *a, **k: flag(parser, ExportSettings, *a, **k)  # noqa: E731
    add("--model_dir",
                        help="a classifier checkpoint of this suite (teacher, distilled student, baseline best_model/)")
    add("--output_dir", help="the export directory (replaced atomically)")
    add("--format", choices=["paddle", "onnx"],
                        help="paddle: Paddle Inference graph; onnx: ONNX model for ONNX Runtime")
    add("--precision", choices=["float32", "int8"],
                        help="int8: ONNX Runtime dynamic quantization (with --format onnx)")
    add("--task_name", help="GLUE task the checkpoint was trained on")
    add("--glue_dir", help="directory holding <TASK>/dev.tsv (for the check)")
    add("--max_seq_length", type=int,
                        help="longest input the export accepts (recorded in the manifest)")
    add("--device", help="cpu (default) or gpu (the check runs there)")
    add("--calibration_examples", type=int,
                        help="training examples to calibrate Paddle's static INT8 quantization "
                             "(--format paddle --precision int8, refused on paddle 3.3.1, see docs/deploying.md)")
    add("--cpu_kernels", choices=["mkl", "onednn"],
                        help="Paddle Inference on CPU: Paddle's MKL kernels (exact, default) or oneDNN (faster at "
                             "large batches, slow on new shapes; falls back to mkl if it fails the check)")
    add("--no_per_channel", dest="per_channel", action="store_false",
                        help="INT8: one scale per weight matrix instead of one per output channel")
    add("--tolerance", type=float,
                        help="largest float32 dev-logit difference from the dygraph model accepted "
                             "(default: 1e-4 on the CPU, 1e-2 on a GPU; see docs/deploying.md)")
    add("--tensorrt", action="store_true",
                        help="check the Paddle export with TensorRT on the GPU (needs its libraries; off by default)")
    add("--eval_batch_size", type=int)
    add("--skip_bad_rows", action="store_true", help="drop malformed dev rows instead of stopping")
    return settings_from(ExportSettings, parser.parse_args(argv))


@run_cli
def main(argv=None):
    from ..api import export

    return export(parse_args(argv))

