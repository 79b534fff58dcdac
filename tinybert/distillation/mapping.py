"""Which teacher layer each student layer learns (docs/math.md#layer-map), as a printable value.

Uniform mapping with k = N / M: student hidden state i learns teacher hidden state i*k
(i = 0..M, 0 being the embedding output) and student attention layer j learns teacher
layer j*k (j = 1..M). A 4-layer student under a 12-layer teacher learns 3, 6, 9, 12;
PaddleNLP hard-codes 2*i, which is only right for 6-layer students. Depths that do not
divide need an explicit map (``--layer_map``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import UserError


@dataclass(frozen=True)
class LayerMap:
    hidden: Tuple[Tuple[int, int], ...]  # (student hidden index, teacher hidden index), 0 = embeddings
    attention: Tuple[Tuple[int, int], ...]  # (student layer, teacher layer), 1-based

    def describe(self) -> str:
        hidden = ", ".join(f"{s}->{t}" for s, t in self.hidden)
        attention = ", ".join(f"{s}->{t}" for s, t in self.attention)
        return f"hidden (student->teacher, 0 = embeddings): {hidden}; attention: {attention}"


def from_teacher_layers(teacher_layers: Tuple[int, ...]) -> LayerMap:
    """Student layer j (1-based) learns ``teacher_layers[j-1]``; embeddings learn embeddings."""
    attention = tuple((j, t) for j, t in enumerate(teacher_layers, start=1))
    return LayerMap(hidden=((0, 0),) + attention, attention=attention)


def uniform(teacher_depth: int, student_depth: int) -> LayerMap:
    if student_depth <= 0 or teacher_depth % student_depth:
        raise UserError(
            f"teacher depth {teacher_depth} is not a multiple of student depth {student_depth}; "
            f"give the mapping explicitly, e.g. --layer_map "
            f"{','.join(str(round((j + 1) * teacher_depth / student_depth)) for j in range(student_depth))}"
        )
    k = teacher_depth // student_depth
    return from_teacher_layers(tuple(j * k for j in range(1, student_depth + 1)))


def parse(text: str, teacher_depth: int, student_depth: int) -> LayerMap:
    """``--layer_map 3,6,9,12``: the teacher layer (1-based) each student layer learns."""
    try:
        layers = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--layer_map '{text}': give comma-separated teacher layer numbers, e.g. 3,6,9,12") from None
    if len(layers) != student_depth:
        raise UserError(f"--layer_map '{text}' names {len(layers)} layers; the student has {student_depth}")
    if any(not 1 <= t <= teacher_depth for t in layers):
        raise UserError(f"--layer_map '{text}': teacher layers must be between 1 and {teacher_depth}")
    return from_teacher_layers(layers)


def build(teacher_depth: int, student_depth: int, explicit: Optional[str] = None) -> LayerMap:
    return parse(explicit, teacher_depth, student_depth) if explicit else uniform(teacher_depth, student_depth)
