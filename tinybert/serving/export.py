"""Export a classifier as a Paddle inference model (``paddle.jit.save``).

``jit.to_static`` + ``jit.save`` round-trip BERT exactly (docs/environment.md#export); the exported model is
what a serving stack loads with ``paddle.inference`` or ``paddle.jit.load``, without
PaddleNLP or this package.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional

import numpy as np

from ..training.checkpoint import atomic_directory

PREFIX = "model"
# what paddle.jit.save writes beside model.pdiparams: a PIR program (Paddle 3.x) or a ProgramDesc (Paddle 2.x)
GRAPH_SUFFIXES = (".json", ".pdmodel")
PARAMS_SUFFIX = ".pdiparams"


def export(model, export_dir: str) -> str:
    """Save ``model`` (taking input_ids, token_type_ids, attention_mask) under ``export_dir``, atomically."""
    with atomic_directory(export_dir) as temporary:
        save_inference_model(model, temporary)
    return os.path.join(export_dir, PREFIX)


def save_inference_model(model, directory: str) -> List[str]:
    """``jit.to_static`` + ``jit.save`` into ``directory``; the names of the graph and weight files written.

    Paddle 3.x writes ``model.json`` (a PIR program), Paddle 2.6 ``model.pdmodel``: the names are
    read back from the directory rather than assumed, and an export records them in its manifest.
    Batch and sequence length are left dynamic (``InputSpec([None, None])``) so one exported
    graph serves dynamic padding and any batch size.
    """
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
    paddle.jit.save(static, os.path.join(directory, PREFIX))
    return written_files(directory)


def written_files(directory: str) -> List[str]:
    """``[graph, weights]`` as ``paddle.jit.save`` named them in ``directory``."""
    graphs = [PREFIX + suffix for suffix in GRAPH_SUFFIXES if os.path.isfile(os.path.join(directory, PREFIX + suffix))]
    params = PREFIX + PARAMS_SUFFIX
    if len(graphs) != 1 or not os.path.isfile(os.path.join(directory, params)):
        raise RuntimeError(f"paddle.jit.save wrote {sorted(os.listdir(directory))} in {directory}; expected one of "
                           f"{', '.join(PREFIX + s for s in GRAPH_SUFFIXES)} and {params}")
    return [graphs[0], params]


def load(export_dir: str):
    import paddle

    layer = paddle.jit.load(os.path.join(export_dir, PREFIX))
    layer.eval()
    return layer


def best_model_exporter(settings, model_type: str) -> Optional[Callable[[str], Dict[str, object]]]:
    """``--export_dir``'s step after training: export the best model there (None without the flag)."""
    if not settings.export_dir:
        return None
    return lambda best_dir: export_best(best_dir, model_type, settings.export_dir, settings.max_seq_length)


def export_best(best_dir: str, model_type: str, export_dir: str, length: int) -> Dict[str, object]:
    """Export the best model of a run (``--export_dir``) and print its batch-1 latency.

    Timed with the project's one latency function (:func:`tinybert.serving.latency.measure`) on
    generated word-piece sequences of ``length // 2`` tokens: a training run's ``--export_dir``
    has no sentences at hand, and ``export_model.py`` gives the full dev-set report.
    """
    from ..data.features import Features
    from ..models.loading import load_model
    from .latency import measure

    model = load_model(model_type, best_dir, "--export_dir source")
    export(model, export_dir)
    exported = load(export_dir)
    rng = np.random.default_rng(0)
    width = max(2, length // 2)
    ids = [list(rng.integers(5, model.config.vocab_size, size=width)) for _ in range(16)]
    features = Features(ids, [[0] * width for _ in ids], np.zeros(len(ids), dtype=np.int64))

    def run(batch):
        import paddle

        with paddle.no_grad():
            return exported(*[paddle.to_tensor(batch[k]) for k in ("input_ids", "token_type_ids", "attention_mask")]).numpy()

    timing = measure({"exported": run}, features, 0, batch_sizes=(1,), rounds=3, examples={1: 16})
    ms = timing["batch_sizes"][1]["exported"]["ms_per_example"]
    print(f"exported {best_dir} to {export_dir}/{PREFIX}.*: {ms:.2f} ms per example "
          f"(batch 1, {width} tokens, {timing['threads']} thread(s))")
    return timing
