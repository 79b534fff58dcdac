"""This process's random state (dropout masks), saved per rank in checkpoints and restored on resume.

``paddle.get_rng_state()`` on a GPU returns one state per *visible* GPU and ``set_rng_state``
needs the same count back, so a checkpoint written with eight GPUs visible could not be
resumed with four, and a rank restored every GPU's generator but its own mattered. A rank uses
two generators: the CPU's, and on a GPU that GPU's own. Those two are saved, under the kind of
device, and restored whatever the number of visible devices. A checkpoint saved on another
kind of device (GPU then CPU, or back) cannot give the same dropout masks: the run continues
from a seed derived from ``--seed``, the rank and the step, and says so.
"""
from __future__ import annotations

import sys


def _kind(device: str) -> str:
    return "gpu" if device.startswith("gpu") else "cpu"


def _gpu_generator():
    import paddle
    from paddle.base import core

    current = paddle.get_device()  # "gpu:N": the GPU this rank was given
    return core.default_cuda_generator(int(current.split(":")[1]) if ":" in current else 0)


def capture(device: str) -> dict:
    """The generators this rank draws from on ``device``."""
    from paddle.base import core

    state = {"device": _kind(device), "cpu": core.default_cpu_generator().get_state()}
    if state["device"] == "gpu":
        state["gpu"] = _gpu_generator().get_state()
    return state


def restore(saved, device: str, fallback_seed: int) -> bool:
    """Set this rank's generators from ``saved``; False (and one line) when that cannot be exact."""
    import paddle
    from paddle.base import core

    kind = _kind(device)
    if isinstance(saved, list):  # checkpoints of 0.3.x and earlier: paddle.get_rng_state() of the saving rank
        saved = {"device": "cpu", "cpu": saved[0]} if len(saved) == 1 and kind == "cpu" else {"device": "old"}
    if saved.get("device") == kind:
        core.default_cpu_generator().set_state(saved["cpu"])
        if kind == "gpu":
            _gpu_generator().set_state(saved["gpu"])
        return True
    paddle.seed(fallback_seed)
    print(f"note: the checkpoint's random state was saved on {saved.get('device')} and this process runs on {kind}; "
          f"dropout continues from a new seed, so the resumed run is not bit-identical to an uninterrupted one",
          file=sys.stderr)
    return False
