"""Export a classifier checkpoint of this suite for serving, and check it on the dev set.

    python export_model.py --model_dir ./tmp/SST-2/best_model --output_dir ./deploy/sst2-onnx-int8 \
        --format onnx --precision int8 --task_name SST-2 --glue_dir ~/.paddlenlp/datasets/Glue/ --device cpu

Writes the model (Paddle inference graph or ONNX), the tokenizer files and manifest.json;
serve it with predict.py or tinybert.inference.Predictor. See docs/deploying.md.
"""
import argparse

from tinybert.runtime import prepare_process

prepare_process()

from tinybert.errors import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True,
                        help="a classifier checkpoint of this suite (teacher, distilled student, baseline best_model/)")
    parser.add_argument("--output_dir", required=True, help="the export directory (replaced atomically)")
    parser.add_argument("--format", default="paddle", choices=["paddle", "onnx"],
                        help="paddle: Paddle Inference graph; onnx: ONNX model for ONNX Runtime")
    parser.add_argument("--precision", default="float32", choices=["float32", "int8"],
                        help="int8: ONNX Runtime dynamic quantization (with --format onnx)")
    parser.add_argument("--task_name", required=True, help="GLUE task the checkpoint was trained on")
    parser.add_argument("--glue_dir", default=None, help="directory holding <TASK>/dev.tsv (for the check)")
    parser.add_argument("--max_seq_length", type=int, default=128,
                        help="longest input the export accepts (recorded in the manifest)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or gpu (the check runs there)")
    parser.add_argument("--calibration_examples", type=int, default=300,
                        help="training examples to calibrate Paddle's static INT8 quantization "
                             "(--format paddle --precision int8, refused on paddle 3.3.1, see docs/deploying.md)")
    parser.add_argument("--cpu_kernels", default="mkl", choices=["mkl", "onednn"],
                        help="Paddle Inference on CPU: Paddle's MKL kernels (exact, default) or oneDNN (faster at "
                             "large batches, slow on new shapes; falls back to mkl if it fails the check)")
    parser.add_argument("--no_per_channel", dest="per_channel", action="store_false",
                        help="INT8: one scale per weight matrix instead of one per output channel")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest float32 dev-logit difference from the dygraph model accepted")
    parser.add_argument("--eval_batch_size", type=int, default=32)
    parser.add_argument("--skip_bad_rows", action="store_true", help="drop malformed dev rows instead of stopping")
    return parser.parse_args(argv)


@run_cli
def main(argv=None):
    from tinybert.deploy import run

    return run(parse_args(argv))


if __name__ == "__main__":
    main()
