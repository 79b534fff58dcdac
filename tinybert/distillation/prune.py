"""Pruning while distilling: the fine-tuned teacher learns which of its structures to keep
(docs/math.md#pruning-while-distilling; CoFi, Xia, Zhong and Chen, ACL 2022).

A copy of the teacher is trained under hard-concrete gates (``models.gates``) on its layers,
heads, FFN neurons and residual dimensions, with three terms: the intermediate-layer loss to
the unpruned teacher (every hidden state and every surviving layer's attention scores, at the
teacher's own positions), the prediction-layer loss on the teacher's logits, and the budget (``distillation.budget``)
that holds the expected size to ``--prune_to`` through exact Lagrange multipliers. Every evaluation
makes the masks hard (the best-scoring structures of the target shape) and measures that model
on the dev set; the best one is physically sliced (``models.width``) into an ordinary PaddleNLP
BERT classifier, ``best_pruned_model/``, which stage 2 (``task_distill.py --model_type bert``)
then trains on the teacher's logits as for any student.
"""
from __future__ import annotations

import copy
import json
import os
from typing import Dict

import numpy as np
import paddle

from ..data.features import concat_features
from ..data.tasks import get_task
from ..errors import require
from ..models.gates import (
    Dims,
    Gates,
    Hard,
    Masks,
    expected_counts,
    expected_size,
    harden,
    probabilities,
    sample_masks,
)
from ..models.internals import hidden_size
from ..models.loading import load_model_and_keys, load_tokenizer
from ..models.masked import masked_forward
from ..models.width import slice_classifier, slice_encoder
from ..training.checkpoint import save_pretrained_atomically
from ..training.evaluate import evaluate_task, model_inputs, to_tensors
from ..training.guard import check_stage_keeps_inputs
from ..training.loop import total_steps
from ..training.stage import Job, Stage, run_stage, shared_task_data, task_data
from . import losses
from .budget import Target, constrain, derive_shape, parse_target
from .importance import Importance, ImportanceData, measure, task_batches
from .task import check_teacher_head, prediction_loss, teacher_internals

STAGE = Stage("pruning", checkpoint_name="checkpoint-last-prune", best_name="best_pruned_model")
RECORD_FILE = "pruning.json"
INIT_SPREAD = 10.0  # --gate_init importance: log_alpha from -10 (least important) to +10 (most) in each group


