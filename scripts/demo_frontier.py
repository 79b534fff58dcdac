"""The speed/accuracy frontier of narrow students, measured on the demo's model and data.

    bash scripts/demo.sh                  # first: the task, the augmented set, the fine-tuned teacher
    python scripts/demo_frontier.py       # then this (about three hours on two quiet CPU cores)

For each shape (``--shapes 3x192,2x192,2x96``: layers x hidden[x intermediate], at most the
teacher's; the hidden size must suit both cuts: a multiple of the teacher's 12 heads for the
importance cut, which keeps every head, and of its head size 32 for pruning, which keeps whole
heads: 96, 192 or 288 under MiniLM), three arms (``--arms``):

 1. "importance": a student cut from the fine-tuned teacher, keeping its most important dimensions
    on the training set (scripts/build_student.py --hidden_size ...); "random": the same shape,
    randomly initialised (same seed); both through task-distillation stage 1 then stage 2 with the
    recipe for cut students: one epoch of stage 1 and three of stage 2 on the augmented set, the
    demo's learning rates and temperature (``--inter_epochs 1 --pred_epochs 3``);
 2. "pruned": the teacher pruned to the shape while distilling from it (prune_distill.py
    --prune_to, five epochs on the augmented set, ``--prune_epochs``: learned masks, docs/math.md),
    then the same stage 2: 8 epochs of steps against the importance arm's 4. Its training steps
    (pruning + stage 2) are held to at most twice the importance arm's (stage 1 + stage 2); the
    script refuses a recipe that breaks that. The default uses that whole budget: pruning gains
    most from its length (docs/benchmarks.md#narrow-students);
 3. every model and the teacher exported to ONNX Runtime float32 and INT8 (export_model.py's
    pipeline, each export checked on the dev set);
 4. dev accuracy, parameters and ms/example at batch 1 and 32 in Paddle dygraph and in each
    runtime (tinybert.serving.latency), with the speed-up against the teacher in the same runtime
    and against the teacher in dygraph: one table (<output_dir>/results.md, results.json) and the
    frontier as a picture (<output_dir>/frontier.png; skipped with a note without matplotlib).

Steps whose output exists from the same command are reused (scripts/demo.py's Pipeline).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

import demo  # noqa: E402  (the demo's pipeline, settings, latency and tables)

from tinybert.errors import UserError, require, run_cli  # noqa: E402

TASK = demo.TASK
RUNTIMES = (("dygraph", None, None, "Paddle dygraph"), ("onnx-fp32", "onnx", "float32", "ONNX Runtime fp32"),
            ("onnx-int8", "onnx", "int8", "ONNX Runtime INT8"))
ARMS = (("importance", "cut from the teacher by importance"), ("random", "random init"),
        ("pruned", "pruned while distilling"))
RECIPE = {"inter_epochs": 1.0, "pred_epochs": 3.0}  # the recipe for cut students (issue 27), not the demo's
PRUNING = {"prune_epochs": 5.0, "prune_lr": 1e-4, "gate_lr": 0.05, "target_warmup": 0.5, "prune_evaluations": 8}


def parse_args(argv=None):
    recipe = demo.Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo_dir", default=os.path.join(ROOT, "demo_output"), help="what scripts/demo.py wrote")
    parser.add_argument("--output_dir", default=None, help="default: <demo_dir>/frontier")
    parser.add_argument("--shapes", default="3x192,2x192,2x96", help="comma-separated LxH[xI] student shapes")
    parser.add_argument("--arms", default=",".join(a[0] for a in ARMS), help="which arms to train, of "
                        + ", ".join(a[0] for a in ARMS))
    for name in ("inter_lr", "inter_epochs", "pred_lr", "pred_epochs", "temperature", "batch_size",
                 "max_seq_length", "seed", "latency_sentences", "latency_rounds"):
        default = RECIPE.get(name, getattr(recipe, name))
        parser.add_argument(f"--{name}", type=type(default), default=default,
                            help=f"default: {default}" + ("" if name in RECIPE else " (the demo's)"))
    for name, default in PRUNING.items():
        parser.add_argument(f"--{name}", type=type(default), default=default, help=f"pruned arm (default {default})")
    parser.add_argument("--max_steps", type=int, default=0, help="cap each distillation stage (tests); 0: epochs")
    parser.add_argument("--importance_examples", type=int, default=1024)
    parser.add_argument("--runtimes", default=",".join(r[0] for r in RUNTIMES),
                        help="exported runtimes to measure besides dygraph (onnx-fp32, onnx-int8)")
    return parser.parse_args(argv)


def parse_shape(text: str) -> tuple:
    """``"3x192"`` -> ``(3, 192, None)``; ``"2x192x768"`` -> ``(2, 192, 768)``."""
    parts = text.strip().lower().split("x")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3) or min(numbers, default=0) < 1:
        raise UserError(f"--shapes: '{text}' is not LAYERSxHIDDEN[xINTERMEDIATE], e.g. 3x192")
    return numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else None


def build_students(p: "demo.Pipeline", args, shape: tuple, name: str, teacher: str, glue: str) -> Dict[str, str]:
    """(a) cut by importance, (b) random init of the same shape: the two initial checkpoints."""
    layers, hidden, inter = shape
    cut = p.path(name, "importance_init")
    p.run(f"{name} importance student", cut, p.script(
        "scripts/build_student.py", "--source", teacher, "--num_layers", layers, "--hidden_size", hidden,
        *(["--intermediate_size", inter] if inter else []), "--task_name", TASK, "--glue_dir", glue,
        "--max_seq_length", args.max_seq_length, "--device", "cpu", "--seed", args.seed,
        "--importance_examples", args.importance_examples, "--output_dir", cut),
        f"{name} cut from the fine-tuned teacher by importance")
    random_init = p.path(name, "random_init")
    if not os.path.isdir(random_init):
        import demo_general  # the general demo's random-init arm, same construction

        with open(os.path.join(cut, "config.json"), encoding="utf-8") as handle:
            built = json.load(handle)
        demo_general.random_student(argparse.Namespace(layers=layers, hidden=hidden, seed=args.seed,
                                                       intermediate=built["intermediate_size"]),
                                    teacher, random_init)
    return {"importance": cut, "random": random_init}


def common_flags(args, teacher: str, glue: str, out: str) -> list:
    steps = ["--max_steps", args.max_steps] if args.max_steps else []
    return ["--teacher_path", teacher, "--task_name", TASK, "--glue_dir", glue, "--max_seq_length", args.max_seq_length,
            "--batch_size", args.batch_size, "--seed", args.seed, "--device", "cpu", "--use_aug",
            "--T", args.temperature, "--output_dir", out, "--overwrite_output_dir", *steps]


def save_steps(args, glue: str, epochs: float, evaluations: int) -> int:
    aug_size = demo.count_lines(os.path.join(glue, TASK, "train_aug.tsv")) - 1
    save = demo.steps_between_evaluations(aug_size, args.batch_size, epochs, evaluations)
    return max(1, min(save, args.max_steps)) if args.max_steps else save


def stage_two(p: "demo.Pipeline", args, source: str, out: str, name: str, teacher: str, glue: str,
              model_type: str, depends: str) -> str:
    save = save_steps(args, glue, args.pred_epochs, demo.Settings().pred_evaluations)
    p.run(f"{name} stage 2", os.path.join(out, "best_model"), p.script(
        "task_distill.py", "--student_model_name_or_path", source, "--model_type", model_type,
        "--teacher_model_type", "bert", *common_flags(args, teacher, glue, out), "--learning_rate", args.pred_lr,
        "--num_train_epochs", args.pred_epochs, "--logging_steps", save, "--save_steps", save), depends=(depends,))
    return os.path.join(out, "best_model")


def distil(p: "demo.Pipeline", args, student: str, out: str, name: str, teacher: str, glue: str,
           depends=()) -> str:
    """Stage 1 then stage 2 with the recipe for cut students; returns the best model."""
    save = save_steps(args, glue, args.inter_epochs, demo.Settings().inter_evaluations)
    p.run(f"{name} stage 1", os.path.join(out, "best_inter_model"), p.script(
        "task_distill.py", "--student_model_name_or_path", student, "--intermediate_distill", "--model_type",
        "tinybert", "--teacher_model_type", "bert", *common_flags(args, teacher, glue, out), "--learning_rate",
        args.inter_lr, "--num_train_epochs", args.inter_epochs, "--logging_steps", save, "--save_steps", save),
        depends=tuple(depends))
    return stage_two(p, args, os.path.join(out, "best_inter_model"), out, name, teacher, glue, "tinybert",
                     f"{name} stage 1")


def prune(p: "demo.Pipeline", args, shape: str, out: str, name: str, teacher: str, glue: str) -> str:
    """The teacher pruned to ``shape`` while distilling from it, then stage 2; returns the best model."""
    save = save_steps(args, glue, args.prune_epochs, args.prune_evaluations)
    p.run(f"{name} pruning", os.path.join(out, "best_pruned_model"), p.script(
        "prune_distill.py", "--prune_to", shape, *common_flags(args, teacher, glue, out), "--learning_rate",
        args.prune_lr, "--gate_learning_rate", args.gate_lr, "--target_warmup", args.target_warmup,
        "--num_train_epochs", args.prune_epochs, "--logging_steps", save, "--save_steps", save),
        f"{name} learned from the teacher by pruning while distilling")
    return stage_two(p, args, os.path.join(out, "best_pruned_model"), out, name, teacher, glue, "bert",
                     f"{name} pruning")


def check_budget(args) -> None:
    """The pruned arm trains at most twice the importance arm's steps (same data, same batch size)."""
    pruned, cut = args.prune_epochs + args.pred_epochs, args.inter_epochs + args.pred_epochs
    require(args.max_steps or pruned <= 2 * cut + 1e-9,
            f"--prune_epochs {args.prune_epochs:g} + --pred_epochs {args.pred_epochs:g} is more than twice the "
            f"importance arm's {cut:g} epochs: the comparison must be at a budget of at most 2x")


