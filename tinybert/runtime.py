"""Process set-up shared by the three entry points: CPU speed settings, quiet logs, device.

``prepare_process`` must run before Paddle is imported: MKL reads ``MKL_DEBUG_CPU_TYPE``
when it loads. On AMD CPUs Paddle's bundled MKL otherwise takes a slow code path; with two
threads and that setting a BERT step ran ~3.8x faster here (docs/environment.md).
"""
from __future__ import annotations

import contextlib
import io
import os
import random
import re
import sys
import warnings


def _cpu_is_amd() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("vendor_id"):
                    return "AuthenticAMD" in line
    except OSError:
        pass
    return False


def prepare_process() -> None:
    """Set thread, MKL and logging settings the user has not set, then import Paddle quietly.

    Without ``OMP_NUM_THREADS`` Paddle uses one core. It must be set before ``import paddle``
    (measured here: set afterwards it did not take effect), and then Paddle prints a
    data-parallel warning that does not apply to us; we drop that warning alone.
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    if _cpu_is_amd():
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("FLAGS_call_stack_level", "0")
    quiet_known_warnings()
    import numpy  # noqa: F401  (before paddle: avoids a zlib clash of some paddle builds, docs/environment.md)
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        import paddle  # noqa: F401
    for line in captured.getvalue().splitlines():
        if "OMP_NUM_THREADS" not in line:
            print(line, file=sys.stderr)
    quiet_paddlenlp()


# Warnings Paddle and PaddleNLP print on every run that say nothing about the run, matched by
# the start of their message (a regular expression); every other warning, Paddle's AMP and
# device warnings included, is shown (docs/environment.md#import-noise).
KNOWN_NOISE = (
    ".*distutils", ".*pkg_resources", "No ccache found", ".*setuptools",
    "Tensor do not have 'place' interface for pir graph mode",  # Paddle 3 jit.to_static of PaddleNLP's BERT
    "Be aware, overflowing tokens are not returned",  # PaddleNLP, every truncated pair: we never ask for them
)


def quiet_known_warnings() -> None:
    for pattern in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=pattern)


def quiet_paddlenlp() -> None:
    """Silence PaddleNLP's coloured INFO logs (warnings and errors still show)."""
    try:
        from paddlenlp.utils.log import logger

        logger.set_level("WARNING")
    except Exception:  # pragma: no cover
        pass


def choose_device(requested: str) -> str:
    """The device to use for ``requested`` ('gpu', 'gpu:1', 'cpu'): the CPU, saying why, when there is no GPU.

    Two cases fall back: a Paddle build without CUDA, and a CUDA build that sees no GPU (none
    installed, ``CUDA_VISIBLE_DEVICES`` empty, or a launcher started without ``--gpus``).
    Nothing is set here: under the launcher the place is set once the process group exists
    (``tinybert.training.distributed.Distribution.start``).
    """
    import paddle

    requested = (requested or "gpu").lower()
    if requested.startswith("gpu"):
        reason = None
        if not paddle.device.is_compiled_with_cuda():
            reason = "this Paddle build has no CUDA (install paddlepaddle-gpu to train on a GPU)"
        elif paddle.device.cuda.device_count() == 0:
            reason = "this CUDA build of Paddle sees no GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)"
        if reason:
            print(f"warning: --device {requested} requested but {reason}; using the CPU. "
                  f"Pass --device cpu to silence this.", file=sys.stderr)
            return "cpu"
    if requested != "cpu" and not re.fullmatch(r"gpu(:\d+)?", requested):
        from .errors import UserError

        raise UserError(f"--device {requested}: use gpu, gpu:N or cpu")
    return requested


def select_device(requested: str) -> str:
    """:func:`choose_device`, then make it Paddle's current device (one process)."""
    return apply_device(choose_device(requested))


def apply_device(device: str) -> str:
    """Make ``device`` Paddle's current device; a device Paddle refuses is one line."""
    import paddle

    try:
        paddle.set_device(device)
    except (ValueError, RuntimeError) as err:
        from .errors import UserError

        raise UserError(f"--device {device}: {str(err).splitlines()[0][:160]}; use gpu, gpu:N or cpu") from None
    return device


def set_seed(seed: int) -> None:
    import numpy as np
    import paddle

    random.seed(seed)
    np.random.seed(seed % (2**32))
    paddle.seed(seed)
