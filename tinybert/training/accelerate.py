"""Mixed precision (``--amp``), kept out of the loop's logic.

float16 or bfloat16 autocast (O1: matmuls in half precision, reductions and the loss in
float32), with dynamic loss scaling for float16. Paddle's AMP does nothing on CPU
(docs/environment.md), so there ``--amp`` warns and the run stays in float32. Several
processes are ``tinybert.training.distributed``'s concern.
"""
from __future__ import annotations

import contextlib
import sys

AMP_MODES = ("off", "float16", "bfloat16")


def resolve_amp(requested: str, device: str) -> str:
    """The AMP mode to use on ``device``; CPU runs warn and use float32."""
    mode = {"fp16": "float16", "bf16": "bfloat16", "true": "float16", "on": "float16"}.get(requested, requested)
    if mode not in AMP_MODES:
        from ..errors import UserError

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
