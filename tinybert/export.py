"""Export a classifier as a Paddle inference model (``paddle.jit.save``) and time it.

``jit.to_static`` + ``jit.save`` round-trip BERT exactly (ASSETS.md); the exported model is
what a serving stack loads with ``paddle.inference`` or ``paddle.jit.load``, without
PaddleNLP or this package.
"""
from __future__ import annotations

import os
import time
from typing import Dict

import numpy as np

from .checkpoint import atomic_directory

PREFIX = "model"


def export(model, export_dir: str) -> str:
    """Save ``model`` (taking input_ids, token_type_ids, attention_mask) under ``export_dir``."""
    import paddle
    from paddle.static import InputSpec

    model.eval()
    specs = [InputSpec([None, None], "int64", name) for name in ("input_ids", "token_type_ids", "attention_mask")]

    class Inference(paddle.nn.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, token_type_ids, attention_mask):
            return self.inner(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)

    static = paddle.jit.to_static(Inference(model), input_spec=specs, full_graph=True)
    with atomic_directory(export_dir) as temporary:
        paddle.jit.save(static, os.path.join(temporary, PREFIX))
    return os.path.join(export_dir, PREFIX)


def load(export_dir: str):
    import paddle

    layer = paddle.jit.load(os.path.join(export_dir, PREFIX))
    layer.eval()
    return layer


def latency(call, batch_size: int, length: int, vocab_size: int, repeats: int = 20, warmup: int = 3) -> Dict[str, float]:
    """Median seconds per batch and per example of ``call(input_ids, token_type_ids, attention_mask)``."""
    import paddle

    rng = np.random.default_rng(0)
    ids = paddle.to_tensor(rng.integers(5, vocab_size, size=(batch_size, length)).astype("int64"))
    types = paddle.zeros([batch_size, length], dtype="int64")
    mask = paddle.ones([batch_size, length], dtype="int64")
    times = []
    with paddle.no_grad():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            out = call(ids, types, mask)
            np.asarray(out.numpy() if hasattr(out, "numpy") else out[0].numpy())
            if i >= warmup:
                times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return {"batch_size": batch_size, "length": length, "seconds_per_batch": median,
            "ms_per_example": 1000 * median / batch_size}


def export_best(best_dir: str, model_type: str, export_dir: str, length: int) -> Dict[str, float]:
    """Export the best model of a run and print the exported model's CPU/GPU latency."""
    from .models import load_model

    model = load_model(model_type, best_dir, "--export_dir source")
    export(model, export_dir)
    exported = load(export_dir)
    timing = latency(lambda *inputs: exported(*inputs), 1, length, model.config.vocab_size)
    print(f"exported {best_dir} to {export_dir}/{PREFIX}.*: {timing['ms_per_example']:.2f} ms per example "
          f"(batch 1, length {length})")
    return timing
