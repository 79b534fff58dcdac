"""No run writes over what it reads (issue 25): the README's own GLUE sequence, run literally on
tiny fixtures, leaves the teacher byte-identical; and each stage's guard refuses exactly the
outputs that would replace an input, allowing the layouts that share a directory. The refusals
from each command line, with the disk hashed before and after, are rows of
tests/test_bad_input_catalogue.py."""
import os
import re
import subprocess
import sys

import pytest
import tiny

from tinybert.distillation.general import GENERAL
from tinybert.distillation.task import STAGE_ONE, STAGE_TWO
from tinybert.distillation.teacher import FINETUNE
from tinybert.errors import UserError
from tinybert.settings import DistillSettings, FinetuneSettings, GeneralSettings
from tinybert.training.guard import check_stage_keeps_inputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_block(heading):
    """The first ```bash block after ``heading`` in the README."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        section = handle.read().split(heading, 1)[1]
    return section.split("```bash\n", 1)[1].split("\n```", 1)[0]


def tree(directory):
    """relative path -> bytes of every file under ``directory``."""
    found = {}
    for folder, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, directory)] = handle.read()
    return found


def test_the_readme_glue_sequence_run_literally_leaves_the_teacher_byte_identical(tmp_path):
    """The block's commands as written, with three substitutions: tiny models for the hub names
    and the repository's scripts for ``python X.py``. HOME is the test directory, so PaddleNLP's
    default GLUE directory and the block's ``~/.paddlenlp/datasets/Glue/`` hold the tiny SST-2."""
    tiny.write_task(str(tmp_path / ".paddlenlp" / "datasets" / "Glue"), "SST-2", n_train=32, n_dev=16)
    tiny.make_bert(str(tmp_path / "models" / "bert"), layers=2, hidden=32, heads=2)
    tiny.make_bert_mlm(str(tmp_path / "models" / "mlm"))
    tiny.make_bert(str(tmp_path / "models" / "student"), layers=1, hidden=16, heads=2, model_type="tinybert",
                   fit_size=32)
    os.makedirs(tmp_path / "glove")
    tiny.write_glove(str(tmp_path / "glove" / "glove.6B.300d.txt"))

    script = readme_block("## Distil a GLUE task")
    for name, local in (("--model_name_or_path bert-base-uncased", "models/bert"),
                        ("--pretrained_bert_model bert-base-uncased", "models/mlm"),
                        ("--student_model_name_or_path tinybert-6l-768d-v2", "models/student")):
        assert script.count(name) == 1, name
        script = script.replace(name, f"{name.split()[0]} {local}")
    script, calls = re.subn(r"^python (\w+\.py)", lambda m: f"{sys.executable} {ROOT}/{m.group(1)}", script, flags=re.M)
    assert calls == 4  # teacher, augmentation, stage 1, stage 2
    script, marks = re.subn(r"^(export TEACHER_DIR=.*)$", r'\1\ncp -a "$TEACHER_DIR" teacher-as-trained', script,
                            flags=re.M)
    assert marks == 1
    env = dict(os.environ, HOME=str(tmp_path))
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    teacher = re.search(r"^export TEACHER_DIR=(\S+)$", script, flags=re.M).group(1).replace("$TASK_NAME", "SST-2")
    kept = tree(tmp_path / "teacher-as-trained")
    assert "model_state.pdparams" in kept and tree(tmp_path / teacher) == kept
    assert "train_aug.tsv" in os.listdir(tmp_path / ".paddlenlp" / "datasets" / "Glue" / "SST-2")
    students = [folder for folder, _, files in os.walk(tmp_path / "tmp") if "model_state.pdparams" in files
                and "tinybert" in open(os.path.join(folder, "config.json"), encoding="utf-8").read().lower()]
    assert len(students) == 2, students  # stage 1's best_inter_model and stage 2's best_model, beside the teacher


