"""tinybert.models.loading: checkpoints load completely or not at all (bare encoders, heads, fused
attention, weights files)."""
import os

import numpy as np
import pytest
import tiny

from tinybert.errors import UserError
from tinybert.models.loading import (
    load_masked_lm,
    load_model,
    load_model_and_keys,
    read_weights,
    weights_path,
)


def save_bare_encoder(classifier_dir, target, model_type):
    """What ``BertModel``/``TinyBertModel.save_pretrained`` writes: names without ``bert.``."""
    from paddlenlp.transformers import BertModel, BertTokenizer, TinyBertModel

    encoder_class = BertModel if model_type == "bert" else TinyBertModel
    encoder = encoder_class.from_pretrained(classifier_dir)
    encoder.save_pretrained(target)
    BertTokenizer.from_pretrained(classifier_dir).save_pretrained(target)
    return encoder


def assert_same_encoder(model, encoder):
    ours = {k: v.numpy() for k, v in model.state_dict().items()}
    prefix = model.base_model_prefix + "."
    for name, value in encoder.state_dict().items():
        np.testing.assert_array_equal(ours[prefix + name], value.numpy(), err_msg=name)


@pytest.mark.parametrize("model_type", ["bert", "tinybert"])
def test_a_bare_encoder_checkpoint_loads_every_encoder_weight(tmp_path, model_type, capsys):
    source = tiny.make_bert(str(tmp_path / "full"), layers=2, hidden=16, model_type=model_type, seed=4)
    encoder = save_bare_encoder(source, str(tmp_path / "bare"), model_type)
    state = read_weights(weights_path(str(tmp_path / "bare")))
    assert not any(k.startswith(("bert.", "tinybert.")) for k in state)  # really bare
    model, info = load_model_and_keys(model_type, str(tmp_path / "bare"), "--model_name_or_path", num_labels=2)
    assert_same_encoder(model, encoder)
    assert {k for k in info.loaded if not k.startswith("classifier.")} >= {
        f"{model.base_model_prefix}.{k}" for k in encoder.state_dict()}
    note = capsys.readouterr().out
    assert "classifier" in note and "embeddings" not in note  # only the head starts fresh


def test_a_bare_encoder_teacher_shows_it_has_no_classifier(tmp_path):
    """Distillation refuses a teacher whose checkpoint lacks ``classifier.weight``; a bare
    encoder must be seen as that (no head), not as a checkpoint that loaded nothing."""
    source = tiny.make_bert(str(tmp_path / "full"), layers=2, hidden=16)
    save_bare_encoder(source, str(tmp_path / "bare"), "bert")
    _, info = load_model_and_keys("bert", str(tmp_path / "bare"), "--teacher_path", num_labels=2)
    assert "classifier.weight" not in info.shapes
    assert info.shapes["bert.embeddings.word_embeddings.weight"] == (len(tiny.VOCAB), 16)


def drop_weights(directory, predicate):
    import paddle

    path = os.path.join(directory, "model_state.pdparams")
    state = paddle.load(path)
    paddle.save({k: v for k, v in state.items() if not predicate(k)}, path)


def test_a_checkpoint_missing_encoder_weights_is_refused(tmp_path):
    directory = tiny.make_bert(str(tmp_path / "m"), layers=2, hidden=16)
    drop_weights(directory, lambda k: k.startswith("bert.encoder.layers.1."))
    with pytest.raises(UserError) as caught:
        load_model("bert", directory, "--teacher_path")
    message = str(caught.value)
    assert message.startswith(f"--teacher_path {directory}: 16 weight(s)") and "\n" not in message
    assert "bert.encoder.layers.1." in message and "only the classifier head may be missing" in message


def test_a_checkpoint_of_the_other_model_type_is_refused_with_the_type_to_use(tmp_path):
    directory = tiny.make_bert(str(tmp_path / "m"), layers=2, hidden=16)  # bert.* names
    with pytest.raises(UserError, match="named bert\\.\\*, so load it as a 'bert' model"):
        load_model("tinybert", directory, "--student_model_name_or_path")


def test_a_tinybert_may_lack_projections_pooler_and_classifier(tmp_path, capsys):
    directory = tiny.make_bert(str(tmp_path / "m"), layers=2, hidden=16, model_type="tinybert")
    drop_weights(directory, lambda k: k.startswith(("classifier.", "tinybert.pooler.", "tinybert.fit_dense")))
    model, info = load_model_and_keys("tinybert", directory, "--student_model_name_or_path")
    assert "tinybert.encoder.layers.1.linear2.weight" in info.loaded
    assert "random initialisation" in capsys.readouterr().out
    directory = tiny.make_bert(str(tmp_path / "b"), layers=2, hidden=16)
    drop_weights(directory, lambda k: k.startswith("bert.pooler."))
    with pytest.raises(UserError, match="bert.pooler.dense"):
        load_model("bert", directory)  # a BERT always saves its pooler: absent means broken


def test_a_refused_load_is_one_line_and_exit_2(tmp_path, capsys):
    from tinybert.errors import run_cli

    directory = tiny.make_bert(str(tmp_path / "teacher"), layers=2, hidden=16)
    drop_weights(directory, lambda k: k.startswith("bert.embeddings."))
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: load_model("bert", directory, "--teacher_path"))()
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(err) == 1
    assert err[0].startswith(f"error: --teacher_path {directory}: 5 weight(s)")


def save_fused_bert(directory):
    import paddle
    from paddlenlp.transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizer,
    )

    paddle.seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=len(tiny.VOCAB), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, type_vocab_size=2, num_labels=2, fuse=True))
    assert not hasattr(model.bert.encoder, "layers")  # this Paddle builds the fused layers
    model.save_pretrained(directory)
    BertTokenizer(tiny.write_vocab(directory), do_lower_case=True).save_pretrained(directory)
    return directory


def test_a_model_with_fused_attention_is_refused_with_one_line(tmp_path):
    directory = save_fused_bert(str(tmp_path / "fused"))
    with pytest.raises(UserError) as caught:
        load_model("bert", directory, "--teacher_path")
    message = str(caught.value)
    assert message.startswith(f"--teacher_path {directory}: ") and "fused attention" in message
    assert "fuse=False" in message and "\n" not in message


def test_a_safetensors_checkpoint_loads_like_pdparams(tmp_path):
    import paddle
    from safetensors.numpy import save_file

    directory = tiny.make_bert(str(tmp_path / "m"), layers=2, hidden=16)
    reference = load_model("bert", directory)
    path = os.path.join(directory, "model_state.pdparams")
    save_file({k: v.numpy() for k, v in paddle.load(path).items()}, os.path.join(directory, "model.safetensors"))
    os.remove(path)
    again = load_model("bert", directory)
    for name, value in reference.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[name].numpy(), value.numpy())


def test_masked_lm_loads_through_models_and_refuses_incomplete_checkpoints(tmp_path):
    import paddle

    directory = tiny.make_bert_mlm(str(tmp_path / "mlm"))
    model, tokenizer = load_masked_lm(directory)
    assert not model.training and tokenizer.vocab_size == len(tiny.VOCAB)
    classifier = tiny.make_bert(str(tmp_path / "classifier"))
    with pytest.raises(UserError, match="no masked-LM head"):
        load_masked_lm(classifier)
    path = os.path.join(directory, "model_state.pdparams")
    paddle.save({k: v for k, v in paddle.load(path).items() if ".layers.0." not in k}, path)
    with pytest.raises(UserError, match="only the classifier head may be missing"):
        load_masked_lm(directory)
