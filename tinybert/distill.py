"""Two-stage task distillation (SPEC.md §2-§6).

Stage 1 (``--intermediate_distill``): embedding, hidden and attention-score MSE through the
layer map; "best" is the lowest dev intermediate loss (the classifier is untrained then).
Stage 2: soft cross-entropy on teacher logits (MSE for STS-B); "best" is the task's
selection number. The teacher always runs in eval mode without gradients; in stage 2 its
logits are computed once per training example and reused every epoch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from . import losses, mapping
from .accelerate import init_distributed, resolve_amp, wrap_student
from .checkpoint import save_pretrained_atomically
from .errors import require
from .evaluate import evaluate_task, model_inputs, predict_logits, to_tensors
from .export import export_best
from .features import Features, TaskData, collate, concat_features, eval_batches, load_task_data
from .internals import forward_with_internals, hidden_size, num_heads, num_layers
from .models import CheckpointInfo, base_model, load_model_and_keys, load_tokenizer
from .run_setup import check_training_flags, prepare_output_dir
from .runtime import select_device, set_seed
from .tasks import TaskSpec, get_task
from .train import ScalarLogger, Trainer, TrainConfig

PER_LAYER, SHARED = "per_layer", "shared"


# ------------------------------------------------------------------ projections
def projection_mode(requested: str, info: Optional[CheckpointInfo], student_name: str) -> str:
    """Per-layer ``fit_denses`` (v2) or one shared ``fit_dense``: what the checkpoint has (SPEC.md §5)."""
    if requested in (PER_LAYER, SHARED):
        return requested
    if info is None:  # a PaddleNLP name: v2 checkpoints carry per-layer projections
        return PER_LAYER if student_name.endswith("-v2") else SHARED
    if any(".fit_denses." in name for name in info.loaded):
        return PER_LAYER
    if any(".fit_dense." in name for name in info.loaded):
        return SHARED
    return PER_LAYER  # none provided: fresh per-layer projections


class Projector:
    """Maps student hidden state ``i`` to the teacher's width with the chosen projections."""

    def __init__(self, student, mode: str):
        self.encoder = base_model(student)
        self.mode = mode

    def __call__(self, index: int, hidden):
        layer = self.encoder.fit_denses[index] if self.mode == PER_LAYER else self.encoder.fit_dense
        return layer(hidden)

    def unused(self):
        """Projection layers the loss never touches (frozen so the optimizer skips them)."""
        return [self.encoder.fit_dense] if self.mode == PER_LAYER else list(self.encoder.fit_denses)


# ----------------------------------------------------------------- objectives
def intermediate_terms(student_out, teacher_out, layer_map: mapping.LayerMap, project: Projector, mask,
                       hidden_weight: float = 1.0, attention_weight: float = 1.0) -> Dict:
    """Every mapped layer's hidden and attention term by name, their sums and the total."""
    terms = {}
    for s, t in layer_map.hidden:
        terms[f"hidden_s{s}_t{t}"] = losses.hidden_mse(project(s, student_out.hidden[s]), teacher_out.hidden[t], mask)
    for s, t in layer_map.attention:
        terms[f"attn_s{s}_t{t}"] = losses.attention_mse(student_out.scores[s - 1], teacher_out.scores[t - 1], mask)
    hidden = sum(v for k, v in terms.items() if k.startswith("hidden_"))
    attention = sum(v for k, v in terms.items() if k.startswith("attn_"))
    terms["hidden"], terms["attention"] = hidden, attention
    terms["loss"] = hidden_weight * hidden + attention_weight * attention
    return terms


def teacher_internals(teacher, inputs):
    import paddle

    teacher.eval()
    with paddle.no_grad():
        return forward_with_internals(teacher, inputs)


def intermediate_objective(student, teacher, layer_map, project, weights):
    def objective(batch):
        tensors = to_tensors(batch)
        inputs = model_inputs(tensors)
        target = teacher_internals(teacher, inputs)
        output = forward_with_internals(student, inputs)
        return intermediate_terms(output, target, layer_map, project, tensors["attention_mask"], *weights)
    return objective


