"""What a pruning run aims at, and how the gates are held to it (docs/math.md#pruning-while-distilling).

``--prune_to`` is a shape, ``LxH[xI]`` (3x192: three layers, hidden 192, FFN scaled like the
hidden size), or a share of the teacher's encoder, ``params:F`` or ``flops:F``. A shape is what a
PaddleNLP BERT can hold: the same heads, FFN width and hidden size in every layer, heads of the
teacher's size (so H must be a multiple of it: 192 = 6 heads of 32 under MiniLM).

The constraint: the expected count of open gates of each group equals its target, which moves
linearly from the full model to the final one over the first ``warmup`` steps, then stays. It
is met exactly at every step: each group's log_alpha is shifted by one number b (per layer for
heads and neurons) solved by bisection so that ``sum_j P(open | log_alpha_j + b) = target``. b is
the constraint's Lagrange multiplier solved exactly rather than learned by gradient ascent, and
it is differentiated through (implicit function: db/dlog_alpha_j = -P'_j / sum_k P'_k), so each
gate's gradient is its task gradient minus its share of the group's: the gates that matter
less than their group on average close, the others open, and the count stays on target. With a
``params:F``/``flops:F`` target one b shifts every group and the expected size is the constraint.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import paddle

from ..errors import UserError
from ..models.gates import (
    KINDS,
    OPEN_SHIFT,
    Dims,
    Shape,
    expected_counts,
    expected_size,
    probabilities,
    shape_size,
)

SHAPE = re.compile(r"^(\d+)x(\d+)(?:x(\d+))?$")
FRACTION = re.compile(r"^(params|flops):([0-9.]+)$")
USAGE = "give LAYERSxHIDDEN[xINTERMEDIATE] (e.g. 3x192) or params:F / flops:F with 0 < F <= 1 (e.g. flops:0.2)"
REACH = 60.0  # bisection bounds: a shift this far beyond every log_alpha opens or closes them all


@dataclass(frozen=True)
class Target:
    """A parsed ``--prune_to``: a ``shape``, or a ``fraction`` of the teacher's ``measure``."""

    text: str
    shape: Optional[Shape] = None
    measure: str = "params"
    fraction: Optional[float] = None

    def gated(self, dims: Dims) -> Tuple[str, ...]:
        """The groups the target cuts (the others keep every unit and get no gate)."""
        if self.shape is None:
            return KINDS if self.fraction < 1.0 else ()
        s = self.shape
        return tuple(kind for kind, cut in (("layers", s.layers < dims.layers), ("heads", s.heads < dims.heads),
                                            ("neurons", s.intermediate < dims.neurons),
                                            ("hidden", s.hidden < dims.hidden)) if cut)

    def describe(self) -> str:
        return self.shape.describe() if self.shape else f"{self.fraction:g} of the teacher's encoder {self.measure}"


def full_shape(dims: Dims) -> Shape:
    return Shape(dims.layers, dims.hidden, dims.neurons, dims.heads)


