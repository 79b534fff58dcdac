"""Build a TinyBERT student from a BERT checkpoint: a subset of its layers, optionally narrower.

    python scripts/build_student.py --source demo_output/minilm --layers 1,3,5 --output_dir demo_output/student
    python scripts/build_student.py --source ./tmp/SST-2/teacher/best_model --num_layers 4 --output_dir ./student-4l
    python scripts/build_student.py --source ./tmp/SST-2/teacher/best_model --num_layers 3 --hidden_size 192 \
        --task_name SST-2 --glue_dir ./glue --max_seq_length 64 --device cpu --output_dir ./student-3x192

The student copies the embeddings, the chosen encoder layers (renumbered 0..M-1) and the
pooler; it has per-layer projections (fit_denses) initialised to the identity, and is saved
with the source's tokenizer as a TinyBertForSequenceClassification checkpoint, usable as
--student_model_name_or_path of task distillation (or fine-tuned directly as a baseline).
--layers takes 0-based source layers; --num_layers M keeps source layer floor(j*N/M) (1-based)
as student layer j, the layer it learns under the uniform layer map (6 -> 3 keeps 1,3,5).

--hidden_size / --intermediate_size make the student narrower (heads stay the source's, so the
hidden size must be a multiple of them). The dimensions kept are the ones the *fine-tuned*
source needs most on the task's training data (--task_name, --glue_dir, --max_seq_length,
--device; criterion in docs/math.md); every weight is cut to them and the projections start as
the selection (student dim i -> the source dim it came from). The criterion and the kept
dimensions are recorded in <output_dir>/student_source.json.
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
    parser.add_argument("--seed", type=int, default=42,
                        help="seed of the fresh classifier's initialisation and of the importance sample")
    width = parser.add_argument_group("width (a narrower student, dimensions chosen by importance)")
    width.add_argument("--hidden_size", type=int, default=None,
                       help="student hidden size, a multiple of the source's heads (default: the source's)")
    width.add_argument("--intermediate_size", type=int, default=None,
                       help="student FFN size (default: the source's, scaled like --hidden_size)")
    width.add_argument("--task_name", default=None, help="the GLUE task whose training data ranks the dimensions")
    width.add_argument("--glue_dir", default=None, help="directory holding <TASK>/train.tsv")
    width.add_argument("--max_seq_length", type=int, default=128)
    width.add_argument("--device", default="cpu", help="cpu or gpu, for measuring importance")
    width.add_argument("--importance_examples", type=int, default=1024,
                       help="training examples (a seeded sample) importance is measured on")
    width.add_argument("--skip_bad_rows", action="store_true", help="skip malformed training rows")
    return parser.parse_args(argv)


@run_cli
def main(argv=None):
    from tinybert.errors import require
    from tinybert.distillation.importance import ImportanceData
    from tinybert.tools.student_builder import build_student, parse_layers

    args = parse_args(argv)
    layers = parse_layers(args.layers) if args.layers is not None else None
    require(args.importance_examples >= 1, f"--importance_examples {args.importance_examples}: give at least 1")
    data = None if args.task_name is None else ImportanceData(
        task_name=args.task_name, glue_dir=args.glue_dir, max_seq_length=args.max_seq_length, device=args.device,
        examples=args.importance_examples, skip_bad_rows=args.skip_bad_rows, seed=args.seed)
    record = build_student(args.source, args.output_dir, layers=layers, num_layers=args.num_layers,
                           keep_classifier=args.keep_classifier, seed=args.seed, hidden_size=args.hidden_size,
                           intermediate_size=args.intermediate_size, data=data)
    print(f"student with {len(record['kept_layers_0_based'])} of {record['source_layers']} layers "
          f"(0-based source layers {','.join(map(str, record['kept_layers_0_based']))}), hidden "
          f"{record['hidden_size']} of {record['source_hidden_size']}, intermediate {record['intermediate_size']} "
          f"of {record['source_intermediate_size']} ({record['criterion']}), {record['parameters']:,} parameters, "
          f"written to {args.output_dir}")
    return record


if __name__ == "__main__":
    main()
