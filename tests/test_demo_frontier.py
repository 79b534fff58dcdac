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
        (m, rt) for m in ("teacher", "1x16 importance", "1x16 random")
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
    table = (out / "results.md").read_text()
    assert table.startswith("| model | runtime |") and table.count("\n| 1x16 ") == 4
    assert result["picture"] and os.path.getsize(out / "frontier.png") > 1000
    saved = json.load(open(out / "results.json"))
    assert saved["targets"]["student"] == "1x16 importance" and "points_over_random_init" in saved["targets"]
    assert "| teacher | Paddle dygraph |" in capsys.readouterr().out


@pytest.mark.parametrize("shape", ["3-192", "x", "0x16"])
def test_a_bad_shape_is_a_user_error(shape):
    from tinybert.errors import UserError

    with pytest.raises(UserError, match="LAYERSxHIDDEN"):
        frontier.parse_shape(shape)


def test_targets_need_every_goal(tmp_path):
    def row(model, runtime, acc, same32=1.0, dyg1=1.0, hidden=16):
        return {"model": model, "runtime": runtime, "hidden": hidden, "dev_accuracy": acc,
                "share_of_teacher": acc / 0.8, "same_runtime_speedup_b32": same32, "vs_teacher_dygraph_b1": dyg1}
    rows = [row("teacher", "Paddle dygraph", 0.8, hidden=32), row("a importance", "Paddle dygraph", 0.79, dyg1=25),
            row("a importance", "ONNX Runtime INT8", 0.79, same32=3.5), row("a random", "Paddle dygraph", 0.74)]
    assert frontier.check_targets(rows, 32)["met"] is True
    rows[-1]["dev_accuracy"] = 0.77  # only 2 points over random init
    targets = frontier.check_targets(rows, 32)
    assert targets["met"] is False and targets["points_over_random_init"] == pytest.approx(2.0)
