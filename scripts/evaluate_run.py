"""Final evaluation of a run_task.sh run: the teacher and the distilled student on the dev set.

    python scripts/evaluate_run.py --task_name SST-2 --glue_dir ./glue --max_seq_length 64 \
        --teacher_dir ./tmp/SST-2/teacher/best_model --student_dir ./tmp/SST-2/pred/best_model \
        --output_dir ./tmp/SST-2 --setting batch_size=32 --setting inter_lr=5e-5

Writes ``<output_dir>/results.json`` (metrics of both models, parameter counts, the settings
given with ``--setting key=value``, and the stage timings of ``--stages_log``) and
``<output_dir>/results.md`` (the run's row of the results table, with its header).
Flags it does not know are ignored, so run_task.sh can pass the extra flags meant for every
stage (``--max_seq_length``, ``--skip_bad_rows`` and ``--eval_batch_size`` are honoured). Each
model is evaluated at the length it was trained with (``--teacher_max_seq_length`` for the teacher).
"""
import argparse
import datetime
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

from tinybert.errors import UserError, run_cli  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("--task_name", required=True)
    parser.add_argument("--glue_dir", default=None)
    parser.add_argument("--max_seq_length", type=int, default=128, help="the student's length")
    parser.add_argument("--teacher_max_seq_length", type=int, default=None,
                        help="the teacher's length (default: --max_seq_length); each model is best judged "
                             "at the length it was trained with")
    parser.add_argument("--eval_batch_size", type=int, default=64)
    parser.add_argument("--skip_bad_rows", action="store_true")
    parser.add_argument("--device", default="gpu")
    parser.add_argument("--teacher_dir", required=True, help="the fine-tuned teacher (best_model/)")
    parser.add_argument("--student_dir", required=True, help="the distilled student (stage 2's best_model/)")
    parser.add_argument("--output_dir", required=True, help="where results.json and results.md go")
    parser.add_argument("--run_name", default=None, help="the row's name (default: output_dir's name)")
    parser.add_argument("--stages_log", default=None, help="TSV of stage<TAB>ran|skipped|resumed<TAB>seconds")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the run to record (repeatable)")
    args, ignored = parser.parse_known_args(argv)
    args.ignored = ignored
    return args


def parse_settings(pairs):
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--setting {pair}: expected KEY=VALUE")
        settings[key] = value
    return settings


def read_stages(path):
    """Latest record of each stage; a skipped stage keeps the duration of its last real run."""
    stages = {}
    if not path or not os.path.isfile(path):
        return stages
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3:
                continue
            name, status, seconds = fields[:3]
            previous = stages.get(name, {})
            entry = {"status": status, "seconds": previous.get("seconds")}
            if status != "skipped":
                try:
                    entry["seconds"] = float(seconds)
                except ValueError:
                    pass
            stages[name] = entry
    return stages


@run_cli
def main(argv=None):
    from tinybert.data.tasks import get_task
    from tinybert.report import (
        RESULT_COLUMNS,
        evaluate_checkpoint,
        load_dev,
        markdown_table,
        ratio,
        result_row,
        write_json,
        write_text,
    )
    from tinybert.runtime import select_device

    args = parse_args(argv)
    spec = get_task(args.task_name)
    settings = parse_settings(args.setting)
    for flag, name in ((args.teacher_dir, "--teacher_dir"), (args.student_dir, "--student_dir")):
        if not os.path.isdir(flag):
            raise UserError(f"{name} {flag} does not exist; run the training stages first")
    select_device(args.device)
    dev_sets = load_dev(spec, args.glue_dir, args.skip_bad_rows)
    teacher = evaluate_checkpoint("teacher", args.teacher_dir, spec, dev_sets,
                                  args.teacher_max_seq_length or args.max_seq_length, args.eval_batch_size)
    student = evaluate_checkpoint("student", args.student_dir, spec, dev_sets, args.max_seq_length,
                                  args.eval_batch_size)
    record = {
        "run": args.run_name or os.path.basename(os.path.dirname(os.path.abspath(args.output_dir))),
        "task": spec.name,
        "teacher": teacher.as_dict(),
        "student": student.as_dict(),
        "student_vs_teacher": ratio(student.metrics["score"], teacher.metrics["score"]),
        "settings": settings,
        "stages": read_stages(args.stages_log),
        "dev_examples": sum(len(d) for d in dev_sets),
        "max_seq_length": {"teacher": args.teacher_max_seq_length or args.max_seq_length,
                           "student": args.max_seq_length},
        "evaluated_at": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    write_json(os.path.join(args.output_dir, "results.json"), record)
    write_text(os.path.join(args.output_dir, "results.md"), markdown_table(RESULT_COLUMNS, [result_row(record)]))
    share = record["student_vs_teacher"]
    print(f"{spec.name} dev: teacher {teacher.metrics['score']:.4f} ({teacher.parameters:,} parameters), "
          f"student {student.metrics['score']:.4f} ({student.parameters:,} parameters)"
          + (f", {100 * share:.1f}% of the teacher" if share is not None else "")
          + f"; written to {os.path.join(args.output_dir, 'results.json')} and results.md")
    return record


if __name__ == "__main__":
    main()
