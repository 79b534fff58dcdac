"""Dev-set evaluation: logits in batches sorted by length, then the task's metrics."""
from __future__ import annotations

from typing import Dict, List

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


def predict_logits(model, features: Features, batch_size: int, pad_token_id: int) -> np.ndarray:
    """Logits of every example, in the original order (the model is put in eval mode)."""
    import paddle

    model.eval()
    outputs: List[np.ndarray] = [None] * len(features)
    with paddle.no_grad():
        for indices in eval_batches(features.lengths, batch_size):
            tensors = to_tensors(collate(features, indices, pad_token_id))
            logits = model(**model_inputs(tensors))
            for row, index in enumerate(indices):
                outputs[index] = logits[row].numpy()
    return np.stack(outputs)


def evaluate_task(model, spec: TaskSpec, dev_sets: List[Features], batch_size: int, pad_token_id: int) -> Dict[str, float]:
    per_file = [(predict_logits(model, dev, batch_size, pad_token_id), dev.labels) for dev in dev_sets]
    return task_metrics(spec, per_file)
