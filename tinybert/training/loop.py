"""The training loop shared by teacher fine-tuning, both distillation stages and general distillation.

Read it top to bottom: ``train -> run_epoch -> step -> optimize -> log -> evaluate_and_save ->
save_checkpoint``. What differs between jobs is passed in: the *objective* (a batch -> named
loss terms, the total under ``loss``), the *batch source* (``tinybert.data.batches``), the
*evaluation*, the *reporter* (everything shown or recorded) and the *distribution* (one or
several processes).

Reliability (what a multi-day run needs):
- ``checkpoint-last*/`` holds weights, optimizer, LR schedule, every rank's RNG state (dropout),
  step, epoch, position in the epoch and the best figure so far, plus the settings that give
  the position its meaning; resuming under other settings is refused.
- SIGINT/SIGTERM: the ranks agree to stop after the same step, write ``checkpoint-last*/`` and
  exit with 128+signal. A second Ctrl-C stops at once.
- Loss values stay on the device between logging steps (no per-step host synchronisation); a
  NaN/inf term stops the run at the next logging or saving step, before anything is saved, so
  the checkpoints on disk stay the last good ones.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

from .accelerate import autocast, grad_scaler
from .checkpoint import load_training_state, save_training_state
from .distributed import Distribution
from .meter import TermMeter
from . import rng
from .optim import build_optimizer
from .reporter import SilentReporter
from .signals import Interrupted, StopSignal


@dataclass
class TrainConfig:
    output_dir: str
    learning_rate: float = 5e-5
    num_train_epochs: float = 3
    max_steps: int = -1
    warmup_proportion: float = 0.1
    weight_decay: float = 0.0
    logging_steps: int = 100
    save_steps: int = 100
    resume: bool = False
    stage: str = "finetune"  # finetune | intermediate | prediction | general
    higher_is_better: bool = True  # direction of the evaluation's "score"
    best_name: str = "best_model"
    checkpoint_name: str = "checkpoint-last"
    max_grad_norm: float = 0.0  # 0 disables clipping (the references do not clip)
    amp: str = "off"  # off | float16 | bfloat16 (GPU only, see accelerate.py)
    settings: Dict = field(default_factory=dict)  # what a resumed run must share (checkpoint.RESUME_SETTINGS)

    @classmethod
    def from_settings(cls, job_settings, **overrides) -> "TrainConfig":
        """The loop's part of a job's settings (``tinybert.settings.TrainingSettings``)."""
        names = ("output_dir", "learning_rate", "num_train_epochs", "max_steps", "warmup_proportion",
                 "weight_decay", "logging_steps", "save_steps", "resume")
        return cls(**{name: getattr(job_settings, name) for name in names}, **overrides)


def total_steps(config: TrainConfig, batches) -> int:
    """``--max_steps`` when given, else the epochs' steps (at least one).

    ``batches.batches_per_epoch`` is read only in the second case: for a streamed corpus it
    costs a tokenization pass.
    """
    if config.max_steps and config.max_steps > 0:
        return int(config.max_steps)
    return max(1, int(math.ceil(config.num_train_epochs * batches.batches_per_epoch)))


@dataclass
class Progress:
    """Where a run is; saved in checkpoint-last so a resumed run continues exactly."""

    step: int = 0
    epoch: int = 0
    position: int = 0  # batches of ``epoch`` already done by this rank
    best: Optional[float] = None
    history: List[dict] = field(default_factory=list)


class Trainer:
    """Optimises ``model`` on ``batches`` with ``objective``; rank 0 evaluates with ``evaluate``.

    ``model``: the layer whose trainable parameters are optimised, possibly wrapped by
    ``Distribution.data_parallel``; ``objective`` calls it. ``checkpointed``: name -> layer
    saved in ``checkpoint-last*``. ``evaluate() -> {metric: float}`` with the selection number
    under ``score``; ``save_best(path)`` writes the best model directory.
    """

    def __init__(self, config: TrainConfig, model, checkpointed: Dict, objective: Callable, batches,
                 evaluate: Optional[Callable] = None, save_best: Optional[Callable[[str], None]] = None,
                 reporter=None, distribution: Optional[Distribution] = None):
        self.config, self.model, self.checkpointed, self.objective = config, model, checkpointed, objective
        self.batches, self.evaluate, self.save_best = batches, evaluate, save_best
        self.reporter = reporter or SilentReporter()
        self.dist = distribution or Distribution()
        self.progress = Progress()
        self.total_steps = total_steps(config, batches)
        self.optimizer, self.scheduler = build_optimizer(model, config.learning_rate, self.total_steps,
                                                         config.warmup_proportion, config.weight_decay,
                                                         config.max_grad_norm)
        self.scaler = grad_scaler(config.amp)
        self.meter = TermMeter(config.stage, self.dist.world_size)
        self.stop = StopSignal()

    @property
    def checkpoint_dir(self) -> str:
        return os.path.join(self.config.output_dir, self.config.checkpoint_name)

    # --------------------------------------------------------------- the loop
    def train(self) -> Progress:
        if self.config.resume:
            self.load_checkpoint()
        self.stop.install()
        self.reporter.start(self.config.stage, self.total_steps, self.progress.step)
        try:
            self.model.train()
            while self.progress.step < self.total_steps:
                self.run_epoch()
            if self.progress.step % self.config.save_steps:  # the last step was not evaluated yet
                self.evaluate_and_save()
            self.save_checkpoint()
            self.dist.conclude(self.model)
        except Interrupted as stop:
            self.save_checkpoint()
            name = signal.Signals(stop.signum).name
            print(f"\n{name} received at step {self.progress.step}: progress saved in {self.checkpoint_dir}. "
                  f"Run the same command with --resume to continue.", file=sys.stderr)
            sys.exit(128 + stop.signum)
        finally:
            self.stop.restore()
            self.reporter.close()
        return self.progress

    def run_epoch(self) -> None:
        for batch in self.meter.timed(self.batches.epoch(self.progress.epoch, self.progress.position)):
            terms = self.step(batch)
            self.optimize(terms["loss"])
            self.progress.position += 1
            self.progress.step += 1
            self.log(terms)
            if self.progress.step % self.config.save_steps == 0:
                self.evaluate_and_save()
                self.save_checkpoint()
            if self.dist.any(self.stop.signum is not None):  # all ranks stop after the same step
                raise Interrupted(self.stop.signum or signal.SIGTERM)
            if self.progress.step >= self.total_steps:
                return
        self.progress.epoch += 1
        self.progress.position = 0

    def step(self, batch) -> Dict:
        """The named loss terms of one batch (device tensors; nothing is read back here)."""
        with autocast(self.config.amp):
            return self.objective(batch)

    def optimize(self, loss) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.clear_grad()

    def log(self, terms: Dict) -> None:
        self.meter.add(terms)
        self.reporter.stepped()
        if self.progress.step % self.config.logging_steps == 0:
            self.reporter.training(self.progress.step, self.progress.epoch, self.total_steps,
                                   self.optimizer.get_lr(), self.meter.read(self.progress.step, with_speed=True))

    # ------------------------------------------------------ evaluation, saving
    def evaluate_and_save(self) -> Optional[dict]:
        """Every rank evaluates its share of the dev set (``training.evaluate``) and learns the
        result; rank 0 saves and reports."""
        self.meter.read(self.progress.step)  # never evaluate or save weights that a NaN has reached
        if self.evaluate is None:  # nothing to select on (general distillation): keep the latest
            if self.dist.is_main:
                self.save_best(os.path.join(self.config.output_dir, self.config.best_name))
            return None
        self.model.eval()
        started = time.time()
        results = self.evaluate()
        self.model.train()
        score, best = results["score"], self.progress.best
        improved = best is None or (score > best if self.config.higher_is_better else score < best)
        record = {"stage": self.config.stage, "step": self.progress.step, "epoch": self.progress.epoch,
                  **{k: float(v) for k, v in results.items()}, "best": bool(improved), "time": time.time(),
                  "eval_seconds": round(time.time() - started, 3)}
        if improved:
            self.progress.best = score
            if self.dist.is_main:
                self.save_best(os.path.join(self.config.output_dir, self.config.best_name))
        self.progress.history.append(record)
        self.reporter.evaluation(record, self.config.best_name if improved else "")
        return results

    def save_checkpoint(self) -> None:
        """Every rank hands its RNG state to rank 0, which writes the checkpoint."""
        self.meter.read(self.progress.step)
        stream = self.batches.state_dict() if hasattr(self.batches, "state_dict") else None
        rng_states, streams = zip(*self.dist.gather((rng.capture(self.dist.device), stream),
                                                    "process 0 to save the best model"))

        def write():
            state = {"progress": asdict(self.progress), "scheduler": self.scheduler.state_dict(),
                     "rng": list(rng_states), "batches": list(streams), "settings": self.config.settings,
                     "scaler": self.scaler.state_dict() if self.scaler is not None else None}
            save_training_state(self.checkpoint_dir, self.checkpointed, self.optimizer, state)

        self.dist.main_does(write, "process 0 to write the checkpoint")

    def load_checkpoint(self) -> None:
        state = load_training_state(self.checkpoint_dir, self.checkpointed, self.optimizer, self.config.settings)
        self.scheduler.set_state_dict(state["scheduler"])
        rng.restore(state["rng"][self.dist.rank], self.dist.device,
                    fallback_seed=int(self.config.settings.get("seed") or 0) + 7919 * self.dist.rank
                    + state["progress"]["step"])
        if hasattr(self.batches, "load_state_dict"):  # a streamed corpus: where this rank was in it
            self.batches.load_state_dict(state["batches"][self.dist.rank])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.progress = Progress(**state["progress"])
        if self.dist.is_main:
            print(f"resumed {self.config.stage} from {self.checkpoint_dir} at step {self.progress.step} "
                  f"(epoch {self.progress.epoch}, batch {self.progress.position})", flush=True)
