"""tinybert.tools.convert_minilm: a Hugging Face BERT (safetensors) ported to PaddleNLP, checked by numpy."""
import json
import os

import numpy as np
import pytest
from scripts_import import load_script
from tiny import VOCAB, write_vocab

from tinybert.errors import UserError
from tinybert.tools import convert_minilm as cm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_MINILM = os.path.join(ROOT, "assets", "minilm")
HF_CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": len(VOCAB), "hidden_size": 32,
             "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48, "hidden_act": "gelu",
             "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 40,
             "type_vocab_size": 2, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
             "position_embedding_type": "absolute"}


def hf_weights(config=HF_CONFIG, seed=0, prefix=""):
    """Random weights in Hugging Face BertModel naming, scaled so every layer matters."""
    rng = np.random.default_rng(seed)
    h, inner = config["hidden_size"], config["intermediate_size"]

    def normal(*shape, scale=0.2):
        return rng.normal(0, scale, shape).astype(np.float32)

    w = {"embeddings.position_ids": np.arange(config["max_position_embeddings"], dtype=np.int64)[None],
         "embeddings.word_embeddings.weight": normal(config["vocab_size"], h, scale=1.0),
         "embeddings.position_embeddings.weight": normal(config["max_position_embeddings"], h, scale=0.5),
         "embeddings.token_type_embeddings.weight": normal(config["type_vocab_size"], h, scale=0.5),
         "embeddings.LayerNorm.weight": 1 + normal(h), "embeddings.LayerNorm.bias": normal(h),
         "pooler.dense.weight": normal(h, h), "pooler.dense.bias": normal(h)}
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            w[p + name + ".weight"], w[p + name + ".bias"] = normal(h, h), normal(h)
        w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"] = normal(inner, h), normal(inner)
        w[p + "output.dense.weight"], w[p + "output.dense.bias"] = normal(h, inner), normal(h)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + name + ".weight"], w[p + name + ".bias"] = 1 + normal(h), normal(h)
    return {prefix + k: v for k, v in w.items()}


def write_hf_model(directory, weights=None, config=HF_CONFIG):
    from safetensors.numpy import save_file

    os.makedirs(directory, exist_ok=True)
    save_file(hf_weights(config) if weights is None else weights, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "config.json"), "w") as handle:
        json.dump(config, handle)
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as handle:
        json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, handle)
    write_vocab(str(directory))
    return str(directory)


@pytest.fixture(scope="module")
def ported(tmp_path_factory):
    base = tmp_path_factory.mktemp("port")
    source = write_hf_model(base / "hf")
    cm.convert(source, str(base / "paddle"))
    return source, str(base / "paddle")


def batch():
    """A padded batch with a sentence pair (token types 0 and 1)."""
    ids = np.array([[2, 7, 20, 30, 3, 0, 0, 0], [2, 5, 6, 3, 8, 9, 10, 3], [2, 11, 3, 0, 0, 0, 0, 0]])
    types = np.array([[0] * 8, [0, 0, 0, 0, 1, 1, 1, 1], [0] * 8])
    return ids, types


def test_paddle_forward_matches_the_numpy_forward(ported):
    source, target = ported
    ids, types = batch()
    diff = cm.max_abs_diff(cm.read_hf_weights(source), cm.read_hf_config(source), cm.load_paddle_bert(target),
                           ids, types)
    assert diff["sequence"] < 1e-5 and diff["pooled"] < 1e-5


def test_the_numpy_check_catches_a_missing_transpose(ported):
    import paddle

    source, target = ported
    model = cm.load_paddle_bert(target)
    q = model.encoder.layers[1].self_attn.q_proj.weight
    q.set_value(paddle.to_tensor(q.numpy().T.copy()))
    diff = cm.max_abs_diff(cm.read_hf_weights(source), cm.read_hf_config(source), model, *batch())
    assert diff["sequence"] > 1e-2


def test_linear_weights_are_transposed_and_the_rest_copied(ported):
    import paddle

    source, target = ported
    hf = hf_weights()
    state = {k: v.numpy() for k, v in paddle.load(os.path.join(target, "model_state.pdparams")).items()}
    np.testing.assert_array_equal(state["bert.encoder.layers.0.self_attn.q_proj.weight"],
                                  hf["encoder.layer.0.attention.self.query.weight"].T)
    np.testing.assert_array_equal(state["bert.encoder.layers.1.linear1.weight"],
                                  hf["encoder.layer.1.intermediate.dense.weight"].T)
    np.testing.assert_array_equal(state["bert.pooler.dense.weight"], hf["pooler.dense.weight"].T)
    np.testing.assert_array_equal(state["bert.encoder.layers.1.norm2.bias"], hf["encoder.layer.1.output.LayerNorm.bias"])
    np.testing.assert_array_equal(state["bert.embeddings.word_embeddings.weight"],
                                  hf["embeddings.word_embeddings.weight"])
    assert not any(k.startswith("classifier") for k in state)


