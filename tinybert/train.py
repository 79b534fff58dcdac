"""The training loop shared by teacher fine-tuning and both distillation stages.

Read it top to bottom: ``train -> run_epoch -> step -> optimize -> log -> evaluate_and_save
-> save_checkpoint``. What differs between the three jobs is the *objective* (a callable
turning a batch into named loss terms, with ``loss`` the total) and the *evaluation*.

Reliability (what a multi-day run needs):
- ``checkpoint-last*/`` holds everything needed to continue exactly: weights, optimizer,
  LR schedule, Paddle's RNG state (dropout), step, epoch, position in the epoch and the best
  figure so far. Batch order is a pure function of (seed, epoch), so a resumed run replays
  the same batches with the same dropout masks.
- SIGINT/SIGTERM write ``checkpoint-last*/`` and exit with a message saying how to resume.
- A NaN/inf in any loss term stops the run naming the step and the term; the checkpoints
  on disk stay the last good ones.
"""
from __future__ import annotations

import json
import math
import os
import pickle
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional


from .accelerate import autocast, grad_scaler, shard
from .checkpoint import atomic_directory
from .errors import UserError
from .features import Features, collate, epoch_batches

STATE_FILE = "trainer_state.pkl"


@dataclass
class TrainConfig:
    output_dir: str
    batch_size: int = 32
    learning_rate: float = 5e-5
    num_train_epochs: float = 3
    max_steps: int = -1
    warmup_proportion: float = 0.1
    weight_decay: float = 0.0
    logging_steps: int = 100
    save_steps: int = 100
    seed: int = 42
    bucket_by_length: bool = True
    resume: bool = False
    stage: str = "finetune"  # finetune | intermediate | prediction
    higher_is_better: bool = True  # direction of the evaluation's "score"
    best_name: str = "best_model"
    checkpoint_name: str = "checkpoint-last"
    max_grad_norm: float = 0.0  # 0 disables clipping (the references do not clip)
    amp: str = "off"  # off | float16 | bfloat16 (GPU only, see accelerate.py)
    rank: int = 0
    world_size: int = 1


    @classmethod
    def from_args(cls, args, **overrides) -> "TrainConfig":
        """The loop's settings from the shared command-line flags (tinybert.cli)."""
        names = ("output_dir", "batch_size", "learning_rate", "num_train_epochs", "max_steps", "warmup_proportion",
                 "weight_decay", "logging_steps", "save_steps", "seed", "bucket_by_length", "resume")
        return cls(**{name: getattr(args, name) for name in names}, **overrides)


@dataclass
class Progress:
    """Where a run is; saved in checkpoint-last so a resumed run continues exactly."""

    step: int = 0
    epoch: int = 0
    position: int = 0  # batches of ``epoch`` already done
    best: Optional[float] = None
    history: List[dict] = field(default_factory=list)