def export_all(paths: Dict[str, str], glue: str, args, out: str) -> Dict[str, dict]:
    from tinybert.serving.deploy import export_checkpoint

    wanted = {r.strip() for r in args.runtimes.split(",")}
    unknown = wanted - {r[0] for r in RUNTIMES}
    require(not unknown, f"--runtimes: unknown {', '.join(sorted(unknown))}; use {', '.join(r[0] for r in RUNTIMES)}")
    manifests = {}
    for model, path in paths.items():
        for runtime, fmt, precision, _ in [r for r in RUNTIMES[1:] if r[0] in wanted]:
            target = os.path.join(out, "deploy", f"{model.replace(' ', '_')}-{runtime}")
            manifests[(model, runtime)] = export_checkpoint(path, target, TASK, format=fmt, precision=precision,
                                                            glue_dir=glue, max_seq_length=args.max_seq_length,
                                                            eval_batch_size=64)
            manifests[(model, runtime)]["directory"] = target
    return manifests


def frontier_rows(evaluated, manifests: Dict[tuple, dict], seconds: Dict[int, Dict[str, float]]) -> List[dict]:
    """One row per model and runtime: accuracy of that very model (the export's own for ONNX),
    share of the teacher (dygraph), ms/example, speed-up in the same runtime and vs dygraph."""
    teacher_score = evaluated["teacher"].metrics["score"]
    rows = []
    for name, e in evaluated.items():
        for runtime, _, _, label in RUNTIMES:
            key = f"{name}@{runtime}"
            if key not in seconds[1]:
                continue
            metrics = e.metrics if runtime == "dygraph" else manifests[(name, runtime)]["evaluation"]["metrics"]
            row = {"model": name, "runtime": label, "layers": e.layers, "hidden": e.hidden,
                   "parameters": e.parameters, "dev_accuracy": metrics.get("acc", metrics["score"]),
                   "share_of_teacher": metrics["score"] / teacher_score if teacher_score else None}
            for b, per in sorted(seconds.items()):
                row[f"ms_per_example_b{b}"] = 1000 * per[key]
                row[f"same_runtime_speedup_b{b}"] = per[f"teacher@{runtime}"] / per[key]
                row[f"vs_teacher_dygraph_b{b}"] = per["teacher@dygraph"] / per[key]
            rows.append(row)
    return rows


