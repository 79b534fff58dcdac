"""scripts/demo_frontier.py end to end on tiny fixtures: a fake demo output (teacher, task,
augmented set), one narrow shape, a few steps, every runtime, the table, the picture."""
import json
import os
import shutil

import pytest
import tiny
from scripts_import import load_script

frontier = load_script("demo_frontier")


def test_the_frontier_runs_end_to_end_on_a_tiny_demo_output(tmp_path, capsys):
    demo_dir = tmp_path / "demo_output"
    tiny.write_task(str(demo_dir / "glue"), "SST-2", n_train=32, n_dev=16)
    shutil.copy(demo_dir / "glue" / "SST-2" / "train.tsv", demo_dir / "glue" / "SST-2" / "train_aug.tsv")
    tiny.make_bert(str(demo_dir / "teacher" / "best_model"), layers=2, hidden=32, heads=2, intermediate=64)
    result = frontier.main(["--demo_dir", str(demo_dir), "--shapes", "1x16", "--max_steps", "2",
                            "--max_seq_length", "24", "--batch_size", "8", "--latency_sentences", "8",
                            "--latency_rounds", "1", "--importance_examples", "16",
                            "--runtimes", "onnx-int8"])  # fp32 export is the same code path, a format apart
    out = demo_dir / "frontier"
    rows = result["rows"]
    assert {(r["model"], r["runtime"]) for r in rows} == {
        (m, rt) for m in ("teacher", "1x16 importance", "1x16 random", "1x16 pruned")
        for rt in ("Paddle dygraph", "ONNX Runtime INT8")}
    by = {(r["model"], r["runtime"]): r for r in rows}
    teacher = by[("teacher", "ONNX Runtime INT8")]
    assert teacher["same_runtime_speedup_b32"] == 1.0 and by[("teacher", "Paddle dygraph")]["vs_teacher_dygraph_b1"] == 1.0
    student = by[("1x16 importance", "ONNX Runtime INT8")]
    assert (student["layers"], student["hidden"]) == (1, 16) and student["parameters"] < teacher["parameters"]
    assert student["same_runtime_speedup_b32"] == pytest.approx(
        teacher["ms_per_example_b32"] / student["ms_per_example_b32"])
    built = json.load(open(out / "1x16" / "importance_init" / "student_source.json"))
    assert built["criterion"].startswith("importance") and built["importance_examples"] == 16
    assert json.load(open(out / "1x16" / "random_init" / "config.json"))["hidden_size"] == 16
    assert (out / "1x16" / "random" / "best_model" / "config.json").is_file()
    pruned = json.load(open(out / "1x16" / "pruned" / "best_model" / "config.json"))  # stage 2 of the pruned model
    assert (pruned["num_hidden_layers"], pruned["hidden_size"], pruned["num_attention_heads"]) == (1, 16, 1)
    table = (out / "results.md").read_text()
    assert table.startswith("| model | runtime |") and table.count("\n| 1x16 ") == 6
    assert result["picture"] and os.path.getsize(out / "frontier.png") > 1000
    saved = json.load(open(out / "results.json"))
    assert set(saved["targets"]["pruned_minus_importance_points"]) == {"1x16"}
    assert "| teacher | Paddle dygraph |" in capsys.readouterr().out


@pytest.mark.parametrize("shape", ["3-192", "x", "0x16"])
def test_a_bad_shape_is_a_user_error(shape):
    from tinybert.errors import UserError

    with pytest.raises(UserError, match="LAYERSxHIDDEN"):
        frontier.parse_shape(shape)


def test_targets_need_every_goal():
    def row(model, acc, same32=1.0, runtime="ONNX Runtime INT8"):
        return {"model": model, "runtime": runtime, "dev_accuracy": acc, "share_of_teacher": acc / 0.8,
                "same_runtime_speedup_b32": same32}
    rows = [row("teacher", 0.8), row("teacher", 0.8, runtime="Paddle dygraph"),
            row("3x192 importance", 0.77, 3.0), row("3x192 pruned", 0.79, 3.2),
            row("2x96 importance", 0.76, 5.5), row("2x96 pruned", 0.78, 5.8),
            row("2x96 pruned", 0.5, 5.8, runtime="Paddle dygraph")]  # other runtimes do not count
    targets = frontier.check_targets(rows)
    assert targets["met"] is True and targets["fast_student"] == "2x96 pruned"
    assert targets["pruned_minus_importance_points"] == pytest.approx({"3x192": 2.0, "2x96": 2.0})
    rows[3]["dev_accuracy"] = 0.78  # 3x192: 97.5%, but only 1 point over importance
    targets = frontier.check_targets(rows)
    assert targets["met"] is False and targets["3x192_keeps_97_percent"] is True
    assert targets["pruned_beats_importance_by_1.5_points"] is False
    rows[3]["dev_accuracy"], rows[5]["share_of_teacher"] = 0.79, 0.96  # the fast student keeps only 96%
    assert frontier.check_targets(rows)["five_times_faster_keeps_97_percent"] is False


def test_the_pruned_arm_may_not_train_more_than_twice_the_importance_arm():
    from tinybert.errors import UserError

    args = frontier.parse_args([])
    assert (args.inter_epochs, args.pred_epochs) == (1.0, 3.0)  # the recipe for cut students
    frontier.check_budget(args)
    with pytest.raises(UserError, match="more than twice"):
        frontier.check_budget(frontier.parse_args(["--prune_epochs", "6"]))
