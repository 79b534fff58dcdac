"""Process set-up shared by the three entry points: CPU speed settings, quiet logs, device.

``prepare_process`` must run before Paddle is imported: MKL reads ``MKL_DEBUG_CPU_TYPE``
when it loads. On AMD CPUs Paddle's bundled MKL otherwise takes a slow code path; with two
threads and that setting a BERT step ran ~3.8x faster here (ASSETS.md, "CPU facts").
"""
from __future__ import annotations

import contextlib
import io
import os
import random
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
    for pattern in ("distutils", "pkg_resources", "ccache", "setuptools"):
        warnings.filterwarnings("ignore", message=f".*{pattern}.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    import numpy  # noqa: F401  (before paddle: avoids a zlib clash of some paddle builds, ASSETS.md)
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        import paddle  # noqa: F401
    for line in captured.getvalue().splitlines():
        if "OMP_NUM_THREADS" not in line:
            print(line, file=sys.stderr)
    quiet_paddlenlp()


def quiet_paddlenlp() -> None:
    """Silence PaddleNLP's coloured INFO logs (warnings and errors still show)."""
    try:
        from paddlenlp.utils.log import logger

        logger.set_level("WARNING")
    except Exception:  # pragma: no cover
        pass


def select_device(requested: str) -> str:
    """Use ``requested`` ('gpu', 'gpu:1', 'cpu'); fall back to CPU with a message if no CUDA."""
    import paddle

    requested = (requested or "gpu").lower()
    if requested.startswith("gpu") and not paddle.device.is_compiled_with_cuda():
        print(
            "warning: --device gpu requested but this Paddle build has no CUDA; using the CPU. "
            "Install paddlepaddle-gpu to train on a GPU, or pass --device cpu to silence this.",
            file=sys.stderr,
        )
        requested = "cpu"
    paddle.set_device(requested)
    return requested


def set_seed(seed: int) -> None:
    import numpy as np
    import paddle

    random.seed(seed)
    np.random.seed(seed % (2**32))
    paddle.seed(seed)