def markdown(rows: List[dict]) -> str:
    lines = ["| model | runtime | layers x hidden | parameters | dev acc | % of teacher | ms/example b1 | "
             "ms/example b32 | vs teacher, same runtime (b1 / b32) | vs teacher in dygraph (b1 / b32) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['runtime']} | {r['layers']} x {r['hidden']} | {r['parameters'] / 1e6:.2f}M"
                     f" | {r['dev_accuracy']:.4f} | {100 * (r['share_of_teacher'] or 0):.1f}% | "
                     f"{r['ms_per_example_b1']:.2f} | {r['ms_per_example_b32']:.2f} | "
                     f"{r['same_runtime_speedup_b1']:.2f}x / {r['same_runtime_speedup_b32']:.2f}x | "
                     f"{r['vs_teacher_dygraph_b1']:.2f}x / {r['vs_teacher_dygraph_b32']:.2f}x |")
    return "\n".join(lines) + "\n"


def check_targets(rows: List[dict], runtime: str = "ONNX Runtime INT8") -> dict:
    """Issue 27's targets, judged on the exported models (``runtime``, batch 32, speed against the
    teacher in the same runtime, accuracy of the export itself):

    - the most accurate student at least 5x faster than the teacher keeps >= 97% of its accuracy;
    - the best 3x192 student keeps >= 97%;
    - at every shape the pruned arm beats the importance arm by >= 1.5 points, at most twice its budget.
    """
    students = [r for r in rows if r["model"] != "teacher" and r["runtime"] == runtime]
    if not students:
        return {"met": False, "note": f"no student exported to {runtime}"}
    share = lambda r: r["share_of_teacher"] or 0.0  # noqa: E731
    fast = [r for r in students if (r["same_runtime_speedup_b32"] or 0) >= 5]
    best_fast = max(fast, key=share) if fast else None
    result = {"fast_student": best_fast and best_fast["model"],
              "fast_student_speedup_b32": best_fast and best_fast["same_runtime_speedup_b32"],
              "fast_student_share": best_fast and share(best_fast),
              "fastest_student": max(students, key=lambda r: r["same_runtime_speedup_b32"] or 0)["model"]}
    result["five_times_faster_keeps_97_percent"] = bool(best_fast and share(best_fast) >= 0.97)
    shaped = [r for r in students if r["model"].startswith("3x192 ")]
    result["best_3x192"] = max(shaped, key=share)["model"] if shaped else None
    result["best_3x192_share"] = max(map(share, shaped)) if shaped else None
    result["3x192_keeps_97_percent"] = bool(shaped and result["best_3x192_share"] >= 0.97)
    by = {r["model"]: r for r in students}
    gains = {name[:-len(" pruned")]: 100 * (r["dev_accuracy"] - by[name.replace(" pruned", " importance")]["dev_accuracy"])
             for name, r in by.items() if name.endswith(" pruned") and name.replace(" pruned", " importance") in by}
    result["pruned_minus_importance_points"] = gains
    result["pruned_beats_importance_by_1.5_points"] = bool(gains) and min(gains.values()) >= 1.5
    result["met"] = all(result[k] for k in ("five_times_faster_keeps_97_percent", "3x192_keeps_97_percent",
                                            "pruned_beats_importance_by_1.5_points"))
    return result