def parse_target(text: str, dims: Dims, length: int) -> Target:
    """``--prune_to`` checked against the teacher; one-line errors for what cannot be built."""
    spec = str(text).strip().lower()
    fraction = FRACTION.match(spec)
    if fraction:
        try:
            value = float(fraction.group(2))
        except ValueError:
            raise UserError(f"--prune_to {text}: {USAGE}") from None
        if not 0.0 < value <= 1.0:
            raise UserError(f"--prune_to {text}: the share must be above 0 and at most 1 (1: nothing pruned)")
        measure, smallest = fraction.group(1), Shape(1, dims.head_size, 1, 1)
        floor = shape_size(smallest, dims, measure, length) / shape_size(full_shape(dims), dims, measure, length)
        if value < floor:
            raise UserError(f"--prune_to {text}: below the smallest model that can be built "
                            f"({smallest.describe()}, {floor:.2g} of the teacher's encoder); give at least {floor:.2g}")
        return Target(text, measure=measure, fraction=value)
    match = SHAPE.match(spec)
    if not match:
        raise UserError(f"--prune_to {text}: {USAGE}")
    layers, hidden = int(match.group(1)), int(match.group(2))
    intermediate = int(match.group(3)) if match.group(3) else max(1, round(dims.neurons * hidden / dims.hidden))
    for name, value, most in (("layers", layers, dims.layers), ("hidden size", hidden, dims.hidden),
                              ("FFN size", intermediate, dims.neurons)):
        if not 1 <= value <= most:
            raise UserError(f"--prune_to {text}: {name} {value} is impossible, the teacher has {most}; "
                            f"choose 1 to {most}")
    if hidden % dims.head_size:
        below = hidden // dims.head_size * dims.head_size
        raise UserError(f"--prune_to {text}: pruning keeps whole heads of the teacher's size {dims.head_size}, so "
                        f"the hidden size must be a multiple of {dims.head_size} (e.g. "
                        f"{below or dims.head_size}{f' or {below + dims.head_size}' if below else ''})")
    return Target(text, shape=Shape(layers, hidden, intermediate, hidden // dims.head_size))


# ------------------------------------------------------------------ shifts
def _bisect(count, low: np.ndarray, high: np.ndarray, target: np.ndarray, steps: int = 64) -> np.ndarray:
    """Per row, the b in [low, high] with ``count(b) = target`` (``count`` increasing in b)."""
    for _ in range(steps):
        middle = (low + high) / 2
        above = count(middle) > target
        high, low = np.where(above, middle, high), np.where(above, low, middle)
    return (low + high) / 2


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


def group_shift(log_alpha, target: np.ndarray):
    """b per row of ``log_alpha`` ([rows, units], or [units] with one target) with the row's expected
    open count equal to ``target``; its value is the bisection's, its gradient the implicit one."""
    values = log_alpha.numpy().astype(np.float64).reshape([-1, log_alpha.shape[-1]])
    goal = np.asarray(target, dtype=np.float64).reshape([-1])
    found = _bisect(lambda b: _sigmoid(values + b[:, None] - OPEN_SHIFT).sum(axis=1),
                    -REACH - values.max(axis=1), REACH - values.min(axis=1), goal)
    rows = log_alpha.reshape([-1, log_alpha.shape[-1]])
    shift = paddle.to_tensor(found.astype(np.float32)).unsqueeze(-1)
    p = paddle.nn.functional.sigmoid(rows + shift - OPEN_SHIFT)
    slope = (p * (1 - p)).sum(axis=1, keepdim=True).detach().clip(min=1e-6)
    gap = p.sum(axis=1, keepdim=True) - paddle.to_tensor(goal.astype(np.float32)).unsqueeze(-1)
    return (shift - gap / slope).reshape(list(log_alpha.shape[:-1]) + [1])


def size_shift(log_alpha: Dict[str, Optional[object]], dims: Dims, goal: float, measure: str, length: int):
    """One b for every group with the expected size (:func:`expected_size`) equal to ``goal``."""
    values = {k: None if v is None else v.numpy().astype(np.float64) for k, v in log_alpha.items()}

    def size(b: np.ndarray) -> np.ndarray:
        shifted = {k: None if v is None else _sigmoid(v + b[0] - OPEN_SHIFT) for k, v in values.items()}
        return np.array([expected_size(shifted["layers"], shifted["heads"], shifted["neurons"], shifted["hidden"],
                                       dims, measure, length)])
    known = [v for v in values.values() if v is not None]
    low, high = -REACH - max(v.max() for v in known), REACH - min(v.min() for v in known)
    found = float(_bisect(size, np.array([low]), np.array([high]), np.array([goal]))[0])
    delta = 1e-3
    slope = max(float(size(np.array([found + delta]))[0] - size(np.array([found - delta]))[0]) / (2 * delta), 1e-6)
    p = probabilities({k: None if v is None else v + found for k, v in log_alpha.items()})
    gap = expected_size(p["layers"], p["heads"], p["neurons"], p["hidden"], dims, measure, length) - goal
    return found - gap / slope


def constrain(log_alpha: Dict[str, Optional[object]], target: Target, dims: Dims, progress: float,
              length: int) -> Dict[str, Optional[object]]:
    """The log_alpha of every group shifted onto the budget at warm-up ``progress`` (0 to 1)."""
    toward = lambda full, final: full + (final - full) * progress  # noqa: E731
    if target.shape is None:
        if all(v is None for v in log_alpha.values()):
            return log_alpha
        full = shape_size(full_shape(dims), dims, target.measure, length)
        b = size_shift(log_alpha, dims, toward(full, target.fraction * full), target.measure, length)
        return {k: None if v is None else v + b for k, v in log_alpha.items()}
    s, out = target.shape, dict(log_alpha)
    for kind, full, final in (("layers", dims.layers, s.layers), ("hidden", dims.hidden, s.hidden),
                              ("heads", dims.heads, s.heads), ("neurons", dims.neurons, s.intermediate)):
        value = log_alpha[kind]
        if value is not None:
            rows = 1 if value.ndim == 1 else value.shape[0]
            out[kind] = value + group_shift(value, np.full(rows, toward(full, final)))
    return out


def derive_shape(log_alpha: Dict[str, Optional[object]], dims: Dims) -> Shape:
    """The uniform shape nearest the expected counts (the final shape of a fraction target)."""
    counts = expected_counts(log_alpha, dims)
    layers = int(min(dims.layers, max(1, round(float(counts["layers"])))))
    heads = int(min(dims.heads, max(1, round(float(counts["hidden"]) / dims.head_size))))
    scores = None if log_alpha["layers"] is None else log_alpha["layers"].numpy()
    kept = range(dims.layers) if scores is None else np.argsort(-scores, kind="stable")[:layers]
    neurons = counts["neurons"].numpy()
    intermediate = int(min(dims.neurons, max(1, round(float(sum(neurons[i] for i in kept)) / layers))))
    return Shape(layers, heads * dims.head_size, intermediate, heads)
