"""How much a fine-tuned teacher needs each of its dimensions, measured on the task's training data.

The student builder keeps the most important dimensions (docs/math.md#narrow-students-cut-from-the-teacher):

- residual-stream dimensions by their mean ``|activation|`` over real tokens, averaged over the
  hidden states the student keeps (the embedding output and the outputs of the kept layers:
  the states stage 1 teaches the student to reproduce);
- FFN neurons, and each head's query/key and value dimensions, by the first-order estimate of
  how much the teacher's task loss changes when the unit is removed: ``|sum_t a_t dL/da_t|``
  per example (Taylor), averaged over examples.

The gradients come from gates: for one forward and backward pass, every ``q_proj``/``k_proj``/
``v_proj`` output and every ``linear2`` input is multiplied by a tensor of ones ``m``
(``[B, 1, width]``), through hooks on this model instance. ``dL/dm`` is then exactly
``sum_t a_t dL/da_t`` per example and unit; the model's own weights get no gradient. Queries
and keys share one gate, as removing a dimension from either removes it from the score.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import UserError


@dataclass(frozen=True)
class ImportanceData:
    """Where importance is measured: the task's training data, read as the other scripts read it."""

    task_name: str
    glue_dir: Optional[str] = None
    max_seq_length: int = 128
    device: str = "cpu"
    examples: int = 1024  # a seeded sample of the training set
    batch_size: int = 32
    skip_bad_rows: bool = False
    seed: int = 42


@dataclass
class Importance:
    """Scores per dimension, in the teacher's coordinates (higher: keep)."""

    hidden: np.ndarray  # [H]
    qk: List[np.ndarray] = field(default_factory=list)  # per teacher layer, [H]
    v: List[np.ndarray] = field(default_factory=list)  # per teacher layer, [H]
    neurons: List[np.ndarray] = field(default_factory=list)  # per teacher layer, [I]
    examples: int = 0


@contextlib.contextmanager
def _gates(model, batch: int):
    """Multiply the attention projections' outputs and the FFN activations by ones, per layer."""
    import paddle

    from ..models.internals import encoder_layers

    gates: Dict[str, list] = {"qk": [], "v": [], "neurons": []}
    handles = []

    def gate(width: int):
        tensor = paddle.ones([batch, 1, width], dtype="float32")
        tensor.stop_gradient = False
        return tensor

    def times(tensor):
        return lambda _layer, _inputs, output: output * tensor

    for layer in encoder_layers(model):
        attention = layer.self_attn
        qk, v = gate(attention.q_proj.weight.shape[1]), gate(attention.v_proj.weight.shape[1])
        neurons = gate(layer.linear2.weight.shape[0])
        gates["qk"].append(qk)
        gates["v"].append(v)
        gates["neurons"].append(neurons)
        handles += [attention.q_proj.register_forward_post_hook(times(qk)),
                    attention.k_proj.register_forward_post_hook(times(qk)),
                    attention.v_proj.register_forward_post_hook(times(v)),
                    layer.linear2.register_forward_pre_hook(
                        lambda _layer, inputs, m=neurons: (inputs[0] * m,) + tuple(inputs[1:]))]
    try:
        yield gates
    finally:
        for handle in handles:
            handle.remove()


def measure(model, batches, regression: bool, states: Sequence[int]) -> Importance:
    """Importance of every dimension of ``model`` (a classifier) over ``batches`` (collated numpy
    batches with labels). ``states`` are the hidden states averaged for the residual score
    (0: embedding output, l: output of layer l, 1-based)."""
    import paddle.nn.functional as F

    from ..models.internals import forward_with_internals, num_layers
    from ..training.evaluate import model_inputs, to_tensors

    model.eval()  # no dropout: the teacher as it predicts
    frozen = [(p, p.stop_gradient) for p in model.parameters()]
    for parameter, _ in frozen:
        parameter.stop_gradient = True
    depth = num_layers(model)
    totals: Dict[str, list] = {"qk": [0.0] * depth, "v": [0.0] * depth, "neurons": [0.0] * depth}
    hidden_sum, tokens, examples = 0.0, 0.0, 0
    try:
        for batch in batches:
            tensors = to_tensors(batch)
            count = int(batch["input_ids"].shape[0])
            with _gates(model, count) as gates:
                internals = forward_with_internals(model, model_inputs(tensors), with_scores=False)
                if regression:
                    loss = F.mse_loss(internals.logits.reshape([-1]), tensors["labels"].astype("float32"),
                                      reduction="sum")
                else:
                    loss = F.cross_entropy(internals.logits, tensors["labels"].reshape([-1, 1]), reduction="sum")
                loss.backward()
            for kind, per_layer in gates.items():
                for index, gate in enumerate(per_layer):
                    totals[kind][index] = totals[kind][index] + np.abs(gate.grad.numpy()[:, 0, :]).sum(axis=0)
            mask = batch["attention_mask"].astype(np.float32)[:, :, None]
            hidden_sum = hidden_sum + sum((np.abs(internals.hidden[s].numpy()) * mask).sum(axis=(0, 1))
                                          for s in states) / len(states)
            tokens += float(mask.sum())
            examples += count
    finally:
        for parameter, before in frozen:
            parameter.stop_gradient = before
    if not examples:
        raise UserError("no training examples to measure importance on: the task's train.tsv is empty")
    return Importance(hidden=np.asarray(hidden_sum) / tokens, examples=examples,
                      **{kind: [np.asarray(t) / examples for t in per_layer] for kind, per_layer in totals.items()})


def task_batches(data: ImportanceData, tokenizer) -> List[Dict[str, np.ndarray]]:
    """A seeded sample of ``data.examples`` training examples, featurized and collated in batches
    (by length, so little padding)."""
    from ..data.features import collate, eval_batches, featurize
    from ..data.glue import load_split
    from ..data.tasks import get_task

    spec = get_task(data.task_name)
    train, = load_split(data.glue_dir, spec, "train", data.skip_bad_rows)
    examples = train.examples
    if len(examples) > data.examples:
        chosen = np.sort(np.random.default_rng(data.seed).permutation(len(examples))[:data.examples])
        examples = [examples[i] for i in chosen]
    features = featurize(examples, tokenizer, data.max_seq_length, spec.is_regression)
    return [collate(features, indices, tokenizer.pad_token_id) for indices in eval_batches(features.lengths,
                                                                                           data.batch_size)]


def teacher_importance(source_dir: str, data: ImportanceData, states: Sequence[int]) -> Importance:
    """Load the fine-tuned teacher in ``source_dir`` and measure its importance on ``data``."""
    from ..data.tasks import get_task
    from ..models.loading import (
        checkpoint_model_type,
        load_model_and_keys,
        load_tokenizer,
    )
    from ..runtime import select_device

    select_device(data.device)
    model_type = checkpoint_model_type(source_dir)
    model, _ = load_model_and_keys(model_type, source_dir, "--source", num_labels=get_task(data.task_name).num_labels)
    tokenizer = load_tokenizer(model_type, source_dir, "--source")
    return measure(model, task_batches(data, tokenizer), get_task(data.task_name).is_regression, states)