def draw(rows: List[dict], path: str) -> bool:
    """Dev accuracy against ms/example (batch 32), one point per model and runtime; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"note: matplotlib is not installed, so {path} is not drawn (the table has the same numbers)")
        return False
    from matplotlib.lines import Line2D

    figure, axes = plt.subplots(figsize=(7.5, 5))
    markers = {"Paddle dygraph": "o", "ONNX Runtime fp32": "s", "ONNX Runtime INT8": "^"}
    colours = {"teacher": "black", "importance": "tab:blue", "random": "tab:orange", "pruned": "tab:green"}
    for r in rows:
        arm = r["model"].rsplit(" ", 1)[-1]
        axes.scatter(r["ms_per_example_b32"], r["dev_accuracy"], marker=markers[r["runtime"]],
                     s=90 if arm == "teacher" else 45, color=colours[arm])
        if arm != "teacher":  # the shape only: colour and marker say the rest, so labels stay legible
            axes.annotate(r["model"].split(" ")[0], (r["ms_per_example_b32"], r["dev_accuracy"]), fontsize=7,
                          xytext=(4, 2), textcoords="offset points")
    handles = [Line2D([], [], linestyle="", marker="o", color=c, label=a) for a, c in colours.items()]
    handles += [Line2D([], [], linestyle="", marker=m, color="grey", label=rt) for rt, m in markers.items()]
    axes.legend(handles=handles, fontsize=7, loc="lower right")
    axes.set_xscale("log")
    axes.set_xlabel("ms per example, batch 32 (log scale)")
    axes.set_ylabel("dev accuracy")
    axes.set_title("Speed/accuracy frontier: teacher, students cut by importance, randomly initialised, "
                   "pruned while distilling", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


@run_cli
def main(argv=None) -> dict:
    args = parse_args(argv)
    demo_dir = os.path.abspath(args.demo_dir)
    out = os.path.abspath(args.output_dir or os.path.join(demo_dir, "frontier"))
    teacher, glue = os.path.join(demo_dir, "teacher", "best_model"), os.path.join(demo_dir, "glue")
    for needed in (teacher, os.path.join(glue, TASK, "train_aug.tsv"), os.path.join(glue, TASK, "dev.tsv")):
        require(os.path.exists(needed), f"{needed} is missing: run bash scripts/demo.sh first")
    shapes = [parse_shape(s) for s in args.shapes.split(",") if s.strip()]
    require(shapes, "--shapes is empty: give e.g. 3x192,2x192")
    os.makedirs(out, exist_ok=True)
    p = demo.Pipeline(out)
    paths = {"teacher": teacher}
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = set(arms) - {a[0] for a in ARMS}
    require(arms and not unknown, f"--arms: give some of {', '.join(a[0] for a in ARMS)}")
    check_budget(args)
    for shape in shapes:
        name = "x".join(str(n) for n in shape if n)
        if {"importance", "random"} & set(arms):
            for arm, student in build_students(p, args, shape, name, teacher, glue).items():
                if arm in arms:
                    built_by = (f"{name} importance student",) if arm == "importance" else ()
                    paths[f"{name} {arm}"] = distil(p, args, student, p.path(name, arm), f"{name} {arm}", teacher,
                                                    glue, depends=built_by)
        if "pruned" in arms:
            paths[f"{name} pruned"] = prune(p, args, name, p.path(name, "pruned"), f"{name} pruned", teacher, glue)

    settings = demo.Settings(max_seq_length=args.max_seq_length, latency_sentences=args.latency_sentences,
                             latency_rounds=args.latency_rounds)
    evaluated, sentences = demo.evaluate_models(paths, glue, settings)
    manifests = export_all(paths, glue, args, out)
    from tinybert.serving.inference import Predictor
    from tinybert.serving.latency import dygraph_runner

    runners = {f"{name}@dygraph": dygraph_runner(e.model) for name, e in evaluated.items()}
    runners.update({f"{name}@{runtime}": Predictor(m["directory"]).run for (name, runtime), m in manifests.items()})
    seconds = demo.seconds_per_example(demo.measure_models(runners, sentences, evaluated["teacher"].tokenizer, settings))
    rows = frontier_rows(evaluated, manifests, seconds)
    wanted = {r.strip() for r in args.runtimes.split(",")}
    targets = check_targets(rows, "ONNX Runtime INT8" if "onnx-int8" in wanted else "Paddle dygraph")
    table = markdown(rows)
    picture = os.path.join(out, "frontier.png")
    drawn = draw(rows, picture)
    result = {"settings": vars(args), "rows": rows, "targets": targets, "picture": picture if drawn else None,
              "step_seconds": p.timings}
    with open(os.path.join(out, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1, default=str)
    with open(os.path.join(out, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(table + ("\n![frontier](frontier.png)\n" if drawn else ""))
    print("\n" + table)
    print(f"targets: {json.dumps(targets)}")
    return result


if __name__ == "__main__":
    main()
