"""Stage 2's teacher logits: computed once, cached beside the token stores, reused by a second
run (a resume, other student settings), recomputed when damaged; equal to a direct prediction."""
import glob
import os

import numpy as np
import pytest
import tiny

from tinybert import api
from tinybert.data.features import featurize
from tinybert.data.glue import read_examples
from tinybert.data.tasks import get_task
from tinybert.models.loading import load_model, load_tokenizer
from tinybert.training.evaluate import predict_logits


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("logits")
    tiny.write_task(str(work / "glue"), "SST-2", n_train=40, n_dev=8)
    tiny.make_bert(str(work / "teacher"), layers=2, hidden=32, heads=2)
    tiny.make_bert(str(work / "student"), layers=1, hidden=32, heads=2, model_type="tinybert")
    return work


def stage_two(work, output, **extra):
    return api.distill(task_name="SST-2", glue_dir=str(work / "glue"), teacher_path=str(work / "teacher"),
                       student_model_name_or_path=str(work / "student"), output_dir=str(work / output),
                       cache_dir=str(work / "cache"), max_seq_length=24, batch_size=8, max_steps=2, save_steps=2,
                       logging_steps=2, eval_batch_size=16, device="cpu", **extra)


def test_teacher_logits_are_cached_reused_and_recomputed_when_damaged(work, capsys):
    stage_two(work, "first")
    assert "computing teacher logits once" in capsys.readouterr().out
    cached, = glob.glob(str(work / "cache" / "teacher-logits-*.npy"))
    spec = get_task("SST-2")
    tokenizer = load_tokenizer("bert", str(work / "teacher"))
    features = featurize(read_examples(str(work / "glue" / "SST-2" / "train.tsv"), spec).examples, tokenizer, 24, False)
    direct = predict_logits(load_model("bert", str(work / "teacher"), num_labels=2), features, 16, tokenizer.pad_token_id)
    np.testing.assert_allclose(np.load(cached), direct, atol=1e-5)

    stage_two(work, "second", learning_rate=1e-3)  # another student setting: same targets
    assert "reused from" in capsys.readouterr().out

    with open(cached, "r+b") as handle:  # a flipped byte in the logits
        handle.seek(os.path.getsize(cached) - 3)
        handle.write(b"\x7f")
    stage_two(work, "third")
    assert "computing teacher logits once" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(cached), direct, atol=1e-5)
