"""Dev-set evaluation: logits in batches sorted by length, then the task's metrics."""
from __future__ import annotations

from typing import Dict, List, Optional

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


def predict_logits(model, features: Features, batch_size: int, pad_token_id: int,
                   indices: Optional[np.ndarray] = None) -> np.ndarray:
    """Logits of every example (or of ``indices``), in that order (the model is put in eval mode)."""
    import paddle

    indices = np.arange(len(features)) if indices is None else np.asarray(indices, dtype=np.int64)
    model.eval()
    outputs: List[np.ndarray] = [None] * len(indices)
    with paddle.no_grad():
        for batch in eval_batches(np.asarray(features.lengths)[indices], batch_size):
            tensors = to_tensors(collate(features, indices[batch], pad_token_id))
            logits = model(**model_inputs(tensors)).numpy()
            for row, position in enumerate(batch):
                outputs[position] = logits[row]
    return np.stack(outputs)


def evaluate_task(model, spec: TaskSpec, dev_sets: List[Features], batch_size: int, pad_token_id: int) -> Dict[str, float]:
    per_file = [(predict_logits(model, dev, batch_size, pad_token_id), dev.labels) for dev in dev_sets]
    return task_metrics(spec, per_file)
