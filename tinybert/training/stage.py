"""The set-up every training stage shares, in one function: :func:`run_stage`.

Teacher fine-tuning, distillation stage 1 and stage 2 differ in what they build (models, data,
objective, evaluation); that part is a ``build`` function returning a :class:`Job`. Everything
else is done here, in this order, by every process:

1. flags checked; device chosen; the process group joined (``paddle.distributed.launch``);
2. ``output_dir`` checked by every rank (read-only), then claimed by rank 0 while the others
   wait, so no rank reads a half-written directory;
3. seed set (the same on every rank, so models initialise identically); the job built;
4. the student wrapped for data parallelism once, after the job froze what it does not train;
   each rank then reseeds its dropout with its own seed;
5. the effective settings printed and saved in ``run_<stage>.json``;
6. the loop run; the best figure broadcast to every rank; the best model exported (rank 0).
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

from ..data.batches import TaskBatches
from ..data.task_data import TaskData, load_task_data
from ..runtime import choose_device, set_seed
from ..settings import TrainingSettings
from .accelerate import resolve_amp
from .checkpoint import read_training_state
from .distributed import Distribution
from .loop import TrainConfig, Trainer
from .reporter import ConsoleReporter, SilentReporter
from .setup import check_output_dir, check_training_flags, claim_output_dir


@dataclass(frozen=True)
class Stage:
    name: str  # finetune | intermediate | prediction
    checkpoint_name: str = "checkpoint-last"
    best_name: str = "best_model"
    higher_is_better: bool = True
    score_name: str = "score"


@dataclass
class DataSource:
    """A stage's training batches, what a resumed run must share about them, and what to print."""

    batches: object  # has batches_per_epoch and epoch(epoch, start) (tinybert.data.batches)
    settings: Dict  # compared on --resume (checkpoint.RESUME_SETTINGS)
    describe: Dict = field(default_factory=dict)


def task_data(settings, features, train_file: str, pad_token_id: int, dist: Distribution) -> DataSource:
    """The length-bucketed, sharded batches of a featurized GLUE training file."""
    batches = TaskBatches(features, settings.batch_size, settings.seed, pad_token_id, bucket=settings.bucket_by_length,
                          rank=dist.rank, world_size=dist.world_size)
    return DataSource(batches, {"train_file": os.path.abspath(train_file), "train_fingerprint": features.fingerprint()},
                      {"train_examples": len(features), "batches_per_epoch_per_process": batches.batches_per_epoch})


def cache_dir(settings) -> str:
    """Where token stores and teacher logits go: ``--cache_dir``, else ``<output_dir>/cache``."""
    return settings.cache_dir or os.path.join(settings.output_dir, "cache")


def shared_task_data(settings, spec, tokenizer, dist: Distribution, train_split: str = "train") -> TaskData:
    """The task's files featurized once: rank 0 builds the token stores while the others wait
    (as long as ``TINYBERT_WAIT_TIMEOUT`` allows, docs/distributed.md), then every rank maps the
    same files (the OS page cache holds one copy). A file rank 0 refuses stops every rank."""
    where = (spec, tokenizer, settings.glue_dir, settings.max_seq_length, settings.skip_bad_rows, train_split,
             cache_dir(settings))
    data = dist.main_does(lambda: load_task_data(*where, may_build=True), "process 0 to build the token stores")
    return data if data is not None else load_task_data(*where, may_build=False)


@dataclass
class Job:
    """What a stage builds: the trained layer, its loss, its data and how it is judged and saved."""

    model: object  # the layer to train (wrapped for data parallelism by run_stage)
    checkpointed: Dict  # name -> layer saved in checkpoint-last* (unwrapped)
    objective: Callable  # (forward, batch) -> {term: tensor}, total under "loss"
    data: DataSource
    evaluate: Optional[Callable]  # () -> metrics with "score" (rank 0); None: save the model at every save
    save_best: Callable  # (path) -> None
    export: Optional[Callable] = None  # (best_dir) -> None: --export_dir's export of the best model (rank 0)
    describe: Dict = field(default_factory=dict)  # extra effective settings to print and record


def run_stage(settings: TrainingSettings, stage: Stage, build: Callable[[Distribution], Job]) -> dict:
    check_training_flags(settings)
    dist = Distribution.start(choose_device(settings.device))
    device = dist.device
    check_output_dir(settings, stage.name, stage.checkpoint_name)
    shared = {"world_size": dist.world_size, "batch_size": settings.batch_size, "seed": settings.seed,
              "max_seq_length": settings.max_seq_length, "num_train_epochs": settings.num_train_epochs,
              "max_steps": settings.max_steps, "bucket_by_length": settings.bucket_by_length}
    if settings.resume:  # refused before the job builds anything (token stores, teacher logits)
        read_training_state(os.path.join(settings.output_dir, stage.checkpoint_name), shared)
    dist.barrier("every process to check the flags and the output directory")
    set_seed(settings.seed)

    job = build(dist)
    model = dist.data_parallel(job.model)
    if dist.several:
        set_seed(settings.seed + dist.rank)  # same initial weights everywhere, own dropout masks per rank
    shared.update(job.data.settings)
    config = TrainConfig.from_settings(settings, stage=stage.name, checkpoint_name=stage.checkpoint_name,
                                       best_name=stage.best_name, higher_is_better=stage.higher_is_better,
                                       amp=resolve_amp(settings.amp, device), settings=shared)
    run_info = {"device": device, "processes": dist.world_size, "global_batch_size": settings.batch_size * dist.world_size,
                **job.data.describe, **job.describe, "version": package_version(), "git_commit": git_commit()}
    if settings.resume:  # and the data: before anything in output_dir changes
        read_training_state(os.path.join(settings.output_dir, stage.checkpoint_name), shared)

    def claim():
        claim_output_dir(settings, stage.name, stage.checkpoint_name, run_info)
        print(f"[{stage.name}] " + ", ".join(f"{k} {v}" for k, v in run_info.items() if k != "git_commit"), flush=True)

    dist.main_does(claim, "process 0 to claim the output directory")

    reporter = ConsoleReporter(settings.output_dir) if dist.is_main else SilentReporter()
    trainer = Trainer(config, model, job.checkpointed, lambda batch: job.objective(model, batch), job.data.batches,
                      job.evaluate, job.save_best, reporter, dist)
    progress = trainer.train()
    best_dir = os.path.join(settings.output_dir, stage.best_name)
    if dist.is_main:
        best = "" if progress.best is None else f"best dev {stage.score_name} {progress.best:.5f}; "
        print(f"{stage.name}: {best}model in {best_dir}", flush=True)
    if job.export is not None:
        dist.main_does(lambda: job.export(best_dir), "process 0 to export the best model")
    dist.barrier("process 0 to finish")
    return {"best": progress.best, "stage": stage.name, "best_dir": best_dir}


def package_version() -> str:
    from .. import __version__

    return __version__


def git_commit() -> Optional[str]:
    """The commit of the checkout the code runs from, when it is one (None otherwise)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None
