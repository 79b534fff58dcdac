"""scripts/demo.py's helpers on tiny models (not the full demo): GloVe conversion, step reuse,
evaluation, latency, the results table and the targets."""
import json
import os
import sys

import numpy as np
import pytest
import tiny
from scripts_import import load_script

demo = load_script("demo")


# ------------------------------------------------------------------ GloVe
def write_glove_asset(cache, words, vectors):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (cache / "glove").mkdir(parents=True)
    np.save(cache / "glove" / "glove_6B_50d_emb.npy", vectors.astype(np.float32))
    pq.write_table(pa.table({"index": words}), cache / "glove" / "glove_6B_index.parquet")


def test_glove_asset_becomes_the_official_text_format(tmp_path):
    vectors = np.array([[0.418, 0.24968, -0.41242], [0.013441, 0.23682, -0.16899], [1e-7, -3.5, 2.0]])
    write_glove_asset(tmp_path, ["the", ",", "x"], vectors)
    out = tmp_path / "glove.txt"
    demo.glove_text(str(tmp_path), str(out), words=2)
    assert out.read_text().splitlines() == ["the 0.418 0.24968 -0.41242", ", 0.013441 0.23682 -0.16899"]


def test_converted_glove_values_are_exact_and_load_in_augmentation(tmp_path):
    from tinybert.augmentation.glove import load_glove

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 50)).astype(np.float32)
    words = [f"w{i}" for i in range(20)]
    write_glove_asset(tmp_path, words, vectors)
    out = tmp_path / "glove.txt"
    demo.glove_text(str(tmp_path), str(out), words=100)
    parsed = np.array([[float(v) for v in line.split()[1:]] for line in out.read_text().splitlines()],
                      dtype=np.float32)
    assert np.array_equal(parsed, vectors)
    glove = load_glove(str(out), limit=0, progress=False)
    assert glove.words == words and glove.vectors.shape == (20, 50)


# -------------------------------------------------------------- pipeline
def write_file_command(path, text):
    return [sys.executable, "-c", f"open({str(path)!r}, 'w').write({text!r})"]


def test_a_step_is_reused_only_with_the_same_command_and_unchanged_inputs(tmp_path, capsys):
    target, later = tmp_path / "a.txt", tmp_path / "b.txt"
    first = demo.Pipeline(str(tmp_path))
    first.run("a", str(target), write_file_command(target, "1"))
    first.run("b", str(later), write_file_command(later, "x"), depends=("a",))
    assert target.read_text() == "1" and first.ran == {"a", "b"}

    again = demo.Pipeline(str(tmp_path), previous=first.timings)
    again.run("a", str(target), write_file_command(target, "1"))
    again.run("b", str(later), write_file_command(later, "x"), depends=("a",))
    assert again.ran == set() and "reusing" in capsys.readouterr().out
    assert again.timings["a"]["reused"] and again.timings["a"]["seconds_when_run"] == first.timings["a"]["seconds"]

    changed = demo.Pipeline(str(tmp_path))
    changed.run("a", str(target), write_file_command(target, "2"))
    changed.run("b", str(later), write_file_command(later, "x"), depends=("a",))
    assert target.read_text() == "2" and changed.ran == {"a", "b"}  # b redone: its input changed


def test_a_failing_step_stops_the_demo_with_its_command(tmp_path):
    from tinybert.errors import UserError

    pipeline = demo.Pipeline(str(tmp_path))
    with pytest.raises(UserError, match="step 'boom' failed"):
        pipeline.run("boom", str(tmp_path / "never"), [sys.executable, "-c", "raise SystemExit(3)"])
    assert not os.path.exists(pipeline.stamp_path(str(tmp_path / "never")))


def test_save_steps_give_about_the_requested_number_of_evaluations():
    assert demo.steps_between_evaluations(3000, 32, 2.0, 4) == 47  # 188 steps
    assert demo.steps_between_evaluations(10, 32, 1.0, 4) == 1