def prediction_loss(student_logits, teacher_logits, spec: TaskSpec, temperature: float):
    if spec.is_regression:
        return losses.logits_mse(student_logits, teacher_logits)
    return losses.soft_cross_entropy(student_logits, teacher_logits, temperature)


def prediction_objective(student, teacher_logits: np.ndarray, spec: TaskSpec, temperature: float):
    """Stage 2 on cached teacher logits: one teacher forward per example for the whole run."""
    import paddle

    def objective(batch):
        tensors = to_tensors(batch)
        logits = student(**model_inputs(tensors))
        target = paddle.to_tensor(teacher_logits[batch["index"]])
        return {"loss": prediction_loss(logits, target, spec, temperature)}
    return objective


def intermediate_dev_loss(student, teacher, layer_map, project, dev: Features, batch_size: int,
                          pad_token_id: int, weights) -> Dict[str, float]:
    """Mean intermediate loss over the dev set (stage 1's selection number, lower is better)."""
    import paddle

    student.eval()
    totals: Dict[str, float] = {}
    with paddle.no_grad():
        for indices in eval_batches(dev.lengths, batch_size):
            tensors = to_tensors(collate(dev, indices, pad_token_id))
            inputs = model_inputs(tensors)
            terms = intermediate_terms(forward_with_internals(student, inputs), teacher_internals(teacher, inputs),
                                       layer_map, project, tensors["attention_mask"], *weights)
            for name in ("loss", "hidden", "attention"):
                totals[name] = totals.get(name, 0.0) + float(terms[name]) * len(indices)
    results = {f"dev_{name}": value / len(dev) for name, value in totals.items()}
    results["score"] = results["dev_loss"]
    return results


# ------------------------------------------------------------- loading, checks
@dataclass
class Models:
    teacher: object
    student: object
    tokenizer: object
    student_info: Optional[CheckpointInfo]


def load_models(args, spec: TaskSpec) -> Models:
    teacher, teacher_info = load_model_and_keys(args.teacher_model_type, args.teacher_path, "--teacher_path",
                                                num_labels=spec.num_labels)
    check_teacher_head(args.teacher_path, teacher_info, spec)
    tokenizer = load_tokenizer(args.teacher_model_type, args.teacher_path, "--teacher_path")
    student_tokenizer = load_tokenizer(args.model_type, args.student_model_name_or_path, "--student_model_name_or_path")
    require(tokenizer.get_vocab() == student_tokenizer.get_vocab(),
            f"teacher ({args.teacher_path}) and student ({args.student_model_name_or_path}) vocabularies differ; "
            f"distillation needs the same vocab.txt for both")
    overrides = {"num_labels": spec.num_labels}
    if args.model_type == "tinybert":
        overrides["fit_size"] = hidden_size(teacher)
    student, info = load_model_and_keys(args.model_type, args.student_model_name_or_path,
                                        "--student_model_name_or_path", **overrides)
    teacher.eval()
    return Models(teacher, student, tokenizer, info)


def check_teacher_head(path: str, info: Optional[CheckpointInfo], spec: TaskSpec) -> None:
    if info is None:
        return
    shape = info.shapes.get("classifier.weight")
    require(shape is not None,
            f"--teacher_path {path} has no classifier: fine-tune it on {spec.name} first (finetune_teacher.py)")
    require(shape[-1] == spec.num_labels,
            f"--teacher_path {path} has a classifier with {shape[-1]} outputs, {spec.name} needs "
            f"{spec.num_labels}: use a teacher fine-tuned on {spec.name}")


def check_attention_compatible(teacher, student) -> None:
    require(num_heads(teacher) == num_heads(student),
            f"teacher has {num_heads(teacher)} attention heads and student {num_heads(student)}; attention "
            f"distillation needs equal head counts (TinyBERT-4L uses 12 heads of 26 dims)")