# ------------------------------------------------------------ what each stage may and may not replace
def distill(tmp_path, **fields):
    values = dict(task_name="SST-2", glue_dir=str(tmp_path / "glue"), teacher_path=str(tmp_path / "teacher"),
                  student_model_name_or_path=str(tmp_path / "student"), output_dir=str(tmp_path / "out"))
    return DistillSettings(**{**values, **fields})


def refusal(settings, stage):
    with pytest.raises(UserError) as err:
        check_stage_keeps_inputs(settings, stage)
    return str(err.value)


def test_stage_two_may_read_its_directorys_best_inter_model_and_stage_one_may_not(tmp_path):
    out = str(tmp_path / "out")
    settings = distill(tmp_path, student_model_name_or_path=os.path.join(out, "best_inter_model"))
    check_stage_keeps_inputs(settings, STAGE_TWO)  # writes best_model/ and checkpoint-last/ beside it
    assert "--student_model_name_or_path" in refusal(settings, STAGE_ONE)
    teacher_in_out = distill(tmp_path, teacher_path=os.path.join(out, "best_model"))
    check_stage_keeps_inputs(teacher_in_out, STAGE_ONE)  # stage 1 writes best_inter_model/ only
    assert "--teacher_path" in refusal(teacher_in_out, STAGE_TWO)
    check_stage_keeps_inputs(distill(tmp_path, teacher_path=out), STAGE_TWO)  # beside the teacher's files, not over


def test_each_jobs_outputs_are_checked_against_each_of_its_inputs(tmp_path):
    out = tmp_path / "out"
    line = refusal(distill(tmp_path, student_model_name_or_path=str(out / "checkpoint-last" / "x")), STAGE_TWO)
    assert "which holds it" in line
    assert "task directory" in refusal(distill(tmp_path, glue_dir=str(out / "best_model")), STAGE_TWO)
    assert "--cache_dir" in refusal(distill(tmp_path, cache_dir=str(out / "best_inter_model")), STAGE_ONE)
    finetune = FinetuneSettings(task_name="SST-2", glue_dir=str(tmp_path / "glue"), output_dir=str(out),
                                model_name_or_path=str(out / "best_model"))
    assert "--model_name_or_path" in refusal(finetune, FINETUNE)
    general = GeneralSettings(teacher_path=str(tmp_path / "teacher"), corpus=(str(out / "general_model" / "c.txt"),),
                              output_dir=str(out))
    assert "--corpus" in refusal(general, GENERAL)
    check_stage_keeps_inputs(general, STAGE_ONE)  # another stage's outputs do not touch it


@pytest.mark.parametrize("export_dir,named", [("out", "--output_dir"), ("out/best_model", "the run's best_model"),
                                              ("out/checkpoint-last", "the run's checkpoint-last"),
                                              ("teacher", "--teacher_path"), (".", "--teacher_path")])
def test_export_dir_spares_the_inputs_and_the_runs_own_output(tmp_path, monkeypatch, export_dir, named):
    monkeypatch.chdir(tmp_path)
    settings = distill(tmp_path, teacher_path="teacher", output_dir="out", glue_dir="glue", export_dir=export_dir)
    assert refusal(settings, STAGE_TWO).startswith(f"--export_dir {export_dir} would overwrite {named}")
    check_stage_keeps_inputs(distill(tmp_path, teacher_path="teacher", output_dir="out", glue_dir="glue",
                                     export_dir="out/export"), STAGE_TWO)


def test_the_student_builder_and_the_converter_refuse_to_write_over_their_source(tmp_path):
    from tinybert.tools.convert_minilm import convert
    from tinybert.tools.student_builder import build_student

    source = tiny.make_bert(str(tmp_path / "teacher" / "best_model"), layers=2, hidden=32, heads=2)
    before = tree(tmp_path)
    for output in (source, str(tmp_path / "teacher")):
        with pytest.raises(UserError, match="would overwrite --source"):
            build_student(source, output, num_layers=1)
        with pytest.raises(UserError, match="would overwrite --source"):
            convert(source, output)
    assert tree(tmp_path) == before
