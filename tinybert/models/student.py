"""The student as one layer: encoder, classifier and stage-1 projections in one forward.

Multi-process training wraps exactly one layer in ``paddle.DataParallel``, and its gradient
reducer only accepts parameters used inside that layer's forward. TinyBERT's projections
(``fit_denses``/``fit_dense``, student width -> teacher width) are applied to the student's
hidden states for the stage-1 loss, so they belong inside the student's forward too:
:class:`DistillationStudent` returns the logits and, in stage 1, the projected hidden states
and the pre-softmax attention scores, all from one call. Whatever the loss of a stage does
not use is frozen before wrapping (:func:`freeze_unused`), so every trainable parameter
receives a gradient at every step on every rank.

Projections (docs/math.md#projections): PaddleNLP's v2 students carry one projection per
hidden state (``fit_denses``), its v1 and Chinese students one shared ``fit_dense``. A
student saved by this suite records which kind it trained (``distill_projection`` in its
``config.json``); PaddleNLP's ``TinyBertModel`` always saves both kinds, so without that
record the weights alone cannot tell.
"""
from __future__ import annotations

import json
import os
from typing import Optional

import paddle

from .internals import forward_with_internals, hidden_size, num_layers
from .loading import base_model

PER_LAYER, SHARED = "per_layer", "shared"
PROJECTION_KEY = "distill_projection"  # recorded in config.json of every student we save
PROJECTIONS_FILE = "distill_projections.pdparams"  # separate projections of a student without fit_dense(s)


def has_own_projections(model) -> bool:
    """Whether the model carries TinyBERT's ``fit_dense``/``fit_denses`` (else they are separate)."""
    return hasattr(base_model(model), "fit_dense")


def recorded_projection(path: str) -> Optional[str]:
    """The projection kind a checkpoint of this suite trained, from its config.json."""
    config = os.path.join(path, "config.json")
    if not os.path.isfile(config):
        return None
    try:
        with open(config, encoding="utf-8") as handle:
            value = json.load(handle).get(PROJECTION_KEY)
    except (OSError, ValueError):
        return None
    return value if value in (PER_LAYER, SHARED) else None


def projection_mode(requested: str, student_path: str, loaded: Optional[set], own: bool = True) -> str:
    """Which projections stage 1 trains: the flag, else the checkpoint's record, else a guess said aloud.

    ``loaded``: the weight names taken from a local checkpoint (None for a PaddleNLP name).
    ``own``: whether the student carries TinyBERT's projections; separate ones (an ERNIE or
    BERT student) are per-layer unless the flag or the record says otherwise.
    """
    if requested in (PER_LAYER, SHARED):
        return requested
    recorded = recorded_projection(student_path) if loaded is not None else None
    if not own:
        return recorded or PER_LAYER
    if loaded is None:  # a PaddleNLP name: the v2 releases carry per-layer projections, v1 and -zh a shared one
        return PER_LAYER if student_path.endswith("-v2") else SHARED
    if recorded:
        return recorded
    has_per_layer = any(".fit_denses." in name for name in loaded)
    has_shared = any(".fit_dense." in name for name in loaded)
    if has_shared and os.path.basename(os.path.normpath(student_path)).endswith("-zh"):
        return SHARED  # a local copy of tinybert-*-zh (it holds both kinds, like every TinyBertModel)
    if has_per_layer and has_shared:
        print(f"note: {student_path} holds both projection kinds and no record of which one was trained; "
              f"using the per-layer fit_denses (PaddleNLP's v2 students). Pass --projection shared if it "
              f"was trained with the shared fit_dense")
        return PER_LAYER
    if has_shared:
        return SHARED
    return PER_LAYER  # none provided: fresh per-layer projections


def record_projection(model, mode: str) -> None:
    """Write ``mode`` into the model's config so the saved checkpoint says which projections it trained."""
    setattr(model.config, PROJECTION_KEY, mode)


class DistillationStudent(paddle.nn.Layer):
    """``model`` plus the projections stage 1 trains, run in one forward.

    ``mode`` is the projection kind for stage 1, or None where the loss needs logits only
    (stage 2, fine-tuning). ``forward(..., internals=True)`` returns ``{"logits", "hidden",
    "scores"}`` with ``hidden[i]`` already projected to the teacher's width.
    """

    def __init__(self, model, mode: Optional[str] = None, teacher_width: Optional[int] = None):
        super().__init__()
        self.model = model
        self.mode = mode
        self.projections = None  # separate projections (a student without fit_dense(s)), stage 1 only
        if mode is not None and not has_own_projections(model):
            count = num_layers(model) + 1 if mode == PER_LAYER else 1
            width = hidden_size(model)
            self.projections = paddle.nn.LayerList(
                [paddle.nn.Linear(width, teacher_width or width) for _ in range(count)])

    def project(self, index: int, hidden):
        if self.projections is not None:
            return self.projections[index if self.mode == PER_LAYER else 0](hidden)
        encoder = base_model(self.model)
        layer = encoder.fit_denses[index] if self.mode == PER_LAYER else encoder.fit_dense
        return layer(hidden)

    def save_projections(self, directory: str) -> None:
        """Write the separate projections beside a saved model (nothing for TinyBERT's own)."""
        if self.projections is not None:
            paddle.save(self.projections.state_dict(), os.path.join(directory, PROJECTIONS_FILE))

    def load_projections(self, directory: str) -> bool:
        """Continue from the separate projections saved with ``directory``'s model, if they fit."""
        path = os.path.join(directory, PROJECTIONS_FILE) if os.path.isdir(directory) else ""
        if self.projections is None or not os.path.isfile(path):
            return False
        state = paddle.load(path)
        own = self.projections.state_dict()
        if set(state) != set(own) or any(list(state[k].shape) != list(own[k].shape) for k in own):
            print(f"note: {path} does not fit this student's projections ({self.mode}); they start fresh")
            return False
        self.projections.set_state_dict(state)
        return True

    def forward(self, input_ids, token_type_ids, attention_mask, internals: bool = False):
        inputs = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
        if not internals:
            return self.model(**inputs)
        captured = forward_with_internals(self.model, inputs)
        return {"logits": captured.logits,
                "hidden": [self.project(i, h) for i, h in enumerate(captured.hidden)],
                "scores": captured.scores}


def freeze(layers) -> None:
    for layer in layers:
        for parameter in layer.parameters():
            parameter.stop_gradient = True


def freeze_unused(student: DistillationStudent, stage: str) -> None:
    """Freeze what the stage's loss never reaches (before wrapping in DataParallel).

    Stage 1 ("intermediate") trains the encoder and one kind of projection; the pooler and
    classifier are untouched by its loss. Stage 2 ("prediction") and fine-tuning train the
    classifier too, and no projection.
    """
    encoder = base_model(student.model)
    projections = [getattr(encoder, name) for name in ("fit_denses", "fit_dense") if hasattr(encoder, name)]
    if stage == "intermediate":
        unused = [] if not projections else [encoder.fit_dense] if student.mode == PER_LAYER else [encoder.fit_denses]
        head = [layer for name, layer in student.model.named_children() if name != student.model.base_model_prefix]
        freeze(unused + head + ([encoder.pooler] if hasattr(encoder, "pooler") else []))
    else:
        freeze(projections)