# ------------------------------------------------------- table, latency
@pytest.fixture(scope="module")
def three_models(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo_helpers")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=8, n_dev=24)
    paths = {"teacher": str(work / "teacher"), "distilled": str(work / "distilled"),
             "baseline": str(work / "baseline")}
    tiny.make_bert(paths["teacher"], layers=4, hidden=32, intermediate=64)
    tiny.make_bert(paths["distilled"], layers=1, hidden=16, intermediate=32, model_type="tinybert", fit_size=32, seed=1)
    tiny.make_bert(paths["baseline"], layers=1, hidden=16, intermediate=32, model_type="tinybert", fit_size=32, seed=2)
    settings = demo.Settings(max_seq_length=32, latency_sentences=16, latency_rounds=2)
    evaluated, sentences = demo.evaluate_models(paths, str(work / "glue"), settings)
    latency = demo.latencies(evaluated, sentences, settings)
    return work, evaluated, sentences, latency, settings


def test_models_are_evaluated_on_the_dev_set(three_models):
    _, evaluated, sentences, _, _ = three_models
    assert len(sentences) == 24
    assert {e.model_type for e in evaluated.values()} == {"bert", "tinybert"}
    for e in evaluated.values():
        assert 0.0 <= e.metrics["acc"] <= 1.0 and e.metrics["score"] == e.metrics["acc"]
    assert evaluated["teacher"].layers == 4 and evaluated["distilled"].layers == 1


def test_parameter_counts_leave_out_the_stage_one_projections(three_models):
    _, evaluated, _, _, _ = three_models
    model = evaluated["distilled"].model
    everything = sum(int(np.prod(p.shape)) for p in model.parameters())
    projections = sum(int(np.prod(p.shape)) for name, p in model.named_parameters() if "fit_dense" in name)
    assert projections > 0
    assert evaluated["distilled"].parameters == everything - projections
    teacher = evaluated["teacher"]
    assert teacher.parameters == sum(int(np.prod(p.shape)) for p in teacher.model.parameters())


def test_latency_is_measured_for_every_model_at_batch_1_and_32(three_models):
    _, _, _, latency, _ = three_models
    assert sorted(latency) == [1, 32]
    for per_model in latency.values():
        assert set(per_model) == {"teacher", "distilled", "baseline"}
        assert all(0 < seconds < 1 for seconds in per_model.values())


def test_table_rows_relate_every_model_to_the_teacher(three_models):
    _, evaluated, _, latency, _ = three_models
    rows = demo.table_rows(evaluated, latency)
    assert [row["model"] for row in rows] == ["teacher", "distilled", "baseline"]
    teacher = rows[0]
    assert teacher["speedup_b1"] == 1.0 and teacher["speedup_b32"] == 1.0 and teacher["share_of_teacher"] == 1.0
    for row in rows[1:]:
        assert row["speedup_b32"] == pytest.approx(latency[32]["teacher"] / latency[32][row["model"]])
        assert row["ms_per_example_b1"] == pytest.approx(1000 * latency[1][row["model"]])
    columns, cells = demo.format_rows(rows)
    assert columns[:5] == ["model", "layers x hidden", "parameters", "dev acc", "% of teacher"]
    assert "speed-up (batch 32)" in columns and len(cells) == 3 and cells[0][4] == "100.0%"


def fake_rows(teacher, distilled, baseline):
    return [{"model": name, "dev_score": score} for name, score in
            (("teacher", teacher), ("distilled", distilled), ("baseline", baseline))]


@pytest.mark.parametrize("scores, keeps, beats", [
    ((0.82, 0.80, 0.78), True, True),
    ((0.82, 0.79, 0.78), False, True),  # 96.3% of the teacher
    ((0.82, 0.80, 0.80), True, False),  # a tie does not beat the baseline
])
def test_targets_need_97_percent_of_the_teacher_and_a_win_over_the_baseline(scores, keeps, beats):
    targets = demo.check_targets(fake_rows(*scores))
    assert targets["distilled_keeps_97_percent_of_teacher"] is keeps
    assert targets["distilled_beats_baseline"] is beats
    assert targets["met"] is (keeps and beats)


def test_report_saves_results_json_and_md_and_returns_the_console_table(three_models, tmp_path):
    _, evaluated, _, latency, settings = three_models
    rows = demo.table_rows(evaluated, latency)
    targets = demo.check_targets(rows)
    text = demo.report(rows, targets, settings, {"total_seconds": 1.0}, str(tmp_path))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [row["model"] for row in saved["models"]] == ["teacher", "distilled", "baseline"]
    assert saved["targets"] == targets and saved["settings"]["latency_rounds"] == 2
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.startswith("| model | layers x hidden |") and "student, distilled (TinyBERT)" in markdown
    assert "teacher: MiniLM-L6 fine-tuned" in text and "of the teacher's dev accuracy" in text
