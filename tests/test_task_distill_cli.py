"""The seed README's two task_distill.py commands, end to end, as subprocesses."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *flags, cwd):
    result = subprocess.run([sys.executable, os.path.join(ROOT, script), *flags], cwd=cwd,
                            capture_output=True, text=True, timeout=300)
    return result


def distill_flags(student, output, stage1, lr, extra=()):
    flags = ["--model_type", "tinybert", "--student_model_name_or_path", student, "--task_name", "sst-2"]
    if stage1:
        flags.append("--intermediate_distill")
    flags += ["--max_seq_length", "64", "--batch_size", "16", "--T", "1", "--teacher_model_type", "bert",
              "--teacher_path", "teacher_ft/best_model", "--learning_rate", lr, "--num_train_epochs", "3",
              "--logging_steps", "10", "--save_steps", "25", "--output_dir", output, "--device", "cpu",
              "--glue_dir", "glue", *extra]
    return flags


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A teacher that fits the tiny SST-2 dev set, and a 2-stage distillation run of a narrower student."""
    work = tmp_path_factory.mktemp("e2e")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=400, n_dev=64)
    tiny.make_bert(str(work / "teacher"), layers=4, hidden=32)
    tiny.make_bert(str(work / "student"), layers=2, hidden=16, model_type="tinybert", fit_size=32)
    done = run("finetune_teacher.py", "--model_type", "bert", "--model_name_or_path", "teacher", "--task_name", "SST-2",
               "--max_seq_length", "64", "--batch_size", "16", "--learning_rate", "1e-3", "--num_train_epochs", "4",
               "--logging_steps", "50", "--save_steps", "25", "--output_dir", "teacher_ft", "--device", "cpu",
               "--glue_dir", "glue", cwd=work)
    assert done.returncode == 0, done.stderr
    stage1 = run("task_distill.py", *distill_flags("student", "./tmp/SST-2/", True, "5e-3"), cwd=work)
    assert stage1.returncode == 0, stage1.stderr
    stage2 = run("task_distill.py", *distill_flags("./tmp/SST-2/best_inter_model", "./tmp/SST-2/", False, "3e-3"), cwd=work)
    assert stage2.returncode == 0, stage2.stderr
    return work, stage1.stdout, stage2.stdout


def dev_predictions(model_class, path, work):
    from paddlenlp.transformers import BertTokenizer

    from tinybert.data.features import featurize
    from tinybert.data.glue import read_examples
    from tinybert.data.tasks import get_task
    from tinybert.training.evaluate import predict_logits

    model = model_class.from_pretrained(path)
    tokenizer = BertTokenizer.from_pretrained(path)
    examples = read_examples(str(work / "glue" / "SST-2" / "dev.tsv"), get_task("SST-2")).examples
    features = featurize(examples, tokenizer, 64, False)
    logits = predict_logits(model, features, 32, tokenizer.pad_token_id)
    return logits.argmax(-1), features.labels


def test_stage_one_prints_the_layer_map_and_every_loss_term(workdir):
    _, out1, _ = workdir
    assert "layer map: hidden (student->teacher, 0 = embeddings): 0->0, 1->2, 2->4" in out1
    for term in ("hidden_s0_t0", "hidden_s1_t2", "hidden_s2_t4", "attn_s1_t2", "attn_s2_t4", "hidden=", "attention=", "loss="):
        assert term in out1


def test_stage_one_checkpoint_loads_with_paddlenlp_and_carries_trained_projections(workdir):
    import paddle
    from paddlenlp.transformers import TinyBertForSequenceClassification

    work, _, _ = workdir
    saved = TinyBertForSequenceClassification.from_pretrained(str(work / "tmp/SST-2/best_inter_model"))
    initial = paddle.load(str(work / "student" / "model_state.pdparams"))
    trained = saved.tinybert.fit_denses[1].weight.numpy()
    assert trained.shape == (16, 32)
    assert not np.allclose(trained, initial["tinybert.fit_denses.1.weight"].numpy())


