"""Mixed precision (``--amp``), kept out of the loop's logic.

float16 or bfloat16 autocast (O1: matmuls in half precision, reductions and the loss in
float32), with dynamic loss scaling for float16. Paddle's AMP does nothing on CPU
(docs/environment.md), so there ``--amp`` warns and the run stays in float32. Several
processes are ``tinybert.training.distributed``'s concern.

On a GPU the mode is checked before training: ``paddle.amp.auto_cast`` turns itself off, with
only a Python warning, on GPUs older than compute capability 7.0 (float16) or 8.0 with CUDA 11
(bfloat16: not on a T4 or V100), and the run would train in float32 while its record says
``amp``. :func:`amp_unsupported` asks Paddle first (``paddle.amp.is_float16_supported`` /
``is_bfloat16_supported``, present on 2.6 and 3.x) and then applies auto_cast's own rule, which
is stricter for float16 (Paddle's function accepts compute capability 5.3).
"""
from __future__ import annotations

import contextlib
import sys
from typing import Optional

AMP_MODES = ("off", "float16", "bfloat16")
# what paddle.amp.auto_cast requires of an NVIDIA GPU (paddle/amp/auto_cast.py, 2.6 and 3.x)
NEEDS = {"float16": (7, 0), "bfloat16": (8, 11)}  # (compute capability major, CUDA major; 0: any)


def resolve_amp(requested: str, device: str) -> str:
    """The AMP mode to use on ``device``; a CPU, or a GPU without support, warns and uses float32."""
    mode = {"fp16": "float16", "bf16": "bfloat16", "true": "float16", "on": "float16"}.get(requested, requested)
    if mode not in AMP_MODES:
        from ..errors import UserError

        raise UserError(f"--amp {requested}: use one of {', '.join(AMP_MODES)}")
    if mode != "off" and not device.startswith("gpu"):
        print(f"warning: --amp {mode} needs a GPU; Paddle's AMP does nothing on CPU, training in float32",
              file=sys.stderr)
        return "off"
    if mode != "off":
        problem = amp_unsupported(mode)
        if problem:
            other = "float16" if mode == "bfloat16" and not amp_unsupported("float16") else None
            print(f"warning: --amp {mode}: {problem}; training in float32"
                  + (f" (--amp {other} works on this GPU)" if other else ""), file=sys.stderr)
            return "off"
    return mode


def amp_unsupported(mode: str) -> Optional[str]:
    """Why autocast in ``mode`` would not run on the current GPU (None: it will)."""
    import paddle

    supported = {"float16": paddle.amp.is_float16_supported, "bfloat16": paddle.amp.is_bfloat16_supported}[mode]
    name = _gpu_name()
    if not supported(None):  # the current device: the one select_device (or the launcher) set
        return f"Paddle reports that {name} does not support {mode}"
    if paddle.is_compiled_with_rocm():
        return None
    major, minor = paddle.device.cuda.get_device_capability()
    cuda = str(paddle.version.cuda() or "0")
    cuda_major = int(cuda.split(".")[0]) if cuda.split(".")[0].isdigit() else 0
    needed_major, needed_cuda = NEEDS[mode]
    if major < needed_major or cuda_major < needed_cuda:
        needs = f"compute capability {needed_major}.0" + (f" and CUDA {needed_cuda}" if needed_cuda else "")
        return (f"{name} (compute capability {major}.{minor}, CUDA {cuda}) cannot run Paddle's {mode} autocast, "
                f"which needs {needs}")
    return None


def _gpu_name() -> str:
    import paddle

    try:
        return f"the GPU {paddle.device.cuda.get_device_name()}"
    except Exception:  # pragma: no cover  (a build without the call)
        return "this GPU"


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
