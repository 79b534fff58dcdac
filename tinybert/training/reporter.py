"""Everything a training run shows or records about itself, in one place.

The loop calls a reporter; it never prints, opens files or touches VisualDL itself. The
console reporter (rank 0 of a run) drives the progress bar, writes the log lines, the
VisualDL scalars (``<output_dir>/vdl``) and the evaluation history (``eval_results.jsonl``,
docs/formats.md#eval_resultsjsonl). :class:`SilentReporter` does nothing: the other ranks,
benchmarks and tests use it.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Dict


class SilentReporter:
    """A reporter that shows and writes nothing."""

    def start(self, stage: str, total: int, initial: int) -> None:
        pass

    def stepped(self) -> None:
        pass

    def training(self, step: int, epoch: int, total: int, lr: float, values: Dict[str, float]) -> None:
        pass

    def evaluation(self, record: dict, improved_into: str = "") -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class ConsoleReporter(SilentReporter):
    """Progress bar, log lines, VisualDL scalars and ``eval_results.jsonl`` under ``output_dir``."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.history_path = os.path.join(output_dir, "eval_results.jsonl")
        self.bar = None
        self.stage = ""
        self.writer = _visualdl(os.path.join(output_dir, "vdl"))

    def start(self, stage: str, total: int, initial: int) -> None:
        from tqdm import tqdm

        self.stage = stage
        self.bar = tqdm(total=total, initial=initial, desc=stage, dynamic_ncols=True, disable=None, mininterval=1.0)

    def stepped(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def training(self, step: int, epoch: int, total: int, lr: float, values: Dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix({**{k: f"{v:.4g}" for k, v in values.items()}, "lr": f"{lr:.2e}"}, refresh=False)
        shown = " ".join(f"{name}={value:.5f}" for name, value in values.items())
        self.message(f"[{self.stage}] step {step}/{total} epoch {epoch} lr {lr:.3e} {shown}")
        for name, value in values.items():
            self._scalar(f"{self.stage}/train/{name}", value, step)
        self._scalar(f"{self.stage}/train/lr", lr, step)

    def evaluation(self, record: dict, improved_into: str = "") -> None:
        append_jsonl(self.history_path, record)
        metrics = {k: v for k, v in record.items() if k not in ("stage", "step", "epoch", "best", "time", "eval_seconds")}
        shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        saved = f"  (new best, saved {improved_into}/)" if improved_into else ""
        took = f" in {record['eval_seconds']:.1f} s" if "eval_seconds" in record else ""
        self.message(f"[{self.stage}] eval step {record['step']}{took}: {shown}{saved}")
        for name, value in metrics.items():
            self._scalar(f"{self.stage}/dev/{name}", value, record["step"])

    def message(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stdout)  # keeps the bar intact
        sys.stdout.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.writer is not None:
            self.writer.close()  # also after errors: VisualDL flushes from a background thread
            self.writer = None

    def _scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag=tag, value=float(value), step=int(step))


def _visualdl(logdir: str):
    try:
        from visualdl import LogWriter

        return LogWriter(logdir=os.path.abspath(logdir))  # its writer thread outlives a chdir
    except Exception as err:  # pragma: no cover - VisualDL is a PaddleNLP dependency
        print(f"warning: VisualDL unavailable ({err}); dashboard logging disabled", file=sys.stderr)
        return None


def append_jsonl(path: str, record: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