def ranked(scores: np.ndarray, spread: float = INIT_SPREAD) -> np.ndarray:
    """Scores -> log_alpha spread evenly by rank along the last axis (ties: the lower index first)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(np.argsort(scores, axis=-1, kind="stable"), axis=-1, kind="stable")
    return (spread * (2.0 * order / max(1, scores.shape[-1] - 1) - 1.0)).astype(np.float32)


def initial_log_alpha(scores: Importance, dims: Dims, target: Target) -> Dict[str, np.ndarray]:
    """Where the gates start under ``--gate_init importance``: the one-shot cut's ranking (residual
    dimensions by mean |activation|, neurons and each head's query/key and value dimensions by the
    Taylor estimate, summed per head), and for a shape target the evenly spaced layers the cut keeps
    (docs/math.md#pruning-while-distilling). The budget then moves the boundary through the ranks."""
    heads = [(qk + v).reshape(dims.heads, dims.head_size).sum(axis=1) for qk, v in zip(scores.qk, scores.v)]
    start = {"hidden": ranked(scores.hidden), "heads": ranked(np.stack(heads)),
             "neurons": ranked(np.stack(scores.neurons)), "layers": np.zeros(dims.layers, np.float32)}
    if target.shape is not None:
        kept = [(j * dims.layers) // target.shape.layers - 1 for j in range(1, target.shape.layers + 1)]
        start["layers"][kept] = INIT_SPREAD / 2
        start["layers"][[i for i in range(dims.layers) if i not in kept]] = -INIT_SPREAD / 2
    return start


class PruningStudent(paddle.nn.Layer):
    """The model being pruned with its gates and stage-1 projections: one forward.

    The projections (one per hidden state, teacher width to teacher width) start as the identity
    and let the kept dimensions stand for the cut ones in the hidden-state loss; they are not part
    of the sliced model. ``step`` counts training forwards (it is saved, so the target's warm-up
    resumes where it was).
    """

    def __init__(self, model, target: Target, gate_scale: float, warmup_steps: int, length: int,
                 skip_closed_layers: bool, with_scores: bool = True):
        super().__init__()
        self.model, self.target, self.dims = model, target, Dims.of(model)
        self.gates = Gates(self.dims, target.gated(self.dims), gate_scale)
        width = hidden_size(model)
        self.projections = paddle.nn.LayerList([paddle.nn.Linear(width, width) for _ in range(self.dims.layers + 1)])
        for projection in self.projections:
            projection.weight.set_value(np.eye(width, dtype=np.float32))
            projection.bias.set_value(np.zeros(width, dtype=np.float32))
        self.warmup_steps, self.length, self.skip = max(1, warmup_steps), length, skip_closed_layers
        self.with_scores = with_scores
        self.register_buffer("step", paddle.zeros([1], dtype="int64"), persistable=True)

    def start_from(self, log_alpha: Dict[str, np.ndarray]) -> None:
        for kind in self.gates.gated:
            getattr(self.gates, f"{kind}_gate").set_value(log_alpha[kind] / self.gates.scale)

    def progress(self) -> float:
        return min(1.0, float(self.step.numpy()[0]) / self.warmup_steps)

    def log_alpha(self) -> Dict:
        """The gates' log_alpha shifted onto the budget of the current step."""
        return constrain(self.gates.log_alpha(), self.target, self.dims, self.progress(), self.length)

    def forward(self, input_ids, token_type_ids, attention_mask):
        inputs = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
        masks = sample_masks(self.log_alpha())
        out = masked_forward(self.model, inputs, masks, skip_closed_layers=self.skip, with_scores=self.with_scores)
        with paddle.no_grad():
            paddle.assign(self.step + 1, self.step)
        return {"logits": out.logits, "hidden": [p(h) for p, h in zip(self.projections, out.hidden)],
                "scores": out.scores, "masks": masks}

    def shape(self):
        if self.target.shape is not None:
            return self.target.shape
        with paddle.no_grad():
            return derive_shape(self.log_alpha(), self.dims)

    def hard(self) -> Hard:
        """The best-scoring structures of the (final) shape: the gates' order within each group."""
        scores = {k: None if v is None else v.numpy() for k, v in self.gates.log_alpha().items()}
        return harden(scores, self.shape(), self.dims)

    def statistics(self) -> Dict[str, float]:
        """Expected counts and size (share of the teacher's encoder) at the current step, for the logs."""
        with paddle.no_grad():
            log_alpha = self.log_alpha()
            counts = expected_counts(log_alpha, self.dims)
            p = probabilities(log_alpha)
            size = expected_size(p["layers"], p["heads"], p["neurons"], p["hidden"], self.dims, self.target.measure,
                                 self.length)
        full = expected_size(None, None, None, None, self.dims, self.target.measure, self.length)
        return {"expected_layers": float(counts["layers"]), "expected_hidden": float(counts["hidden"]),
                "expected_heads": float(counts["heads"].mean()), "expected_neurons": float(counts["neurons"].mean()),
                "expected_size": float(size) / float(full)}


class HardMasked(paddle.nn.Layer):
    """``model`` under fixed 0/1 masks, called like a classifier (for evaluation)."""

    def __init__(self, model, hard: Hard):
        super().__init__()
        self.model = model
        self.masks = Masks(**{k: paddle.to_tensor(v) for k, v in vars(hard.masks()).items()})

    def forward(self, input_ids, token_type_ids, attention_mask):
        inputs = {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask}
        return masked_forward(self.model, inputs, self.masks, skip_closed_layers=True, with_scores=False).logits


# ----------------------------------------------------------------- objective
def kept_attention_mse(student, teacher, mask, heads):
    """``losses.attention_mse`` over the heads whose gate is open in this draw (all for None)."""
    if heads is None:
        return losses.attention_mse(student, teacher, mask)
    keep = (heads > 0).astype(student.dtype).reshape([1, -1, 1, 1])
    m = mask.astype(student.dtype)
    pairs = (m.unsqueeze(2) * m.unsqueeze(1)).unsqueeze(1)
    return (((student - teacher) ** 2) * pairs * keep).sum() / (pairs.sum() * keep.sum().clip(min=1.0))


def pruning_objective(teacher, spec, settings):
    """Intermediate loss at every teacher position + prediction loss + the Lagrangian's penalty."""
    def objective(student, batch):
        tensors = to_tensors(batch)
        inputs = model_inputs(tensors)
        target = teacher_internals(teacher, inputs)
        out = student(**inputs)
        mask, masks = tensors["attention_mask"], out["masks"]
        hidden = sum(losses.hidden_mse(s, t, mask) for s, t in zip(out["hidden"], target.hidden))
        attention = sum((kept_attention_mse(s, t, mask, None if masks.heads is None else masks.heads[i])
                         for i, (s, t) in enumerate(zip(out["scores"], target.scores)) if s is not None),
                        paddle.zeros([]))
        prediction = prediction_loss(out["logits"], target.logits, spec, settings.T)
        terms = {"hidden": hidden, "attention": attention, "prediction": prediction}
        loss = settings.hidden_weight * hidden + settings.attention_weight * attention
        terms["loss"] = loss + settings.prediction_weight * prediction
        return terms
    return objective


# ------------------------------------------------------------ slicing, saving
def sliced_model(model, hard: Hard):
    """An ordinary ``BertForSequenceClassification`` holding the structures ``hard`` keeps."""
    selection = hard.selection()
    prefix = model.base_model_prefix + "."
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    encoder = slice_encoder({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)},
                            [int(i) for i in hard.layers], selection)
    sliced = {prefix + k: v for k, v in encoder.items()}
    sliced.update(slice_classifier({k: v for k, v in state.items() if k.startswith("classifier.")}, selection))
    config = copy.deepcopy(model.config)
    config.hidden_size, config.num_attention_heads = len(selection.hidden), selection.heads
    config.intermediate_size, config.num_hidden_layers = selection.intermediate_size, len(hard.layers)
    pruned = type(model)(config)
    own = pruned.state_dict()
    wrong = sorted(set(own) ^ set(sliced)) + [k for k in own if k in sliced and list(own[k].shape) != list(sliced[k].shape)]
    require(not wrong, f"internal error: the sliced weights do not fit the pruned BERT ({wrong[:3]})")
    pruned.set_state_dict({k: paddle.to_tensor(v) for k, v in sliced.items()})
    pruned.eval()
    return pruned


def record(student: PruningStudent, hard: Hard) -> dict:
    shape = student.shape()
    return {"target": student.target.text, "shape": shape.describe(), "kept_layers_0_based": [int(i) for i in hard.layers],
            "hidden": [int(i) for i in hard.hidden], "heads": [[int(h) for h in heads] for heads in hard.heads],
            "neurons_per_layer": [len(n) for n in hard.neurons], "step": int(student.step.numpy()[0]),
            "gates": list(student.gates.gated), "progress": student.progress(), **student.statistics()}


def save_pruned(path: str, student: PruningStudent, tokenizer) -> None:
    hard = student.hard()
    info = record(student, hard)

    def write_record(directory: str) -> None:
        with open(os.path.join(directory, RECORD_FILE), "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=1)
            handle.write("\n")
    save_pretrained_atomically(path, sliced_model(student.model, hard), tokenizer, write_record)


# ------------------------------------------------------------------------ run
def build_job(settings, spec, dist) -> Job:
    require(settings.teacher_model_type == "bert",
            f"--teacher_model_type {settings.teacher_model_type}: pruning handles BERT teachers only (the masked "
            f"forward is BERT's); give a BERT teacher fine-tuned on {spec.name}")
    teacher, info = load_model_and_keys("bert", settings.teacher_path, "--teacher_path", num_labels=spec.num_labels)
    check_teacher_head(settings.teacher_path, info, spec)
    model, _ = load_model_and_keys("bert", settings.teacher_path, "--teacher_path", num_labels=spec.num_labels)
    tokenizer = load_tokenizer("bert", settings.teacher_path, "--teacher_path")
    teacher.eval()
    dims = Dims.of(model)
    target = parse_target(settings.prune_to, dims, settings.max_seq_length)  # refused before any data work
    data = shared_task_data(settings, spec, tokenizer, dist, "aug" if settings.use_aug else "train")
    source = task_data(settings, data.train, data.train_path, tokenizer.pad_token_id, dist)
    rate = lambda lr: lr / settings.learning_rate  # noqa: E731  (see models.gates: parameter scale)
    steps = total_steps(settings, source.batches)
    student = PruningStudent(model, target, rate(settings.gate_learning_rate), round(settings.target_warmup * steps),
                             settings.max_seq_length, skip_closed_layers=not dist.several,
                             with_scores=settings.attention_weight > 0)
    start = "uniform (log_alpha 0)"
    if settings.gate_init == "importance" and student.gates.gated:  # every rank: no rank waits alone (same sample)
        sample = ImportanceData(task_name=spec.name, glue_dir=settings.glue_dir, max_seq_length=settings.max_seq_length,
                                examples=settings.importance_examples, skip_bad_rows=settings.skip_bad_rows,
                                seed=settings.seed)
        scores = measure(teacher, task_batches(sample, tokenizer), spec.is_regression, range(dims.layers + 1))
        student.start_from(initial_log_alpha(scores, dims, target))
        start = f"ranked by importance on {scores.examples} training examples"
    dev = concat_features(data.devs)
    pad = tokenizer.pad_token_id

    def evaluate() -> dict:
        """The hard model's dev metrics; it may be chosen only once the target is reached (before, the
        selection number is progress - 2, below any metric's range, so a later model replaces it)."""
        metrics = evaluate_task(HardMasked(model, student.hard()), spec, [dev], settings.eval_batch_size, pad, dist)
        progress = student.progress()
        if progress < 1.0:
            metrics["dev_score"], metrics["score"] = metrics["score"], progress - 2.0
        return {**metrics, **student.statistics()}

    describe = {"prune_to": target.text, "gated": ",".join(student.gates.gated) or "nothing (the full shape)",
                "target": target.describe(), "target_warmup_steps": student.warmup_steps, "gate_init": start}
    if dist.is_main:
        print(f"pruning {dims.layers}x{dims.hidden} ({dims.heads} heads of {dims.head_size}, FFN {dims.neurons}) to "
              f"{describe['target']} on {spec.name}: {len(data.train)} train examples from {data.train_path}; "
              f"gates on {describe['gated']}, starting {start}; target reached after {student.warmup_steps} of "
              f"{steps} steps")
    return Job(model=student, checkpointed={"pruning": student}, objective=pruning_objective(teacher, spec, settings),
               data=source, evaluate=evaluate, save_best=lambda path: save_pruned(path, student, tokenizer),
               describe=describe)


def run(settings) -> dict:
    spec = get_task(settings.task_name)
    require(settings.T > 0, f"--T must be a positive temperature, got {settings.T}")
    for name in ("gate_learning_rate", "learning_rate"):
        require(getattr(settings, name) > 0, f"--{name} must be positive, got {getattr(settings, name)}")
    require(0.0 <= settings.target_warmup <= 1.0,
            f"--target_warmup {settings.target_warmup}: give the share of the steps (0 to 1) over which the "
            f"target moves from the teacher's size to the final one")
    check_stage_keeps_inputs(settings, STAGE)
    return run_stage(settings, STAGE, lambda dist: build_job(settings, spec, dist))