class NonFiniteLoss(UserError):
    pass


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class Trainer:
    """Optimises ``modules`` on ``features`` with ``objective``; evaluates with ``evaluate``.

    ``modules``: name -> paddle Layer whose parameters are trained and checkpointed.
    ``objective(batch) -> {term: scalar tensor}`` with the total under ``loss``.
    ``evaluate() -> {metric: float}`` with the selection number under ``score``.
    ``save_best(path)`` writes the best model directory (called inside an atomic temp dir).
    """

    def __init__(self, config: TrainConfig, modules: Dict, objective: Callable, evaluate: Callable,
                 save_best: Callable[[str], None], features: Features, pad_token_id: int, logger=None):
        self.config = config
        self.modules = modules
        self.objective = objective
        self.evaluate = evaluate
        self.save_best = save_best
        self.features = features
        self.pad_token_id = pad_token_id
        self.logger = logger
        self.progress = Progress()
        self.batches_per_epoch = len(shard(range(math.ceil(len(features) / config.batch_size)),
                                           config.rank, config.world_size))
        self.total_steps = self._total_steps()
        self.optimizer, self.scheduler = self._build_optimizer()
        self.scaler = grad_scaler(config.amp)
        self.is_main = config.rank == 0
        self._signal = None

    # ----------------------------------------------------------------- set-up
    def _total_steps(self) -> int:
        if self.config.max_steps and self.config.max_steps > 0:
            return int(self.config.max_steps)
        return max(1, int(math.ceil(self.config.num_train_epochs * self.batches_per_epoch)))

    def _parameters(self):
        return [p for module in self.modules.values() for p in module.parameters() if not p.stop_gradient]

    def _build_optimizer(self):
        import paddle

        warmup = int(self.config.warmup_proportion * self.total_steps)
        total = self.total_steps

        def linear_warmup_then_decay(step: int) -> float:
            if step < warmup:
                return (step + 1) / max(1, warmup)
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = paddle.optimizer.lr.LambdaDecay(self.config.learning_rate, linear_warmup_then_decay)
        no_decay = {
            p.name for module in self.modules.values() for n, p in module.named_parameters()
            if "bias" in n or "norm" in n.lower()
        }
        clip = paddle.nn.ClipGradByGlobalNorm(self.config.max_grad_norm) if self.config.max_grad_norm > 0 else None
        optimizer = paddle.optimizer.AdamW(
            learning_rate=scheduler,
            parameters=self._parameters(),
            weight_decay=self.config.weight_decay,
            apply_decay_param_fun=lambda name: name not in no_decay,
            grad_clip=clip,
        )
        return optimizer, scheduler

    @property
    def checkpoint_dir(self) -> str:
        return os.path.join(self.config.output_dir, self.config.checkpoint_name)

    # --------------------------------------------------------------- the loop
    def train(self) -> Progress:
        from tqdm import tqdm

        if self.config.resume:
            self.load_checkpoint()
        self._install_signal_handlers()
        bar = tqdm(total=self.total_steps, initial=self.progress.step, desc=self.config.stage,
                   dynamic_ncols=True, disable=None, mininterval=1.0)
        try:
            while self.progress.step < self.total_steps:
                self.run_epoch(bar)
            if self.progress.step % self.config.save_steps:  # the last step was not evaluated yet
                self.evaluate_and_save()
            self.save_checkpoint()
        except Interrupted as stop:
            self.save_checkpoint()
            bar.close()
            name = signal.Signals(stop.signum).name
            print(f"\n{name} received at step {self.progress.step}: progress saved in {self.checkpoint_dir}. "
                  f"Run the same command with --resume to continue.", file=sys.stderr)
            sys.exit(128 + stop.signum)
        finally:
            self._restore_signal_handlers()
            bar.close()
            if self.logger is not None:
                self.logger.close()  # also on errors: VisualDL flushes from a background thread
        return self.progress

    def run_epoch(self, bar) -> None:
        batches = shard(epoch_batches(self.features.lengths, self.config.batch_size, self.config.seed,
                                      self.progress.epoch, shuffle=True, bucket=self.config.bucket_by_length),
                        self.config.rank, self.config.world_size)
        while self.progress.position < len(batches) and self.progress.step < self.total_steps:
            batch = collate(self.features, batches[self.progress.position], self.pad_token_id)
            terms = self.step(batch)
            self.optimize(terms["loss"])
            self.progress.position += 1
            self.progress.step += 1
            self.log(terms, bar)
            if self.progress.step % self.config.save_steps == 0:
                self.evaluate_and_save()
                self.save_checkpoint()
            if self._signal is not None:
                raise Interrupted(self._signal)
        if self.progress.position >= len(batches):
            self.progress.epoch += 1
            self.progress.position = 0

    def step(self, batch) -> Dict:
        for module in self.modules.values():
            module.train()
        with autocast(self.config.amp):
            terms = self.objective(batch)
        values = {name: float(value) for name, value in terms.items()}
        bad = [name for name, value in values.items() if not math.isfinite(value)]
        if bad:
            raise NonFiniteLoss(
                f"loss term '{bad[0]}' is {values[bad[0]]} at step {self.progress.step + 1} "
                f"({self.config.stage}); checkpoints on disk are from the last good step. "
                f"Lower --learning_rate or check the data"
            )
        self._last_values = values
        return terms

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

    def log(self, terms: Dict, bar) -> None:
        values = self._last_values
        lr = self.optimizer.get_lr()
        bar.update(1)
        bar.set_postfix({**{name: f"{value:.4g}" for name, value in values.items()}, "lr": f"{lr:.2e}"}, refresh=False)
        if self.progress.step % self.config.logging_steps == 0:
            shown = " ".join(f"{name}={value:.5f}" for name, value in values.items())
            bar.write(f"[{self.config.stage}] step {self.progress.step}/{self.total_steps} "
                      f"epoch {self.progress.epoch} lr {lr:.3e} {shown}")
            if self.logger is not None:
                for name, value in values.items():
                    self.logger.scalar(f"{self.config.stage}/train/{name}", value, self.progress.step)
                self.logger.scalar(f"{self.config.stage}/train/lr", lr, self.progress.step)

    # ------------------------------------------------------ evaluation, saving
    def evaluate_and_save(self) -> Optional[dict]:
        if not self.is_main:  # rank 0 evaluates and saves for everyone
            return None
        for module in self.modules.values():
            module.eval()
        results = self.evaluate()
        score = results["score"]
        best = self.progress.best
        improved = best is None or (score > best if self.config.higher_is_better else score < best)
        record = {"stage": self.config.stage, "step": self.progress.step, "epoch": self.progress.epoch,
                  **{k: float(v) for k, v in results.items()}, "best": bool(improved), "time": time.time()}
        if improved:
            self.progress.best = score
            self.save_best(os.path.join(self.config.output_dir, self.config.best_name))
        self.progress.history.append(record)
        append_jsonl(os.path.join(self.config.output_dir, "eval_results.jsonl"), record)
        shown = " ".join(f"{k}={v:.4f}" for k, v in results.items())
        from tqdm import tqdm

        tqdm.write(f"[{self.config.stage}] eval step {self.progress.step}: {shown}"  # keeps the bar intact
                   f"{'  (new best, saved ' + self.config.best_name + '/)' if improved else ''}")
        if self.logger is not None:
            for name, value in results.items():
                self.logger.scalar(f"{self.config.stage}/dev/{name}", float(value), self.progress.step)
        return results

    def save_checkpoint(self) -> None:
        import paddle

        if not self.is_main:
            return
        with atomic_directory(self.checkpoint_dir) as temporary:
            for name, module in self.modules.items():
                paddle.save(module.state_dict(), os.path.join(temporary, f"{name}.pdparams"))
            paddle.save(self.optimizer.state_dict(), os.path.join(temporary, "optimizer.pdopt"))
            state = {"progress": asdict(self.progress), "scheduler": self.scheduler.state_dict(),
                     "rng": paddle.get_rng_state(), "config": asdict(self.config),
                     "scaler": self.scaler.state_dict() if self.scaler is not None else None}
            with open(os.path.join(temporary, STATE_FILE), "wb") as handle:
                pickle.dump(state, handle)

    def load_checkpoint(self) -> None:
        import paddle

        from .models import read_state_dict

        directory = self.checkpoint_dir
        if not os.path.isdir(directory):
            raise UserError(f"--resume: no {directory}; this run has not saved a checkpoint yet (drop --resume)")
        try:
            with open(os.path.join(directory, STATE_FILE), "rb") as handle:
                state = pickle.load(handle)
        except Exception:
            raise UserError(f"{directory}/{STATE_FILE} is missing or corrupt; resume is impossible, "
                            f"start again with --overwrite_output_dir") from None
        for name, module in self.modules.items():
            module.set_state_dict(read_state_dict(os.path.join(directory, f"{name}.pdparams")))
        self.optimizer.set_state_dict(read_state_dict(os.path.join(directory, "optimizer.pdopt")))
        self.scheduler.set_state_dict(state["scheduler"])
        paddle.set_rng_state(state["rng"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.progress = Progress(**state["progress"])
        print(f"resumed {self.config.stage} from {directory} at step {self.progress.step} "
              f"(epoch {self.progress.epoch}, batch {self.progress.position})", flush=True)

    # ---------------------------------------------------------------- signals
    def _install_signal_handlers(self) -> None:
        def remember(signum, _frame):
            if self._signal is not None:  # second signal: stop now
                raise KeyboardInterrupt
            self._signal = signum
        self._previous = {s: signal.signal(s, remember) for s in (signal.SIGINT, signal.SIGTERM)}

    def _restore_signal_handlers(self) -> None:
        for signum, handler in getattr(self, "_previous", {}).items():
            signal.signal(signum, handler)


def append_jsonl(path: str, record: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class ScalarLogger:
    """VisualDL scalars under ``<output_dir>/vdl/`` (PaddlePaddle's dashboard)."""

    def __init__(self, logdir: str):
        try:
            from visualdl import LogWriter

            self.writer = LogWriter(logdir=os.path.abspath(logdir))  # its writer thread outlives a chdir
        except Exception as err:  # pragma: no cover - VisualDL is a PaddleNLP dependency
            print(f"warning: VisualDL unavailable ({err}); dashboard logging disabled", file=sys.stderr)
            self.writer = None

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag=tag, value=float(value), step=int(step))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
