"""tinybert.tools.student_builder: a TinyBERT student made of a BERT checkpoint's own layers."""
import json
import os

import numpy as np
import pytest
from scripts_import import load_script
from tiny import make_bert

from tinybert.errors import UserError
from tinybert.tools import student_builder as sb

SOURCE_LAYERS = 4


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_bert(str(tmp_path_factory.mktemp("teacher")), layers=SOURCE_LAYERS, heads=2, hidden=32, seed=3)


def saved_state(directory):
    import paddle

    return {k: v.numpy() for k, v in paddle.load(os.path.join(directory, "model_state.pdparams")).items()}


def test_kept_layers_equal_the_source_layers(teacher, tmp_path):
    sb.build_student(teacher, str(tmp_path / "student"), layers=[0, 2, 3])
    source, student = saved_state(teacher), saved_state(str(tmp_path / "student"))
    for new, old in enumerate([0, 2, 3]):
        prefix = f"tinybert.encoder.layers.{new}."
        names = [k for k in student if k.startswith(prefix)]
        assert len(names) == 16
        for name in names:
            np.testing.assert_array_equal(student[name], source[name.replace(prefix, f"bert.encoder.layers.{old}.")])
    for name in [k for k in source if k.startswith(("bert.embeddings.", "bert.pooler."))]:
        np.testing.assert_array_equal(student["tiny" + name], source[name])
    assert not any(k.startswith("tinybert.encoder.layers.3.") for k in student)


def test_from_pretrained_loads_the_student_with_the_right_depth(teacher, tmp_path):
    from paddlenlp.transformers import TinyBertForSequenceClassification

    out = str(tmp_path / "student")
    sb.build_student(teacher, out, num_layers=2)
    model = TinyBertForSequenceClassification.from_pretrained(out)
    assert model.config.num_hidden_layers == 2 and len(model.tinybert.encoder.layers) == 2
    assert model.config.model_type == "tinybert" and model.config.fit_size == 32
    saved = saved_state(out)
    for name, value in model.state_dict().items():
        if name in saved:
            np.testing.assert_array_equal(value.numpy(), saved[name])
    assert json.load(open(os.path.join(out, "student_source.json")))["kept_layers_0_based"] == [1, 3]


def test_the_suite_loads_the_student_and_its_tokenizer(teacher, tmp_path):
    from tinybert.models.loading import load_model, load_tokenizer

    out = str(tmp_path / "student")
    sb.build_student(teacher, out, layers=[1])
    model = load_model("tinybert", out, num_labels=2)
    assert len(model.tinybert.encoder.layers) == 1
    assert load_tokenizer("tinybert", out).vocab_size == load_tokenizer("bert", teacher).vocab_size


def test_projections_are_per_layer_identities(teacher, tmp_path):
    sb.build_student(teacher, str(tmp_path / "student"), layers=[1, 3])
    state = saved_state(str(tmp_path / "student"))
    fits = sorted({k.split(".")[2] for k in state if k.startswith("tinybert.fit_denses.")})
    assert fits == ["0", "1", "2"]  # one per hidden state: embeddings + 2 layers
    for i in fits:
        np.testing.assert_array_equal(state[f"tinybert.fit_denses.{i}.weight"], np.eye(32, dtype=np.float32))
        np.testing.assert_array_equal(state[f"tinybert.fit_denses.{i}.bias"], np.zeros(32, dtype=np.float32))
    assert not any(k.startswith("tinybert.fit_dense.") for k in state)  # no shared v1 projection


@pytest.mark.parametrize("source, student", [(6, 3), (12, 4), (12, 6), (4, 4), (4, 1), (24, 8)])
def test_num_layers_keeps_the_teacher_layers_the_uniform_map_assigns(source, student):
    """Student layer j starts as the layer it will be distilled from (1-based in the map)."""
    from tinybert.distillation import mapping

    taught = [teacher for _, teacher in mapping.uniform(source, student).attention]
    assert sb.evenly_spaced_layers(source, student) == [t - 1 for t in taught]


@pytest.mark.parametrize("source, student", [(6, 4), (7, 3), (12, 5)])
def test_num_layers_spreads_non_dividing_depths_and_always_keeps_the_last_layer(source, student):
    kept = sb.evenly_spaced_layers(source, student)
    assert len(kept) == student and kept == sorted(set(kept)) and kept[-1] == source - 1
    gaps = [b - a for a, b in zip([-1] + kept, kept)]
    assert max(gaps) - min(gaps) <= 1  # as even as integers allow


def test_a_student_with_every_layer_encodes_like_the_source(teacher, tmp_path):
    import paddle
    from paddlenlp.transformers import (
        BertForSequenceClassification,
        TinyBertForSequenceClassification,
    )

    out = str(tmp_path / "student")
    sb.build_student(teacher, out, num_layers=SOURCE_LAYERS, keep_classifier=True)
    source = BertForSequenceClassification.from_pretrained(teacher)
    student = TinyBertForSequenceClassification.from_pretrained(out)
    source.eval()
    student.eval()
    ids = paddle.to_tensor([[2, 7, 20, 30, 3, 0], [2, 5, 6, 3, 8, 3]])
    with paddle.no_grad():
        for mine, theirs in zip(student.tinybert(ids)[:2], source.bert(ids)[:2]):  # sequence, pooled
            np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-6)
    np.testing.assert_array_equal(student.classifier.weight.numpy(), source.classifier.weight.numpy())


def test_a_bare_bert_model_source_works(tmp_path):
    from paddlenlp.transformers import BertModel
    from tiny import write_vocab

    teacher = make_bert(str(tmp_path / "t"), layers=2)
    bare = BertModel.from_pretrained(teacher)
    bare.save_pretrained(str(tmp_path / "bare"))
    write_vocab(str(tmp_path / "bare"))
    record = sb.build_student(str(tmp_path / "bare"), str(tmp_path / "student"), layers=[1])
    np.testing.assert_array_equal(saved_state(str(tmp_path / "student"))["tinybert.encoder.layers.0.linear1.weight"],
                                  bare.encoder.layers[1].linear1.weight.numpy())
    assert record["classifier"].startswith("random")


@pytest.mark.parametrize("argv, message", [
    (["--layers", "0,9"], "layer 9 does not exist"),
    (["--layers", "2,1"], "increasing order"),
    (["--layers", "one"], "comma-separated"),
    (["--num_layers", "5"], "choose 1 to 4"),
])
def test_bad_layer_choices_are_one_line_errors(teacher, tmp_path, capsys, argv, message):
    script = load_script("build_student")
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--source", teacher, "--output_dir", str(tmp_path / "s")] + argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "s")


def test_a_source_that_is_not_a_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        sb.build_student(str(tmp_path), str(tmp_path / "s"), layers=[0])
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="no model_state.pdparams"):
        sb.build_student(str(tmp_path), str(tmp_path / "s"), layers=[0])


def test_cli_reports_the_kept_layers(teacher, tmp_path, capsys):
    script = load_script("build_student")
    script.main(["--source", teacher, "--num_layers", "2", "--output_dir", str(tmp_path / "s")])
    assert "0-based source layers 1,3" in capsys.readouterr().out
