"""Build a TinyBERT student from a BERT checkpoint by keeping a subset of its layers.

    python scripts/build_student.py --source demo_output/minilm --layers 1,3,5 --output_dir demo_output/student
    python scripts/build_student.py --source ./tmp/SST-2/best_model --num_layers 4 --output_dir ./student-4l

The student copies the embeddings, the chosen encoder layers (renumbered 0..M-1) and the
pooler; it has per-layer projections (fit_denses) initialised to the identity, and is saved
with the source's tokenizer as a TinyBertForSequenceClassification checkpoint, usable as
--student_model_name_or_path of task distillation (or fine-tuned directly as a baseline).
--layers takes 0-based source layers; --num_layers M keeps source layer floor(j*N/M) (1-based)
as student layer j, the layer it learns under the uniform layer map (6 -> 3 keeps 1,3,5).
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

from tinybert.errors import run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True,
                        help="BERT checkpoint directory (config.json, model_state.pdparams, vocab.txt)")
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--layers", help="0-based source layers to keep, increasing, e.g. 1,3,5")
    choice.add_argument("--num_layers", type=int, help="keep M evenly spaced layers (the uniform layer map's)")
    parser.add_argument("--output_dir", required=True, help="where the student checkpoint is written")
    parser.add_argument("--keep_classifier", action="store_true",
                        help="copy the source's classifier (e.g. of a fine-tuned teacher) instead of a fresh one")
    parser.add_argument("--seed", type=int, default=42, help="seed of the fresh classifier's initialisation")
    return parser.parse_args(argv)


@run_cli
def main(argv=None):
    from tinybert.tools.student_builder import build_student, parse_layers

    args = parse_args(argv)
    layers = parse_layers(args.layers) if args.layers is not None else None
    record = build_student(args.source, args.output_dir, layers=layers, num_layers=args.num_layers,
                           keep_classifier=args.keep_classifier, seed=args.seed)
    print(f"student with {len(record['kept_layers_0_based'])} of {record['source_layers']} layers "
          f"(0-based source layers {','.join(map(str, record['kept_layers_0_based']))}), hidden "
          f"{record['hidden_size']}, {record['parameters']:,} parameters, written to {args.output_dir}")
    return record


if __name__ == "__main__":
    main()
