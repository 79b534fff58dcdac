"""Hard-concrete gates on a BERT's structures, and its expected size in closed form.

A gate (Louizos, Welling and Kingma, ICLR 2018, "Learning sparse neural networks through L0
regularization") is a random switch z in [0, 1] with one learnable parameter, log_alpha. A draw is

    u ~ U(0, 1),  s = sigmoid((log u - log(1 - u) + log_alpha) / beta),
    z = min(1, max(0, s (zeta - gamma) + gamma))          beta = 2/3, (gamma, zeta) = (-0.1, 1.1)

Stretching s beyond [0, 1] and clipping makes z exactly 0 or exactly 1 with positive probability,
while z stays differentiable in log_alpha in between. The probability that a gate is open is

    P(z != 0) = sigmoid(log_alpha - beta log(-gamma / zeta))

so the expected number of open gates of a group (its expected L0 norm) is a sum of sigmoids,
and the expected size of the model a product of such sums (:func:`expected_size`). Four groups,
as in CoFi (Xia, Zhong and Chen, ACL 2022): whole layers [N], attention heads [N, heads], FFN
neurons [N, I] and residual-stream dimensions [H] (one set shared by every layer, as the student
builder's cut). A group the target does not cut has no gate (always open). The recipe and the
size formula are in docs/math.md#pruning-while-distilling.

Parametrisation: the trained parameter is ``log_alpha / scale``. The training loop has one
AdamW for every parameter, whose step is about its learning rate whatever the gradient's scale,
so ``scale = gate learning rate / model learning rate`` makes log_alpha move at the gates' own rate.
Every gate starts at 0: where a gate sits is set by its group's budget (``distillation.budget``),
which shifts a whole group; the trained parameters only order the gates within it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np
import paddle

GAMMA, ZETA, BETA = -0.1, 1.1, 2.0 / 3.0
EPSILON = 1e-6
KINDS = ("layers", "heads", "neurons", "hidden")
OPEN_SHIFT = BETA * math.log(-GAMMA / ZETA)  # P(open) = sigmoid(log_alpha - OPEN_SHIFT)


@dataclass(frozen=True)
class Dims:
    """The unpruned model's structure."""

    layers: int
    heads: int
    head_size: int
    neurons: int  # FFN width
    hidden: int

    @classmethod
    def of(cls, model) -> "Dims":
        from .internals import encoder_layers, hidden_size, num_heads

        layers = encoder_layers(model)
        heads = num_heads(model)
        return cls(len(layers), heads, layers[0].self_attn.q_proj.weight.shape[1] // heads,
                   layers[0].linear1.weight.shape[1], hidden_size(model))

    def shape(self, kind: str) -> list:
        return {"layers": [self.layers], "heads": [self.layers, self.heads], "neurons": [self.layers, self.neurons],
                "hidden": [self.hidden]}[kind]


@dataclass(frozen=True)
class Shape:
    """A uniform BERT shape: every kept layer has ``heads`` heads of the teacher's head size."""

    layers: int
    hidden: int
    intermediate: int
    heads: int

    def describe(self) -> str:
        return f"{self.layers}x{self.hidden}x{self.intermediate} ({self.heads} heads)"


@dataclass
class Masks:
    """Multipliers per structure (None: not gated, i.e. all ones)."""

    layers: Optional[object] = None  # [N]
    heads: Optional[object] = None  # [N, heads]
    neurons: Optional[object] = None  # [N, I]
    hidden: Optional[object] = None  # [H]


def open_probability(log_alpha):
    """P(z != 0) of each gate (paddle tensor in, tensor out)."""
    return paddle.nn.functional.sigmoid(log_alpha - OPEN_SHIFT)


def sample(log_alpha):
    """One draw of z per gate, differentiable in ``log_alpha`` (uses Paddle's random generator)."""
    u = paddle.uniform(log_alpha.shape, dtype=log_alpha.dtype, min=EPSILON, max=1.0 - EPSILON)
    s = paddle.nn.functional.sigmoid((paddle.log(u) - paddle.log(1.0 - u) + log_alpha) / BETA)
    return paddle.clip(s * (ZETA - GAMMA) + GAMMA, 0.0, 1.0)


def expected_size(layers, heads, neurons, hidden, dims: Dims, measure: str = "params", length: int = 128):
    """Expected encoder size from the open probabilities of each group (``None``: all open).

    ``layers`` [N], ``heads`` [N, heads], ``neurons`` [N, I], ``hidden`` [H]: numpy arrays or
    paddle tensors alike. Gates are independent, so the expectation of a product of counts is the
    product of their expectations. With A = (open heads) x head size, I = open neurons, H = open
    hidden dimensions, one layer holds 4HA + 2HI + 3A + I + 6H parameters (q, k, v, output, FFN,
    biases, two LayerNorms) and costs 8HA + 4HI + 4 length A FLOPs per token (matrix products,
    then attention scores and context). Embeddings, pooler and classifier are not counted.
    """
    count = lambda p, full: full if p is None else p.sum(axis=-1)  # noqa: E731
    attention = count(heads, dims.heads) * dims.head_size  # [N] (or a number)
    ffn, width = count(neurons, dims.neurons), count(hidden, dims.hidden)
    if measure == "params":
        per_layer = 4 * width * attention + 2 * width * ffn + 3 * attention + ffn + 6 * width
    elif measure == "flops":
        per_layer = 8 * width * attention + 4 * width * ffn + 4 * length * attention
    else:
        raise ValueError(f"unknown size measure {measure!r}")
    if layers is not None:
        return (per_layer * layers).sum()
    return per_layer.sum() if getattr(per_layer, "ndim", 0) else per_layer * dims.layers