def test_config_and_tokenizer_files_come_from_the_source(ported):
    _, target = ported
    config = json.load(open(os.path.join(target, "config.json")))
    assert config["type_vocab_size"] == 2 and config["num_hidden_layers"] == 2 and config["hidden_size"] == 32
    assert config["layer_norm_eps"] == 1e-12 and config["vocab_size"] == len(VOCAB)
    assert open(os.path.join(target, "vocab.txt")).read().split() == VOCAB
    assert os.path.isfile(os.path.join(target, "tokenizer_config.json"))


def test_classifier_and_suite_loaders_load_the_encoder(ported):
    from paddlenlp.transformers import BertForSequenceClassification, BertTokenizer

    from tinybert.models.loading import load_matching, load_model, read_state_dict

    _, target = ported
    expected = cm.load_paddle_bert(target).state_dict()
    classifier = BertForSequenceClassification.from_pretrained(target, num_labels=3)
    suite = load_model("bert", target, num_labels=2)
    for model in (classifier, suite):
        for name, value in model.bert.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), expected[name].numpy())
    left_out = load_matching(suite, read_state_dict(os.path.join(target, "model_state.pdparams")))
    assert left_out == ["classifier.bias", "classifier.weight"]
    assert BertTokenizer.from_pretrained(target).convert_tokens_to_ids(["good"]) == [VOCAB.index("good")]


def test_prefixed_names_old_layernorm_names_and_heads_are_handled(tmp_path):
    weights = hf_weights(prefix="bert.")
    for key in [k for k in weights if k.endswith("LayerNorm.weight")]:
        weights[key.replace("LayerNorm.weight", "LayerNorm.gamma")] = weights.pop(key)
    weights["cls.predictions.bias"] = np.zeros(len(VOCAB), np.float32)  # a pretraining head: ignored
    source = write_hf_model(tmp_path / "hf", weights)
    cm.convert(source, str(tmp_path / "paddle"))
    diff = cm.max_abs_diff(cm.read_hf_weights(source), cm.read_hf_config(source),
                           cm.load_paddle_bert(str(tmp_path / "paddle")), *batch())
    assert max(diff.values()) < 1e-5


def test_missing_or_unknown_tensors_are_user_errors(tmp_path):
    weights = hf_weights()
    del weights["encoder.layer.1.output.dense.bias"]
    with pytest.raises(UserError, match="lacks 1 BERT tensors"):
        cm.convert(write_hf_model(tmp_path / "a", weights), str(tmp_path / "out"))
    weights = hf_weights()
    weights["encoder.layer.0.attention.self.distance_embedding.weight"] = np.zeros((3, 32), np.float32)
    with pytest.raises(UserError, match="does not know"):
        cm.convert(write_hf_model(tmp_path / "b", weights), str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def test_unsupported_configs_are_user_errors(tmp_path):
    for change in ({"hidden_act": "gelu_new"}, {"position_embedding_type": "relative_key"}):
        with pytest.raises(UserError):
            cm.convert(write_hf_model(tmp_path / "c", config={**HF_CONFIG, **change}), str(tmp_path / "out"))


def test_cli_converts_checks_and_prints_the_difference(tmp_path, capsys):
    script = load_script("convert_minilm")
    source = write_hf_model(tmp_path / "hf")
    script.main(["--source", source, "--output_dir", str(tmp_path / "paddle"), "--check"])
    out = capsys.readouterr().out
    assert "max abs diff numpy vs Paddle" in out
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--source", str(tmp_path / "nothing"), "--output_dir", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "fetch_assets.py" in err and err.count("\n") == 1


@pytest.mark.skipif(not os.path.isfile(os.path.join(REAL_MINILM, "model.safetensors")),
                    reason="real MiniLM not fetched (python scripts/fetch_assets.py minilm)")
def test_real_minilm_port_matches_numpy(tmp_path):
    cm.convert(REAL_MINILM, str(tmp_path / "minilm"))
    diff = cm.check(REAL_MINILM, str(tmp_path / "minilm"))
    assert diff["sequence"] < 1e-4 and diff["pooled"] < 1e-4