def test_distilled_student_agrees_with_the_teacher_on_the_dev_set(workdir):
    from paddlenlp.transformers import (
        BertForSequenceClassification,
        TinyBertForSequenceClassification,
    )

    work, _, _ = workdir
    teacher_preds, labels = dev_predictions(BertForSequenceClassification, str(work / "teacher_ft/best_model"), work)
    student_preds, _ = dev_predictions(TinyBertForSequenceClassification, str(work / "tmp/SST-2/best_model"), work)
    assert np.mean(teacher_preds == labels) >= 0.95  # the teacher fits the tiny dev set
    assert np.mean(student_preds == teacher_preds) >= 0.95


def test_both_stages_append_their_evaluations_and_write_visualdl_logs(workdir):
    work, _, _ = workdir
    with open(work / "tmp/SST-2/eval_results.jsonl") as handle:
        records = [json.loads(line) for line in handle]
    stages = {r["stage"] for r in records}
    assert stages == {"intermediate", "prediction"}
    assert all("dev_loss" in r for r in records if r["stage"] == "intermediate")
    assert all("acc" in r for r in records if r["stage"] == "prediction")
    assert os.listdir(work / "tmp/SST-2/vdl")


def test_use_aug_reads_the_canonical_directory_whatever_the_case_typed(workdir, tmp_path):
    work, _, _ = workdir
    shutil.copy(work / "glue/SST-2/train.tsv", work / "glue/SST-2/train_aug.tsv")
    result = run("task_distill.py", *distill_flags("student", str(tmp_path / "aug"), True, "5e-3",
                                                    ("--use_aug", "--max_steps", "2")), cwd=work)
    assert result.returncode == 0, result.stderr
    assert os.path.join("glue", "SST-2", "train_aug.tsv") in result.stdout


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_vocabulary_mismatch_is_refused(workdir, tmp_path):
    work, _, _ = workdir
    other = tmp_path / "other"
    tiny.make_bert(str(other), layers=2, hidden=16, model_type="tinybert", fit_size=32)
    with open(other / "vocab.txt", "a") as handle:
        handle.write("extra\n")
    result = run("task_distill.py", *distill_flags(str(other), str(tmp_path / "o"), True, "1e-3"), cwd=work)
    assert_one_line_error(result, "have different vocabularies", "build one from the teacher")


def test_depths_that_do_not_divide_need_an_explicit_map(workdir, tmp_path):
    work, _, _ = workdir
    tiny.make_bert(str(tmp_path / "s3"), layers=3, hidden=16, model_type="tinybert", fit_size=32)
    result = run("task_distill.py", *distill_flags(str(tmp_path / "s3"), str(tmp_path / "o"), True, "1e-3"), cwd=work)
    assert_one_line_error(result, "not a multiple", "--layer_map")
    result = run("task_distill.py", *distill_flags(str(tmp_path / "s3"), str(tmp_path / "o2"), True, "1e-3",
                                                   ("--layer_map", "1,3,4", "--max_steps", "1")), cwd=work)
    assert result.returncode == 0, result.stderr
    assert "attention: 1->1, 2->3, 3->4" in result.stdout


@pytest.mark.parametrize("flag,value,fragment", [("--T", "0", "--T"), ("--learning_rate", "-1", "--learning_rate"),
                                                  ("--batch_size", "0", "--batch_size")])
def test_bad_numeric_flags_are_refused(workdir, tmp_path, flag, value, fragment):
    work, _, _ = workdir
    result = run("task_distill.py", *distill_flags("student", str(tmp_path / "o"), True, "1e-3", (flag, value)), cwd=work)
    assert_one_line_error(result, fragment)


def test_teacher_fine_tuned_for_another_label_count_is_refused(workdir, tmp_path):
    work, _, _ = workdir
    tiny.make_bert(str(tmp_path / "t3"), layers=4, num_labels=3)
    flags = distill_flags("student", str(tmp_path / "o"), True, "1e-3")
    flags[flags.index("teacher_ft/best_model")] = str(tmp_path / "t3")
    assert_one_line_error(run("task_distill.py", *flags, cwd=work), "3 outputs")
