"""Dev-set evaluation and teacher predictions: logits in batches sorted by length, shared by the processes.

One process or several compute exactly the same numbers: the batches are those of one process
(every example sorted by length, cut into ``batch_size`` rows), and under several processes
rank r computes batches r, r + n, r + 2n, ... of that list (neighbours in length, so the shares
cost about the same); the per-batch results are gathered and put back in order on every rank.
A batch gives the same floats whoever computes it, so the metrics are computed once, from all
predictions, and equal a one-process evaluation of the same weights bit for bit (tested).
Evaluation is then n times faster on n processes, and no rank waits alone for another's.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..data.features import Features, collate, eval_batches
from ..data.tasks import TaskSpec
from .metrics import task_metrics


def to_tensors(batch: Dict[str, np.ndarray]) -> Dict:
    import paddle

    return {name: paddle.to_tensor(value) for name, value in batch.items()}


def model_inputs(tensors: Dict) -> Dict:
    """The keyword arguments a PaddleNLP BERT-family model takes from a collated batch."""
    return {name: tensors[name] for name in ("input_ids", "token_type_ids", "attention_mask")}


def shared_batches(batches: Sequence[np.ndarray], compute: Callable[[np.ndarray], object], dist=None,
                   what: str = "the other processes' share of the batches") -> List:
    """``compute(batch)`` for every batch, in batch order, on every rank.

    Each rank computes its share (every n-th batch) and the shares are gathered, so the list is
    the one a single process computes.
    """
    if dist is None or not dist.several:
        return [compute(batch) for batch in batches]
    mine = [compute(batch) for batch in batches[dist.rank::dist.world_size]]
    shares = dist.gather(mine, what)
    return [shares[number % dist.world_size][number // dist.world_size] for number in range(len(batches))]


def predict_logits(model, features: Features, batch_size: int, pad_token_id: int,
                   indices: Optional[np.ndarray] = None, dist=None) -> np.ndarray:
    """Logits of every example (or of ``indices``), in that order (the model is put in eval mode).

    With ``dist`` (several processes) each rank computes a share and every rank returns them all.
    """
    import paddle

    indices = np.arange(len(features)) if indices is None else np.asarray(indices, dtype=np.int64)
    model.eval()

    def compute(batch: np.ndarray) -> np.ndarray:
        tensors = to_tensors(collate(features, indices[batch], pad_token_id))
        return model(**model_inputs(tensors)).numpy()

    batches = list(eval_batches(np.asarray(features.lengths)[indices], batch_size))
    with paddle.no_grad():
        results = shared_batches(batches, compute, dist, "the other processes' predictions")
    if not batches:
        return np.zeros((0,), dtype=np.float32)
    outputs = np.empty((len(indices),) + results[0].shape[1:], dtype=results[0].dtype)
    for batch, logits in zip(batches, results):
        outputs[batch] = logits
    return outputs


def evaluate_task(model, spec: TaskSpec, dev_sets: Sequence[Features], batch_size: int, pad_token_id: int,
                  dist=None) -> Dict[str, float]:
    per_file = [(predict_logits(model, dev, batch_size, pad_token_id, dist=dist), dev.labels) for dev in dev_sets]
    return task_metrics(spec, per_file)
