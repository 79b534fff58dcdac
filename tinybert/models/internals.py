"""Hidden states and pre-softmax attention scores of a BERT-family model (docs/math.md#what-is-distilled).

TinyBERT distils ``Q K^T / sqrt(d_head)`` *before* the padding mask and the softmax, but
PaddleNLP's models only return attention probabilities (after softmax and, in training,
dropout). PaddleNLP's own ``to_distill`` replaces ``paddle.nn.MultiHeadAttention._forward``
for the whole process. We instead attach forward hooks to *this model instance* for the
duration of one forward pass: the embedding output, every layer's output, and every layer's
query/key projections. Scores are rebuilt from the captured Q and K; nothing global changes
and the hooks are removed even if the forward fails.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Dict, List

from .loading import base_model


@dataclass
class Internals:
    hidden: List  # hidden[0] = embedding output, hidden[l] = output of layer l; each [B, S, D]
    scores: List  # scores[l - 1] = pre-softmax scores of layer l, [B, H, S, S]
    logits: object


def encoder_layers(model):
    return list(base_model(model).encoder.layers)


def num_layers(model) -> int:
    return len(encoder_layers(model))


def num_heads(model) -> int:
    return encoder_layers(model)[0].self_attn.num_heads


def hidden_size(model) -> int:
    return base_model(model).config.hidden_size


def attention_scores(query, key, heads: int):
    """``Q K^T / sqrt(d_head)`` per head from projected queries/keys of shape [B, S, H*d]."""
    import paddle

    batch, length, width = query.shape
    d_head = width // heads
    q = query.reshape([batch, length, heads, d_head]).transpose([0, 2, 1, 3])
    k = key.reshape([batch, -1, heads, d_head]).transpose([0, 2, 1, 3])
    return paddle.matmul(q, k, transpose_y=True) / math.sqrt(d_head)


@contextlib.contextmanager
def _captured(model):
    outputs: Dict[str, Dict[int, object]] = {"hidden": {}, "query": {}, "key": {}}
    handles = []

    def keep(kind: str, index: int):
        def hook(_layer, _inputs, output):
            outputs[kind][index] = output[0] if isinstance(output, (tuple, list)) else output
        return hook

    handles.append(base_model(model).embeddings.register_forward_post_hook(keep("hidden", 0)))
    for number, layer in enumerate(encoder_layers(model), start=1):
        handles.append(layer.register_forward_post_hook(keep("hidden", number)))
        handles.append(layer.self_attn.q_proj.register_forward_post_hook(keep("query", number)))
        handles.append(layer.self_attn.k_proj.register_forward_post_hook(keep("key", number)))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def forward_with_internals(model, inputs: Dict, with_scores: bool = True) -> Internals:
    """Run ``model(**inputs)`` once and return its hidden states, scores and logits.

    ``model`` may be a ``paddle.DataParallel`` wrapper: hooks go on the inner model, the
    forward goes through the wrapper (which synchronises gradients).
    """
    with _captured(model) as captured:
        logits = model(**inputs)
    depth = num_layers(model)
    hidden = [captured["hidden"][i] for i in range(depth + 1)]
    scores = []
    if with_scores:
        heads = num_heads(model)
        scores = [attention_scores(captured["query"][l], captured["key"][l], heads) for l in range(1, depth + 1)]
    return Internals(hidden=hidden, scores=scores, logits=logits)