# ------------------------------------------------------------------------ run
def stage_one(args, models: Models, student_forward, data: TaskData, pad: int):
    """Objective and dev evaluation of intermediate-layer distillation (SPEC.md §3-§5)."""
    teacher, student = models.teacher, models.student
    check_attention_compatible(teacher, student)
    layer_map = mapping.build(num_layers(teacher), num_layers(student), args.layer_map)
    mode = projection_mode(args.projection, models.student_info, args.student_model_name_or_path)
    project = Projector(student, mode)
    freeze(project.unused())
    print(f"layer map: {layer_map.describe()}\nprojections: {mode}")
    weights = (args.hidden_weight, args.attention_weight)
    dev = concat_features(data.devs)
    objective = intermediate_objective(student_forward, teacher, layer_map, project, weights)
    evaluate = lambda: intermediate_dev_loss(student, teacher, layer_map, project, dev,  # noqa: E731
                                             args.eval_batch_size, pad, weights)
    return objective, evaluate


def stage_two(args, models: Models, student_forward, data: TaskData, spec: TaskSpec, pad: int):
    """Objective and dev evaluation of prediction-layer distillation on cached teacher logits."""
    encoder = base_model(models.student)
    freeze([encoder.fit_denses, encoder.fit_dense])  # projections are for stage 1 only (SPEC.md §5)
    print("computing teacher logits once for every training example ...")
    teacher_logits = predict_logits(models.teacher, data.train, args.eval_batch_size, pad)
    objective = prediction_objective(student_forward, teacher_logits, spec, args.T)
    evaluate = lambda: evaluate_task(models.student, spec, data.devs, args.eval_batch_size, pad)  # noqa: E731
    return objective, evaluate


def freeze(layers) -> None:
    for layer in layers:
        for parameter in layer.parameters():
            parameter.stop_gradient = True


def run(args) -> dict:
    spec = get_task(args.task_name)
    check_training_flags(args)
    require(args.T > 0, f"--T must be a positive temperature, got {args.T}")
    stage1 = args.intermediate_distill
    stage = "intermediate" if stage1 else "prediction"
    checkpoint_name = "checkpoint-last-inter" if stage1 else "checkpoint-last"
    prepare_output_dir(args, stage, checkpoint_name)
    device = select_device(args.device)
    set_seed(args.seed)

    models = load_models(args, spec)
    pad = models.tokenizer.pad_token_id
    data = load_task_data(args, spec, models.tokenizer, "aug" if args.use_aug else "train")
    print(f"{stage} distillation on {spec.name}: {len(data.train)} train examples from {data.train_path}; "
          f"teacher {num_layers(models.teacher)} layers, student {num_layers(models.student)} layers")

    rank, world_size = init_distributed()
    student_forward = wrap_student(models.student, world_size)  # DataParallel on the student only
    config = TrainConfig.from_args(args, stage=stage, checkpoint_name=checkpoint_name,
                                   amp=resolve_amp(args.amp, device), rank=rank, world_size=world_size)
    if stage1:
        objective, evaluate = stage_one(args, models, student_forward, data, pad)
        config.higher_is_better, config.best_name = False, "best_inter_model"
    else:
        objective, evaluate = stage_two(args, models, student_forward, data, spec, pad)

    save = lambda path: save_pretrained_atomically(path, models.student, models.tokenizer)  # noqa: E731
    logger = ScalarLogger(os.path.join(args.output_dir, "vdl"))
    progress = Trainer(config, {"student": models.student}, objective, evaluate, save, data.train, pad, logger).train()
    best_dir = os.path.join(args.output_dir, config.best_name)
    print(f"{stage}: best dev {'loss' if stage1 else 'score'} {progress.best:.5f}; model in {best_dir}")
    if args.export_dir and not stage1 and config.rank == 0:
        export_best(best_dir, args.model_type, args.export_dir, args.max_seq_length)
    return {"best": progress.best, "stage": stage}
