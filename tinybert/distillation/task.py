"""Two-stage task distillation (docs/math.md; TinyBERT paper, Jiao et al. 2020, section 3).

Stage 1 (``--intermediate_distill``): embedding, hidden and attention-score MSE through the
layer map; "best" is the lowest dev intermediate loss (the classifier is untrained then).
Stage 2: soft cross-entropy on teacher logits (MSE for STS-B); "best" is the task's
selection number. The teacher always runs in eval mode without gradients; in stage 2 its
logits are computed once per training example (each process its share) and reused every epoch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from ..data.features import (
    Features,
    collate,
    concat_features,
    eval_batches,
)
from ..data.tasks import TaskSpec, get_task
from ..errors import UserError, require
from ..models.internals import (
    forward_with_internals,
    hidden_size,
    num_heads,
    num_layers,
)
from ..models.loading import (
    CheckpointInfo,
    check_length,
    load_model_and_keys,
    load_tokenizer,
)
from ..models.student import (
    DistillationStudent,
    freeze_unused,
    has_own_projections,
    projection_mode,
    record_projection,
)
from ..serving.export import best_model_exporter
from ..training.checkpoint import save_pretrained_atomically
from ..training.evaluate import evaluate_task, model_inputs, shared_batches, to_tensors
from ..training.guard import check_stage_keeps_inputs
from ..training.stage import (
    Job,
    Stage,
    cache_dir,
    run_stage,
    shared_task_data,
    task_data,
)
from . import losses, mapping
from .teacher_logits import cached as teacher_logits_of

STAGE_ONE = Stage("intermediate", checkpoint_name="checkpoint-last-inter", best_name="best_inter_model",
                  higher_is_better=False, score_name="loss")
STAGE_TWO = Stage("prediction", score_name="score")


# ----------------------------------------------------------------- objectives
def intermediate_terms(student_hidden, student_scores, teacher_hidden, teacher_scores, layer_map: mapping.LayerMap,
                       mask, hidden_weight: float = 1.0, attention_weight: float = 1.0) -> Dict:
    """Every mapped layer's hidden and attention term by name, their sums and the total.

    ``student_hidden`` are already projected to the teacher's width (``DistillationStudent``).
    """
    terms = {}
    for s, t in layer_map.hidden:
        terms[f"hidden_s{s}_t{t}"] = losses.hidden_mse(student_hidden[s], teacher_hidden[t], mask)
    for s, t in layer_map.attention:
        terms[f"attn_s{s}_t{t}"] = losses.attention_mse(student_scores[s - 1], teacher_scores[t - 1], mask)
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


def intermediate_objective(teacher, layer_map, weights):
    """Stage 1's loss of a batch, given the student's forward (a DistillationStudent, maybe wrapped).

    General distillation uses this same function on unlabeled text.
    """
    def objective(student, batch):
        tensors = to_tensors(batch)
        inputs = model_inputs(tensors)
        target = teacher_internals(teacher, inputs)
        output = student(**inputs, internals=True)
        return intermediate_terms(output["hidden"], output["scores"], target.hidden, target.scores, layer_map,
                                  tensors["attention_mask"], *weights)
    return objective


def prediction_loss(student_logits, teacher_logits, spec: TaskSpec, temperature: float):
    if spec.is_regression:
        return losses.logits_mse(student_logits, teacher_logits)
    return losses.soft_cross_entropy(student_logits, teacher_logits, temperature)


def prediction_objective(teacher_logits: np.ndarray, spec: TaskSpec, temperature: float):
    """Stage 2 on cached teacher logits: one teacher forward per example for the whole run."""
    import paddle

    def objective(student, batch):
        tensors = to_tensors(batch)
        logits = student(**model_inputs(tensors))
        target = paddle.to_tensor(teacher_logits[batch["index"]])
        return {"loss": prediction_loss(logits, target, spec, temperature)}
    return objective


def intermediate_dev_loss(student, teacher, layer_map, dev: Features, batch_size: int,
                          pad_token_id: int, weights, dist=None) -> Dict[str, float]:
    """Mean intermediate loss over the dev set (stage 1's selection number, lower is better).

    Each batch's terms weigh by its examples; with ``dist`` the batches are shared by the
    processes and summed in batch order, as one process sums them (``training.evaluate``).
    """
    import paddle

    objective = intermediate_objective(teacher, layer_map, weights)
    names = ("loss", "hidden", "attention")
    student.eval()

    def compute(indices):
        terms = objective(student, collate(dev, indices, pad_token_id))
        return [float(terms[name]) * len(indices) for name in names]

    with paddle.no_grad():
        per_batch = shared_batches(list(eval_batches(dev.lengths, batch_size)), compute, dist,
                                   "the other processes' dev losses")
    totals = dict.fromkeys(names, 0.0)
    for values in per_batch:
        for name, value in zip(names, values):
            totals[name] += value
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


def load_models(settings, spec: TaskSpec) -> Models:
    teacher, teacher_info = load_model_and_keys(settings.teacher_model_type, settings.teacher_path, "--teacher_path",
                                                num_labels=spec.num_labels)
    check_teacher_head(settings.teacher_path, teacher_info, spec)
    tokenizer = load_tokenizer(settings.teacher_model_type, settings.teacher_path, "--teacher_path")
    student_tokenizer = load_tokenizer(settings.model_type, settings.student_model_name_or_path, "--student_model_name_or_path")
    check_same_vocabulary(settings, tokenizer.get_vocab(), student_tokenizer.get_vocab())
    overrides = {"num_labels": spec.num_labels}
    if settings.model_type == "tinybert":
        overrides["fit_size"] = hidden_size(teacher)
    student, info = load_model_and_keys(settings.model_type, settings.student_model_name_or_path,
                                        "--student_model_name_or_path", **overrides)
    check_length(teacher, settings.max_seq_length, f"--teacher_path {settings.teacher_path}")
    check_length(student, settings.max_seq_length, f"--student_model_name_or_path {settings.student_model_name_or_path}")
    teacher.eval()
    return Models(teacher, student, tokenizer, info)


def check_same_vocabulary(settings, teacher_vocab: dict, student_vocab: dict) -> None:
    """Refuse a teacher and a student that number tokens differently, saying what works.

    Every loss compares the two models position by position on the same token ids, so the
    vocabularies must be identical: ERNIE 3.0's differs from bert-base-chinese's (which the
    TinyBERT ``-zh`` students share), and an English one from both.
    """
    if teacher_vocab == student_vocab:
        return
    teacher, student = settings.teacher_path, settings.student_model_name_or_path
    if settings.teacher_model_type == "ernie" and settings.model_type != "ernie":
        fix = "use an ERNIE student (--model_type ernie, e.g. ernie-3.0-nano-zh or ernie-3.0-mini-zh)"
    elif settings.teacher_model_type != "ernie" and settings.model_type == "ernie":
        fix = (f"use a TinyBERT or BERT student of {settings.teacher_model_type}'s vocabulary "
               f"(e.g. tinybert-4l-312d-zh under bert-base-chinese)")
    else:
        fix = "use a student general-distilled from the teacher's model family"
    sizes = (f"{len(teacher_vocab)} and {len(student_vocab)} tokens" if len(teacher_vocab) != len(student_vocab)
             else f"{len(teacher_vocab)} tokens each, numbered differently")
    raise UserError(f"{teacher} and {student} have different vocabularies ({sizes}): {fix}, or build one from the "
                    f"teacher with scripts/build_student.py")


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
def build_job(settings, spec: TaskSpec, stage1: bool, dist) -> Job:
    """Models, data, objective and evaluation of stage 1 or stage 2 (docs/math.md#two-stages)."""
    models = load_models(settings, spec)
    teacher, pad = models.teacher, models.tokenizer.pad_token_id
    if stage1:  # refused before the data is featurized
        check_attention_compatible(teacher, models.student)
        layer_map = mapping.build(num_layers(teacher), num_layers(models.student), settings.layer_map)
    data = shared_task_data(settings, spec, models.tokenizer, dist, "aug" if settings.use_aug else "train")
    if dist.is_main:
        print(f"{'intermediate' if stage1 else 'prediction'} distillation on {spec.name}: {len(data.train)} train "
              f"examples from {data.train_path}; teacher {num_layers(teacher)} layers, student "
              f"{num_layers(models.student)} layers")
    describe = {}
    if stage1:
        mode = projection_mode(settings.projection, settings.student_model_name_or_path,
                               models.student_info.loaded if models.student_info else None)
        record_projection(models.student, mode)
        student = DistillationStudent(models.student, mode, hidden_size(teacher))
        separate = "" if has_own_projections(models.student) else " (separate parameters, saved beside best_inter_model)"
        if student.load_projections(settings.student_model_name_or_path):
            separate += f", continued from {settings.student_model_name_or_path}"
        weights = (settings.hidden_weight, settings.attention_weight)
        dev = concat_features(data.devs)
        objective = intermediate_objective(teacher, layer_map, weights)
        evaluate = lambda: intermediate_dev_loss(student, teacher, layer_map, dev,  # noqa: E731
                                                 settings.eval_batch_size, pad, weights, dist)
        describe = {"layer_map": layer_map.describe(), "projections": mode}
        if dist.is_main:
            print(f"layer map: {layer_map.describe()}\nprojections: {mode}{separate}")
    else:
        student = DistillationStudent(models.student)
        teacher_logits = teacher_logits_of(teacher, settings.teacher_path, data.train, settings.eval_batch_size, pad,
                                           dist, cache_dir(settings))
        objective = prediction_objective(teacher_logits, spec, settings.T)
        evaluate = lambda: evaluate_task(models.student, spec, data.devs, settings.eval_batch_size, pad,  # noqa: E731
                                         dist)
    freeze_unused(student, "intermediate" if stage1 else "prediction")
    checkpointed = {"student": models.student}
    if student.projections is not None:
        checkpointed["projections"] = student.projections
    return Job(model=student, checkpointed=checkpointed, objective=objective,
               data=task_data(settings, data.train, data.train_path, pad, dist), evaluate=evaluate,
               save_best=lambda path: save_pretrained_atomically(path, models.student, models.tokenizer,
                                                                 student.save_projections),
               export=None if stage1 else best_model_exporter(settings, settings.model_type), describe=describe)


def run(settings) -> dict:
    spec = get_task(settings.task_name)
    require(settings.T > 0, f"--T must be a positive temperature, got {settings.T}")
    stage1 = settings.intermediate_distill
    stage = STAGE_ONE if stage1 else STAGE_TWO
    check_stage_keeps_inputs(settings, stage)  # before anything is loaded or written
    return run_stage(settings, stage, lambda dist: build_job(settings, spec, stage1, dist))
