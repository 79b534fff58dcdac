"""Teacher fine-tuning (what PaddleNLP's ``run_glue.py`` does, with our data layer and loop)."""
from __future__ import annotations

import os

from .accelerate import init_distributed, resolve_amp, wrap_student
from .checkpoint import save_pretrained_atomically
from .evaluate import evaluate_task, model_inputs, to_tensors
from .export import export_best
from .features import load_task_data
from .models import check_source, load_model, load_tokenizer
from .run_setup import check_training_flags, prepare_output_dir
from .runtime import select_device, set_seed
from .tasks import get_task
from .train import ScalarLogger, Trainer, TrainConfig


def supervised_loss(spec):
    """Cross-entropy on gold labels, or MSE on the gold score for regression (STS-B)."""
    import paddle.nn.functional as F

    def objective(model, tensors):
        logits = model(**model_inputs(tensors))
        if spec.is_regression:
            loss = F.mse_loss(logits.reshape([-1]), tensors["labels"])
        else:
            loss = F.cross_entropy(logits, tensors["labels"])
        return {"loss": loss}

    return objective


def run(args) -> dict:
    spec = get_task(args.task_name)
    check_training_flags(args)
    prepare_output_dir(args, "finetune", "checkpoint-last")
    device = select_device(args.device)
    set_seed(args.seed)

    check_source(args.model_name_or_path, args.model_type, "--model_name_or_path")  # before the tokenizer's vaguer error
    tokenizer = load_tokenizer(args.model_type, args.model_name_or_path)
    data = load_task_data(args, spec, tokenizer)
    train, devs = data.train, data.devs
    model = load_model(args.model_type, args.model_name_or_path, num_labels=spec.num_labels)
    print(f"fine-tuning {args.model_name_or_path} on {spec.name}: {len(train)} train examples, "
          f"{', '.join(str(len(d)) for d in devs)} dev examples")

    objective = supervised_loss(spec)
    logger = ScalarLogger(os.path.join(args.output_dir, "vdl"))
    rank, world_size = init_distributed()
    forward = wrap_student(model, world_size)
    config = TrainConfig.from_args(args, stage="finetune", amp=resolve_amp(args.amp, device),
                                   rank=rank, world_size=world_size)
    trainer = Trainer(
        config,
        modules={"model": model},
        objective=lambda batch: objective(forward, to_tensors(batch)),
        evaluate=lambda: evaluate_task(model, spec, devs, args.eval_batch_size, tokenizer.pad_token_id),
        save_best=lambda path: save_pretrained_atomically(path, model, tokenizer),
        features=train,
        pad_token_id=tokenizer.pad_token_id,
        logger=logger,
    )
    progress = trainer.train()
    best_dir = os.path.join(args.output_dir, "best_model")
    print(f"best dev score {progress.best:.4f}; model in {best_dir}")
    if args.export_dir and config.rank == 0:
        export_best(best_dir, args.model_type, args.export_dir, args.max_seq_length)
    return {"best": progress.best}
