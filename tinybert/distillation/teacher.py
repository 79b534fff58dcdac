"""Teacher fine-tuning (what PaddleNLP's ``run_glue.py`` does, with our data layer and loop)."""
from __future__ import annotations

from ..data.tasks import get_task
from ..models.loading import check_length, check_source, load_model, load_tokenizer
from ..models.student import DistillationStudent, freeze_unused
from ..serving.export import best_model_exporter
from ..training.checkpoint import save_pretrained_atomically
from ..training.evaluate import evaluate_task, model_inputs, to_tensors
from ..training.guard import check_stage_keeps_inputs
from ..training.stage import Job, Stage, run_stage, shared_task_data, task_data

FINETUNE = Stage("finetune")


def supervised_loss(spec):
    """Cross-entropy on gold labels, or MSE on the gold score for regression (STS-B)."""
    import paddle.nn.functional as F

    def objective(model, batch):
        tensors = to_tensors(batch)
        logits = model(**model_inputs(tensors))
        if spec.is_regression:
            loss = F.mse_loss(logits.reshape([-1]), tensors["labels"])
        else:
            loss = F.cross_entropy(logits, tensors["labels"])
        return {"loss": loss}

    return objective


def build_job(settings, spec, dist) -> Job:
    check_source(settings.model_name_or_path, settings.model_type, "--model_name_or_path")  # before the tokenizer's vaguer error
    tokenizer = load_tokenizer(settings.model_type, settings.model_name_or_path)
    model = load_model(settings.model_type, settings.model_name_or_path, num_labels=spec.num_labels)
    check_length(model, settings.max_seq_length, f"--model_name_or_path {settings.model_name_or_path}")
    data = shared_task_data(settings, spec, tokenizer, dist)
    if dist.is_main:
        print(f"fine-tuning {settings.model_name_or_path} on {spec.name}: {len(data.train)} train examples, "
              f"{', '.join(str(len(d)) for d in data.devs)} dev examples")
    pad = tokenizer.pad_token_id
    trained = DistillationStudent(model)  # logits only; a TinyBERT's stage-1 projections stay frozen
    freeze_unused(trained, FINETUNE.name)
    return Job(model=trained, checkpointed={"model": model}, objective=supervised_loss(spec),
               data=task_data(settings, data.train, data.train_path, pad, dist),
               evaluate=lambda: evaluate_task(model, spec, data.devs, settings.eval_batch_size, pad, dist),
               save_best=lambda path: save_pretrained_atomically(path, model, tokenizer),
               export=best_model_exporter(settings, settings.model_type))


def run(settings) -> dict:
    spec = get_task(settings.task_name)
    check_stage_keeps_inputs(settings, FINETUNE)
    return run_stage(settings, FINETUNE, lambda dist: build_job(settings, spec, dist))
