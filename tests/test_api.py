"""The Python API: every job run from settings values, as a notebook would, without argparse;
and the settings are the command line's (same fields, same defaults)."""
import argparse
import dataclasses
import importlib
import json
import os
import random
import sys

import pytest
import tiny

from tinybert import api
from tinybert.errors import UserError
from tinybert.settings import (
    AugmentSettings,
    DistillSettings,
    ExportSettings,
    FinetuneSettings,
    GeneralSettings,
    PredictSettings,
    PruneSettings,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = dict(max_seq_length=24, batch_size=8, logging_steps=5, save_steps=5, device="cpu", eval_batch_size=16)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("api")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=24, n_dev=8)
    tiny.make_bert(str(work / "base"), layers=2, hidden=32, heads=2)
    tiny.make_bert(str(work / "student"), layers=1, hidden=32, heads=2, model_type="tinybert")
    tiny.make_bert_mlm(str(work / "mlm"))
    tiny.write_glove(str(work / "glove.txt"))
    rng = random.Random(0)
    with open(work / "corpus.txt", "w", encoding="utf-8") as handle:
        for _ in range(30):
            handle.write(" ".join(tiny.sentence(rng, rng.randint(0, 1)) for _ in range(3)) + "\n\n")
    return work


def forbid_argparse(monkeypatch):
    """Any use of argparse below the API fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the library parsed a command line")
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", refuse)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", refuse)


def test_every_job_runs_from_python_settings(work, monkeypatch, capsys):
    forbid_argparse(monkeypatch)
    glue = str(work / "glue")
    teacher = api.finetune_teacher(FinetuneSettings(
        model_name_or_path=str(work / "base"), task_name="sst-2", glue_dir=glue, output_dir=str(work / "teacher"),
        num_train_epochs=2, learning_rate=1e-3, **FAST))
    assert teacher["stage"] == "finetune" and os.path.isfile(os.path.join(teacher["best_dir"], "model_state.pdparams"))

    augmented = api.augment(AugmentSettings(task_name="SST-2", glue_dir=glue, pretrained_bert_model=str(work / "mlm"),
                                            glove_embs=str(work / "glove.txt"), N=2, device="cpu"), progress=False)
    with open(augmented, encoding="utf-8") as handle:
        assert len(handle.readlines()) > 24 + 1  # header + originals + variants

    stage1 = api.distill(DistillSettings(
        teacher_path=teacher["best_dir"], student_model_name_or_path=str(work / "student"), task_name="SST-2",
        glue_dir=glue, intermediate_distill=True, use_aug=True, output_dir=str(work / "distilled"), max_steps=6, **FAST))
    assert stage1["stage"] == "intermediate" and stage1["best"] is not None
    stage2 = api.distill(task_name="SST-2", glue_dir=glue, teacher_path=teacher["best_dir"],
                         student_model_name_or_path=stage1["best_dir"], output_dir=str(work / "distilled"),
                         max_steps=6, **FAST)
    assert stage2["stage"] == "prediction" and 0.0 <= stage2["best"] <= 1.0

    general = api.general_distill(GeneralSettings(
        teacher_path=str(work / "base"), corpus=str(work / "corpus.txt"), student_num_layers=1,
        student_hidden_size=16, student_intermediate_size=32, output_dir=str(work / "general"), max_steps=4,
        **{**FAST, "batch_size": 4}))
    assert os.path.isdir(general["best_dir"])

    manifest = api.export(ExportSettings(model_dir=stage2["best_dir"], output_dir=str(work / "export"),
                                         format="onnx", task_name="SST-2", glue_dir=glue, max_seq_length=24))
    assert manifest["format"] == "onnx"
    capsys.readouterr()
    (work / "input.txt").write_text("a good film\na dull plot\n", encoding="utf-8")
    api.predict(PredictSettings(model_dir=str(work / "export"), input=str(work / "input.txt")))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["line"] for line in lines] == [1, 2] and all("label" in line for line in lines)

    record = json.load(open(work / "distilled" / "run_prediction.json", encoding="utf-8"))
    assert record["arguments"]["student_model_name_or_path"] == stage1["best_dir"]


def test_a_bad_value_is_the_command_lines_message(work):
    with pytest.raises(UserError, match=r"--T must be a positive temperature, got 0"):
        api.distill(task_name="SST-2", glue_dir=str(work / "glue"), teacher_path=str(work / "base"), T=0.0,
                    output_dir=str(work / "bad"), device="cpu")
    with pytest.raises(UserError, match=r"--projection 'both': choose one of auto, per_layer, shared"):
        DistillSettings(task_name="SST-2", teacher_path="t", output_dir="o", projection="both")
    with pytest.raises(TypeError):
        DistillSettings(task_name="SST-2", output_dir="o")  # teacher_path is required, as --teacher_path is
    with pytest.raises(dataclasses.FrozenInstanceError):
        FinetuneSettings(task_name="SST-2", output_dir="o").seed = 1


ENTRY_POINTS = [
    ("finetune_teacher", FinetuneSettings, ["--task_name", "SST-2", "--output_dir", "o"]),
    ("task_distill", DistillSettings, ["--task_name", "SST-2", "--output_dir", "o", "--teacher_path", "t"]),
    ("general_distill", GeneralSettings, ["--teacher_path", "t", "--corpus", "c.txt", "--output_dir", "o"]),
    ("prune_distill", PruneSettings, ["--teacher_path", "t", "--prune_to", "3x192", "--task_name", "SST-2",
                                      "--output_dir", "o"]),
    ("data_augmentation", AugmentSettings, ["--task_name", "SST-2"]),
    ("export_model", ExportSettings, ["--model_dir", "m", "--output_dir", "o", "--task_name", "SST-2"]),
    ("predict", PredictSettings, ["--model_dir", "m", "--input", "-"]),
]


def required_fields(argv):
    values = dict(zip(argv[::2], argv[1::2]))
    return {name.lstrip("-"): (tuple([value]) if name == "--corpus" else value) for name, value in values.items()}


@pytest.mark.parametrize("script, settings_class, argv", ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_the_command_line_and_the_api_have_the_same_fields_and_defaults(script, settings_class, argv):
    sys.path.insert(0, ROOT)
    try:
        module = importlib.import_module(script)
    finally:
        sys.path.remove(ROOT)
    parsed = module.parse_args(argv)
    assert isinstance(parsed, settings_class)
    assert parsed == settings_class(**required_fields(argv))


def test_defaults_that_differ_between_jobs_are_the_documented_ones():
    """The learning rates of PaddleNLP's scripts: run_glue 2e-5, task_distill 5e-5, general 1e-4."""
    assert FinetuneSettings(task_name="x", output_dir="o").learning_rate == 2e-5
    assert DistillSettings(task_name="x", output_dir="o", teacher_path="t").learning_rate == 5e-5
    assert GeneralSettings(teacher_path="t", corpus="c", output_dir="o").learning_rate == 1e-4
    assert GeneralSettings(teacher_path="t", corpus="c", output_dir="o").corpus == ("c",)
