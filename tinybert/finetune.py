"""Teacher fine-tuning (what PaddleNLP's ``run_glue.py`` does, with our data layer and loop)."""
from __future__ import annotations

from .checkpoint import save_pretrained_atomically
from .evaluate import evaluate_task, model_inputs, to_tensors
from .features import load_task_data
from .models import check_source, load_model, load_tokenizer
from .stage import Job, Stage, run_stage, task_data
from .student import DistillationStudent, freeze_unused
from .tasks import get_task

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


def build_job(args, spec, dist) -> Job:
    check_source(args.model_name_or_path, args.model_type, "--model_name_or_path")  # before the tokenizer's vaguer error
    tokenizer = load_tokenizer(args.model_type, args.model_name_or_path)
    data = load_task_data(args, spec, tokenizer)
    model = load_model(args.model_type, args.model_name_or_path, num_labels=spec.num_labels)
    if dist.is_main:
        print(f"fine-tuning {args.model_name_or_path} on {spec.name}: {len(data.train)} train examples, "
              f"{', '.join(str(len(d)) for d in data.devs)} dev examples")
    pad = tokenizer.pad_token_id
    trained = DistillationStudent(model)  # logits only; a TinyBERT's stage-1 projections stay frozen
    freeze_unused(trained, FINETUNE.name)
    return Job(model=trained, checkpointed={"model": model}, objective=supervised_loss(spec),
               data=task_data(args, data.train, data.train_path, pad, dist),
               evaluate=lambda: evaluate_task(model, spec, data.devs, args.eval_batch_size, pad),
               save_best=lambda path: save_pretrained_atomically(path, model, tokenizer),
               export_source=args.model_type)


def run(args) -> dict:
    spec = get_task(args.task_name)
    return run_stage(args, FINETUNE, lambda dist: build_job(args, spec, dist))