def shape_size(shape: Shape, dims: Dims, measure: str = "params", length: int = 128) -> float:
    """The size :func:`expected_size` gives a model of ``shape`` (every kept gate open)."""
    ones = lambda *size: np.ones(size)  # noqa: E731
    layers = np.r_[ones(shape.layers), np.zeros(dims.layers - shape.layers)]
    return float(expected_size(layers, ones(dims.layers, shape.heads), ones(dims.layers, shape.intermediate),
                               ones(shape.hidden), dims, measure, length))


class Gates(paddle.nn.Layer):
    """One trained parameter per gate of each group in ``gated`` (a subset of :data:`KINDS`)."""

    def __init__(self, dims: Dims, gated: Sequence[str], scale: float = 1.0):
        super().__init__()
        self.dims, self.gated, self.scale = dims, tuple(k for k in KINDS if k in gated), float(scale)
        for kind in self.gated:
            parameter = self.create_parameter(dims.shape(kind), dtype="float32",
                                              default_initializer=paddle.nn.initializer.Constant(0.0))
            self.add_parameter(f"{kind}_gate", parameter)

    def log_alpha(self) -> Dict[str, Optional[object]]:
        """log_alpha of each group (None: not gated)."""
        return {kind: getattr(self, f"{kind}_gate") * self.scale if kind in self.gated else None for kind in KINDS}


def sample_masks(log_alpha: Dict[str, Optional[object]]) -> Masks:
    return Masks(**{kind: sample(value) for kind, value in log_alpha.items() if value is not None})


def probabilities(log_alpha: Dict[str, Optional[object]]) -> Dict[str, Optional[object]]:
    return {kind: None if value is None else open_probability(value) for kind, value in log_alpha.items()}


def expected_counts(log_alpha: Dict[str, Optional[object]], dims: Dims) -> Dict[str, object]:
    """E[open layers], E[open hidden dims] (numbers) and, per layer, E[open heads], E[open neurons] ([N])."""
    p = probabilities(log_alpha)
    total = lambda kind, full: float(full) if p[kind] is None else p[kind].sum()  # noqa: E731
    per_layer = lambda kind, full: paddle.full([dims.layers], float(full)) if p[kind] is None \
        else p[kind].sum(axis=-1)  # noqa: E731
    return {"layers": total("layers", dims.layers), "hidden": total("hidden", dims.hidden),
            "heads": per_layer("heads", dims.heads), "neurons": per_layer("neurons", dims.neurons)}


@dataclass(frozen=True)
class Hard:
    """Which structures a hard mask keeps, in the unpruned model's coordinates (increasing)."""

    layers: np.ndarray  # [L]
    hidden: np.ndarray  # [H']
    heads: list  # per kept layer [heads']
    neurons: list  # per kept layer [I']
    dims: Dims

    def masks(self) -> Masks:
        """0/1 numpy masks of every group (all ones where nothing is cut)."""
        d = self.dims
        out = Masks(layers=np.zeros(d.layers, np.float32), heads=np.zeros((d.layers, d.heads), np.float32),
                    neurons=np.zeros((d.layers, d.neurons), np.float32), hidden=np.zeros(d.hidden, np.float32))
        out.layers[self.layers] = 1.0
        out.hidden[self.hidden] = 1.0
        for layer, heads, neurons in zip(self.layers, self.heads, self.neurons):
            out.heads[layer, heads] = 1.0
            out.neurons[layer, neurons] = 1.0
        return out

    def selection(self):
        """The :class:`width.Selection` that slices these structures out of the unpruned weights."""
        from .width import Selection

        size = self.dims.head_size
        dims = [np.concatenate([np.arange(h * size, (h + 1) * size) for h in heads]) for heads in self.heads]
        return Selection(hidden=self.hidden, qk=dims, v=[d.copy() for d in dims], neurons=list(self.neurons),
                         heads=len(self.heads[0]), source_heads=self.dims.heads)


def harden(scores: Dict[str, Optional[np.ndarray]], shape: Shape, dims: Dims) -> Hard:
    """The best-scoring structures of ``shape``: top layers, top hidden dimensions, and in each kept
    layer its top heads and neurons (a group without scores keeps everything)."""
    from .width import top

    def best(values, count, full):
        return np.arange(full) if values is None else top(values, count)

    layers = best(scores["layers"], shape.layers, dims.layers)
    return Hard(layers=layers, hidden=best(scores["hidden"], shape.hidden, dims.hidden),
                heads=[best(None if scores["heads"] is None else scores["heads"][l], shape.heads, dims.heads)
                       for l in layers],
                neurons=[best(None if scores["neurons"] is None else scores["neurons"][l], shape.intermediate,
                              dims.neurons) for l in layers], dims=dims)
