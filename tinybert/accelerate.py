"""Mixed precision (``--amp``) and multi-GPU data parallelism, kept out of the loop's logic.

- AMP: float16 or bfloat16 autocast (O1: matmuls in half precision, reductions and the loss
  in float32), with dynamic loss scaling for float16. Paddle's AMP does nothing on CPU
  (ASSETS.md), so there ``--amp`` warns and the run stays in float32.
- Multi-GPU: under ``python -m paddle.distributed.launch`` every process trains the student
  wrapped in ``paddle.DataParallel`` on its own shard of each epoch's batches; the teacher is
  replicated, never wrapped (it has no gradients) and stays in eval mode. Rank 0 evaluates and
  writes checkpoints. (Huawei's script wrapped the teacher instead of the student.)
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import List, Sequence, Tuple

AMP_MODES = ("off", "float16", "bfloat16")


def resolve_amp(requested: str, device: str) -> str:
    """The AMP mode to use on ``device``; CPU runs warn and use float32."""
    mode = {"fp16": "float16", "bf16": "bfloat16", "true": "float16", "on": "float16"}.get(requested, requested)
    if mode not in AMP_MODES:
        from .errors import UserError

        raise UserError(f"--amp {requested}: use one of {', '.join(AMP_MODES)}")
    if mode != "off" and not device.startswith("gpu"):
        print(f"warning: --amp {mode} needs a GPU; Paddle's AMP does nothing on CPU, training in float32",
              file=sys.stderr)
        return "off"
    return mode


def autocast(mode: str):
    """Context for the forward pass and loss of one step."""
    if mode == "off":
        return contextlib.nullcontext()
    import paddle

    return paddle.amp.auto_cast(enable=True, dtype=mode, level="O1")


def grad_scaler(mode: str):
    """Dynamic loss scaling for float16 (bfloat16 has float32's range and needs none)."""
    if mode != "float16":
        return None
    import paddle

    return paddle.amp.GradScaler(init_loss_scaling=2.0**15)


def world() -> Tuple[int, int]:
    """(rank, world size) of this process; (0, 1) unless started by paddle.distributed.launch."""
    size = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
    return rank, size


def init_distributed() -> Tuple[int, int]:
    rank, size = world()
    if size > 1:
        import paddle.distributed as dist

        dist.init_parallel_env()
        rank, size = dist.get_rank(), dist.get_world_size()
    return rank, size


def wrap_student(student, world_size: int, wrapper=None):
    """The callable used for the student's forward: DataParallel when there are several GPUs."""
    if world_size <= 1:
        return student
    if wrapper is None:
        import paddle

        wrapper = paddle.DataParallel
    return wrapper(student)


def unwrap(model):
    """The model inside a ``paddle.DataParallel`` wrapper (the model itself otherwise)."""
    return getattr(model, "_layers", model)


def shard(batches: Sequence, rank: int, world_size: int) -> List:
    """This rank's batches: every ``world_size``-th, the uneven tail dropped so ranks stay in step."""
    if world_size <= 1:
        return list(batches)
    usable = len(batches) - len(batches) % world_size
    return list(batches[rank:usable:world_size])
