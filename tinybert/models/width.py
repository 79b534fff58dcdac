"""Cutting a BERT's weights down to a narrower student: which rows and columns survive.

A ``Selection`` names, in the teacher's own coordinates, what the student keeps
(docs/math.md#narrow-students-cut-from-the-teacher):

- ``hidden``: the residual-stream dimensions. The residual stream is one vector space that
  every layer reads and writes, so the *same* dimensions are kept everywhere they appear: the
  embeddings' columns, each layer's input rows and output columns, every LayerNorm, the pooler
  and the classifier's rows.
- per kept layer, ``qk`` (query/key dimensions), ``v`` (value dimensions) and ``neurons`` (FFN
  units), as flat indices into the teacher's ``H`` (or ``I``) outputs. Heads stay the teacher's:
  head ``h`` of the student keeps ``d'`` of the ``d`` dimensions of teacher head ``h``, so the
  student has as many attention maps as the teacher and attention distillation still applies.
  Queries and keys keep the same dimensions (a score is their dot product over them).

Slicing is pure numpy on a state dict in PaddleNLP's layout (``nn.Linear`` weights are
``[in, out]``). The one change beyond selection: queries are scaled by ``sqrt(d'/d)``, so that
``q'.k' / sqrt(d')`` equals the teacher's ``q.k / sqrt(d)`` restricted to the kept dimensions:
with nothing cut the factor is 1 and the student is the teacher, and when the cut dimensions
contribute little the student's attention scores start near the teacher's (the target of
stage 1). LayerNorm over a subset of the residual is not the teacher's LayerNorm (its mean and
variance are over fewer dimensions), so a cut student is close to, never equal to, its teacher.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class Selection:
    """What a student keeps, in teacher coordinates; one entry per *kept* layer in the lists."""

    hidden: np.ndarray  # [H'] residual dimensions, increasing
    qk: List[np.ndarray]  # per layer [H'], head-major: head h's kept dims are all in h*d .. h*d + d - 1
    v: List[np.ndarray]  # per layer [H'], likewise
    neurons: List[np.ndarray]  # per layer [I'], increasing
    heads: int
    source_heads: Optional[int] = None  # the teacher's head count when whole heads were dropped (None: ``heads``)

    @property
    def hidden_size(self) -> int:
        return len(self.hidden)

    @property
    def intermediate_size(self) -> int:
        return len(self.neurons[0]) if self.neurons else 0


def describe(selection: Selection) -> dict:
    """The selection as JSON-ready lists of teacher indices (the student's record)."""
    listed = lambda indices: [int(i) for i in indices]  # noqa: E731
    described = {"hidden": listed(selection.hidden), "heads": selection.heads,
                 "layers": [{"qk": listed(qk), "v": listed(v), "neurons": listed(n)}
                            for qk, v, n in zip(selection.qk, selection.v, selection.neurons)]}
    if selection.source_heads and selection.source_heads != selection.heads:
        described["source_heads"] = selection.source_heads
    return described


def top(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest scores, increasing (ties to the lower index)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:count]
    return np.sort(order)


def top_per_head(scores: np.ndarray, heads: int, keep_per_head: int) -> np.ndarray:
    """Flat indices of the ``keep_per_head`` best dimensions of each head, head by head."""
    per_head = len(scores) // heads
    return np.concatenate([h * per_head + top(scores[h * per_head:(h + 1) * per_head], keep_per_head)
                           for h in range(heads)])


def select(hidden_scores: np.ndarray, qk_scores: Sequence[np.ndarray], v_scores: Sequence[np.ndarray],
           neuron_scores: Sequence[np.ndarray], heads: int, hidden_size: int, intermediate_size: int) -> Selection:
    """The best-scoring dimensions of each kind (one score array per kept layer)."""
    per_head = hidden_size // heads
    return Selection(hidden=top(hidden_scores, hidden_size),
                     qk=[top_per_head(s, heads, per_head) for s in qk_scores],
                     v=[top_per_head(s, heads, per_head) for s in v_scores],
                     neurons=[top(s, intermediate_size) for s in neuron_scores], heads=heads)


def full_selection(teacher_hidden: int, teacher_intermediate: int, layers: int, heads: int) -> Selection:
    """Everything kept: slicing with it copies the teacher's weights unchanged."""
    every = lambda size: np.arange(size)  # noqa: E731
    return Selection(hidden=every(teacher_hidden), qk=[every(teacher_hidden) for _ in range(layers)],
                     v=[every(teacher_hidden) for _ in range(layers)],
                     neurons=[every(teacher_intermediate) for _ in range(layers)], heads=heads)


def random_selection(teacher_hidden: int, teacher_intermediate: int, layers: int, heads: int, hidden_size: int,
                     intermediate_size: int, seed: int) -> Selection:
    """A selection of the same shape drawn at random: the baseline importance must beat."""
    rng = np.random.default_rng(seed)
    draw = lambda size: rng.random(size)  # noqa: E731
    return select(draw(teacher_hidden), [draw(teacher_hidden) for _ in range(layers)],
                  [draw(teacher_hidden) for _ in range(layers)],
                  [draw(teacher_intermediate) for _ in range(layers)], heads, hidden_size, intermediate_size)


def _rows_cols(weight: np.ndarray, rows=None, cols=None) -> np.ndarray:
    if rows is not None:
        weight = weight[np.asarray(rows)]
    if cols is not None:
        weight = weight[:, np.asarray(cols)]
    return np.ascontiguousarray(weight)


def slice_layer(weights: Dict[str, np.ndarray], selection: Selection, index: int) -> Dict[str, np.ndarray]:
    """One encoder layer's weights (names relative to the layer) cut to ``selection``'s layer ``index``."""
    hidden, qk, v, neurons = selection.hidden, selection.qk[index], selection.v[index], selection.neurons[index]
    teacher_head = weights["self_attn.q_proj.weight"].shape[1] // (selection.source_heads or selection.heads)
    query_scale = math.sqrt((len(qk) // selection.heads) / teacher_head)
    out = {}
    for name, value in weights.items():
        if name in ("self_attn.q_proj.weight", "self_attn.k_proj.weight"):
            value = _rows_cols(value, hidden, qk)
        elif name in ("self_attn.q_proj.bias", "self_attn.k_proj.bias"):
            value = value[qk]
        elif name == "self_attn.v_proj.weight":
            value = _rows_cols(value, hidden, v)
        elif name == "self_attn.v_proj.bias":
            value = value[v]
        elif name == "self_attn.out_proj.weight":
            value = _rows_cols(value, v, hidden)
        elif name == "linear1.weight":
            value = _rows_cols(value, hidden, neurons)
        elif name == "linear1.bias":
            value = value[neurons]
        elif name == "linear2.weight":
            value = _rows_cols(value, neurons, hidden)
        elif name in ("self_attn.out_proj.bias", "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight",
                      "norm2.bias"):
            value = value[hidden]
        else:
            raise KeyError(f"unexpected encoder-layer weight {name}")
        if name.startswith("self_attn.q_proj."):
            value = value * np.float32(query_scale)
        out[name] = np.ascontiguousarray(value, dtype=value.dtype)
    return out


def slice_encoder(source: Dict[str, np.ndarray], layers: Sequence[int], selection: Selection) -> Dict[str, np.ndarray]:
    """A bare encoder's state (``embeddings.*``, ``encoder.layers.<new>.*``, ``pooler.*``) made of the
    source layers ``layers`` (renumbered from 0), every weight cut to ``selection``."""
    hidden = selection.hidden
    state = {}
    for name, value in source.items():
        if name.startswith("embeddings."):
            state[name] = _rows_cols(value, cols=hidden) if value.ndim == 2 else value[hidden]
        elif name == "pooler.dense.weight":
            state[name] = _rows_cols(value, hidden, hidden)
        elif name == "pooler.dense.bias":
            state[name] = value[hidden]
    for new_index, old_index in enumerate(layers):
        prefix = f"encoder.layers.{old_index}."
        found = {k[len(prefix):]: v for k, v in source.items() if k.startswith(prefix)}
        for rest, value in slice_layer(found, selection, new_index).items():
            state[f"encoder.layers.{new_index}.{rest}"] = value
    return state


def slice_classifier(heads: Dict[str, np.ndarray], selection: Selection) -> Dict[str, np.ndarray]:
    """The classifier reads the pooled vector: its weight keeps the kept hidden rows."""
    return {name: (_rows_cols(value, rows=selection.hidden) if name.endswith("weight") else value)
            for name, value in heads.items()}


def selection_projection(selection: Selection, teacher_hidden: int) -> np.ndarray:
    """``[H', H]`` with a 1 at (i, hidden[i]): student dimension i -> the teacher dimension it came from.

    As stage 1's ``fit_dense`` (``y = x W``), it puts each student dimension back where it was in
    the teacher's residual stream, so the first stage-1 loss already compares like with like.
    """
    projection = np.zeros((len(selection.hidden), teacher_hidden), dtype=np.float32)
    projection[np.arange(len(selection.hidden)), selection.hidden] = 1.0
    return projection
