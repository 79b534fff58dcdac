"""docs/math.md#what-is-distilled: hidden states and pre-softmax scores, taken without patching any class."""
import numpy as np
import paddle
import pytest
import tiny

from tinybert.data.features import collate, featurize
from tinybert.data.glue import Example
from tinybert.models.internals import forward_with_internals
from tinybert.models.loading import load_model, load_tokenizer
from tinybert.training.evaluate import model_inputs, to_tensors


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("bert") / "m")
    tiny.make_bert(path, layers=3, hidden=24, heads=3, intermediate=48)
    model = load_model("bert", path)
    model.eval()
    tokenizer = load_tokenizer("bert", path)
    examples = [Example(("the good movie was very nice",), 1, 1), Example(("bad plot",), 0, 2)]
    batch = to_tensors(collate(featurize(examples, tokenizer, 32, False), [0, 1], tokenizer.pad_token_id))
    return model, batch


def test_hidden_states_are_embeddings_then_every_layer_output(bert):
    model, batch = bert
    out = forward_with_internals(model, model_inputs(batch))
    assert len(out.hidden) == 4 and len(out.scores) == 3
    sequence, _ = model.bert(**model_inputs(batch))
    np.testing.assert_allclose(out.hidden[-1].numpy(), sequence.numpy(), atol=1e-6)
    embeddings = model.bert.embeddings(batch["input_ids"], batch["token_type_ids"])
    np.testing.assert_allclose(out.hidden[0].numpy(), embeddings.numpy(), atol=1e-6)


def test_scores_are_q_k_transposed_over_sqrt_d_before_mask_and_softmax(bert):
    model, batch = bert
    out = forward_with_internals(model, model_inputs(batch))
    heads, width = 3, 24
    d = width // heads
    for layer_number, layer in enumerate(model.bert.encoder.layers, start=1):
        x = out.hidden[layer_number - 1].numpy()
        attn = layer.self_attn
        q = x @ attn.q_proj.weight.numpy() + attn.q_proj.bias.numpy()
        k = x @ attn.k_proj.weight.numpy() + attn.k_proj.bias.numpy()
        B, S, _ = q.shape
        q = q.reshape(B, S, heads, d).transpose(0, 2, 1, 3)
        k = k.reshape(B, S, heads, d).transpose(0, 2, 1, 3)
        expected = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
        np.testing.assert_allclose(out.scores[layer_number - 1].numpy(), expected, atol=1e-4)
    # padded key positions still hold raw scores (no -1e4 mask added)
    assert np.abs(out.scores[0].numpy()[1, :, :, -1]).max() < 100


def test_no_hooks_or_class_patches_remain(bert):
    model, batch = bert
    before = dict(vars(paddle.nn.MultiHeadAttention)), dict(vars(paddle.nn.TransformerEncoderLayer))
    forward_with_internals(model, model_inputs(batch))
    assert dict(vars(paddle.nn.MultiHeadAttention)) == before[0]
    assert dict(vars(paddle.nn.TransformerEncoderLayer)) == before[1]
    layers = [model.bert.embeddings] + [l for layer in model.bert.encoder.layers
                                       for l in (layer, layer.self_attn.q_proj, layer.self_attn.k_proj)]
    assert all(not layer._forward_post_hooks for layer in layers)


def test_hooks_are_removed_even_when_the_forward_fails(bert):
    model, batch = bert
    with pytest.raises(Exception):
        forward_with_internals(model, {"input_ids": batch["input_ids"], "bogus": 1})
    assert not model.bert.embeddings._forward_post_hooks
