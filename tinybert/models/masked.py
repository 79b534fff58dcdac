"""A BERT classifier's forward pass with structure masks: what the pruned model computes.

The forward is PaddleNLP's ``BertForSequenceClassification`` (post-LayerNorm Transformer
layers, additive -1e4 padding mask, tanh pooler), recomputed here from the model's own layers
so that four kinds of multipliers (:class:`gates.Masks`) can enter where a cut would act:

- ``hidden`` [H]: every residual-stream state (the embeddings' output, each LayerNorm's output,
  the pooled vector) is multiplied by it, and each LayerNorm normalises over the dimensions whose
  multiplier is not zero only, as a LayerNorm of the sliced width does;
- ``heads`` [N, heads]: each head's context vectors, before the output projection;
- ``neurons`` [N, I]: the FFN activations;
- ``layers`` [N]: a layer's output is ``m * layer(x) + (1 - m) * x``, so a closed layer passes its
  input on, as a model without that layer does.

With 0/1 masks the logits are those of the physically sliced model (``width.slice_encoder`` of
the kept structures), up to rounding; with no masks, those of the model itself. Dropout acts
where BERT's does, so the pruned model trains as the teacher did.
"""
from __future__ import annotations

import math
from typing import Dict

import paddle
import paddle.nn.functional as F

from .gates import Masks
from .internals import Internals
from .loading import base_model

PADDING = -1e4  # PaddleNLP's additive attention mask


def _norm(x, norm, support):
    """LayerNorm over the dimensions where ``support`` is 1 (all of them for None); 0 elsewhere."""
    if support is None:
        return norm(x)
    count = support.sum()
    mean = (x * support).sum(axis=-1, keepdim=True) / count
    centred = (x - mean) * support
    variance = (centred * centred).sum(axis=-1, keepdim=True) / count
    return (centred / paddle.sqrt(variance + norm._epsilon) * norm.weight + norm.bias) * support


def _scaled(x, multiplier):
    return x if multiplier is None else x * multiplier


def _attention(layer, x, additive, heads, training: bool, with_scores: bool):
    """(output before the residual, pre-softmax scores or None) of one layer's self-attention, computed
    as Paddle's ``MultiHeadAttention`` does; the scores as ``internals.attention_scores`` does."""
    attention = layer.self_attn
    batch, length = x.shape[0], x.shape[1]
    split = lambda t: t.reshape([batch, length, attention.num_heads, -1]).transpose([0, 2, 1, 3])  # noqa: E731
    q, k, v = split(attention.q_proj(x)), split(attention.k_proj(x)), split(attention.v_proj(x))
    scores = paddle.matmul(q, k, transpose_y=True) / math.sqrt(q.shape[-1]) if with_scores else None
    product = paddle.matmul(q * (q.shape[-1] ** -0.5), k, transpose_y=True)
    probs = F.dropout(F.softmax(product + additive, axis=-1), attention.dropout, training=training)
    context = paddle.matmul(probs, v)
    if heads is not None:
        context = context * heads.reshape([1, -1, 1, 1])
    context = context.transpose([0, 2, 1, 3]).reshape([batch, length, -1])
    return attention.out_proj(context), scores


def masked_forward(model, inputs: Dict, masks: Masks = None, skip_closed_layers: bool = False,
                   with_scores: bool = True) -> Internals:
    """Logits, hidden states (``hidden[0]`` the embeddings' output) and pre-softmax scores of
    ``model`` (a BERT classifier) under ``masks``. ``skip_closed_layers``: a layer whose multiplier
    is exactly 0 is not computed (its scores are then None); only for a single process, where a
    parameter may go without a gradient for a step."""
    masks = masks or Masks()
    encoder, training = base_model(model), model.training
    hidden_mask = masks.hidden
    support = None if hidden_mask is None else (hidden_mask > 0).astype(hidden_mask.dtype)
    ids = inputs["input_ids"]
    embeddings = encoder.embeddings
    positions = paddle.arange(ids.shape[1], dtype="int64").unsqueeze(0)
    x = (embeddings.word_embeddings(ids) + embeddings.position_embeddings(positions)
         + embeddings.token_type_embeddings(inputs["token_type_ids"]))
    x = F.dropout(_scaled(_norm(x, embeddings.layer_norm, support), hidden_mask), embeddings.dropout.p,
                  training=training)
    additive = ((1.0 - inputs["attention_mask"].astype(x.dtype)) * PADDING).unsqueeze([1, 2])
    hidden, scores = [x], []
    for index, layer in enumerate(encoder.encoder.layers):
        gate = None if masks.layers is None else masks.layers[index]
        if skip_closed_layers and gate is not None and float(gate) == 0.0:
            hidden.append(x)
            scores.append(None)
            continue
        out, layer_scores = _attention(layer, x, additive, None if masks.heads is None else masks.heads[index],
                                       training, with_scores)
        a = _scaled(_norm(x + layer.dropout1(out), layer.norm1, support), hidden_mask)
        ffn = layer.linear2(_scaled(layer.activation(layer.linear1(a)),
                                    None if masks.neurons is None else masks.neurons[index]))
        y = _scaled(_norm(a + layer.dropout2(ffn), layer.norm2, support), hidden_mask)
        x = y if gate is None else gate * y + (1.0 - gate) * x
        hidden.append(x)
        scores.append(layer_scores)
    pooled = encoder.pooler.dense(x[:, 0])
    if encoder.pooler.pool_act == "tanh":
        pooled = paddle.tanh(pooled)
    logits = model.classifier(model.dropout(_scaled(pooled, hidden_mask)))
    return Internals(hidden=hidden, scores=scores, logits=logits)
