"""The project's one way of timing inference: ms per example on real sentences.

Every latency figure (the demo's table, ``scripts/benchmark.py``, the export report) comes
from :func:`measure`, so two numbers in this repository are always comparable:

- **real inputs, dynamic padding**: the sentences are tokenized as at evaluation and each
  batch is padded to its own longest sentence. Padding every batch to ``max_seq_length``
  would time work no server does on short review snippets.
- **batch 1 and batch 32**: batch 1 in the sentences' own order (one request at a time);
  larger batches group sentences of similar length, as a throughput-minded server and our
  evaluation do.
- **warm-up**: the first batches of every runner are run and discarded (oneDNN and ONNX
  Runtime build kernels for each new shape; Paddle dygraph allocates).
- **alternating rounds, median and spread**: every runner times the whole batch list once
  per round, runners taking turns. Alternation exposes all of them to the same background
  load on a shared machine; the median over rounds is the figure, and min/max are reported
  so a noisy measurement is visible rather than hidden.
- **threads stated**: the thread count of every runtime is fixed to ``threads`` (default
  ``OMP_NUM_THREADS``, which ``tinybert.runtime`` sets to all cores) and reported.

A *runner* is any callable taking one collated numpy batch (``input_ids``,
``token_type_ids``, ``attention_mask``) and returning the logits as numpy: the result must
be materialised, or asynchronous runtimes would be timed before they finish.
"""
from __future__ import annotations

import os
import statistics
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from ..data.features import Features, collate

Runner = Callable[[Dict[str, np.ndarray]], np.ndarray]
INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
BATCH_SIZES = (1, 32)


def default_threads() -> int:
    """Threads every runtime is given: ``OMP_NUM_THREADS`` (set by tinybert.runtime) or all cores."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def features_from_texts(tokenizer, texts: Sequence, max_seq_length: int) -> Features:
    """Tokenize sentences (str) or sentence pairs (tuples) exactly as evaluation does."""
    from ..data.features import featurize
    from ..data.glue import Example

    examples = [Example(tuple(t) if isinstance(t, (tuple, list)) else (t,), 0, i + 1) for i, t in enumerate(texts)]
    return featurize(examples, tokenizer, max_seq_length, False)


def timing_batches(features: Features, batch_size: int, pad_token_id: int) -> List[Dict[str, np.ndarray]]:
    """Collated batches: given order at batch 1, sorted by length for larger batches."""
    if batch_size > 1:
        order = [int(i) for i in np.argsort(features.lengths, kind="stable")]
    else:
        order = list(range(len(features)))
    batches = []
    for start in range(0, len(order), batch_size):
        batch = collate(features, order[start:start + batch_size], pad_token_id)
        batches.append({name: batch[name] for name in INPUT_NAMES})
    return batches


def dygraph_runner(model) -> Runner:
    """A Paddle dygraph classifier as a runner (eval mode, no autograd, logits to numpy)."""
    import paddle

    model.eval()

    def run(batch):
        with paddle.no_grad():
            logits = model(**{name: paddle.to_tensor(batch[name]) for name in INPUT_NAMES})
        return logits.numpy()

    return run


def _time_all(runner: Runner, batches) -> float:
    started = time.perf_counter()
    for batch in batches:
        np.asarray(runner(batch))
    return time.perf_counter() - started


def measure(runners: Mapping[str, Runner], features: Features, pad_token_id: int,
            batch_sizes: Sequence[int] = BATCH_SIZES, rounds: int = 5, warmup_batches: int = 3,
            examples: Optional[Mapping[int, int]] = None, threads: Optional[int] = None) -> Dict[str, object]:
    """Milliseconds per example of every runner at every batch size.

    ``examples`` caps how many of the sentences are timed per batch size (default: 64 at
    batch 1, all at larger batches), so batch 1 does not dominate the wall time.
    Returns ``{"threads", "rounds", "examples", "batch_sizes": {b: {name: {"ms_per_example"
    (median), "min", "max", "spread" ((max-min)/median), "round_ms": [...]}}}}``.
    """
    result: Dict[str, object] = {"threads": threads or default_threads(), "rounds": int(max(1, rounds)),
                                 "warmup_batches": warmup_batches, "padding": "dynamic", "batch_sizes": {}}
    counts = {}
    for batch_size in batch_sizes:
        limit = (examples or {}).get(batch_size, 64 if batch_size == 1 else len(features))
        subset = Features(features.input_ids[:limit], features.token_type_ids[:limit], features.labels[:limit])
        batches = timing_batches(subset, batch_size, pad_token_id)
        count = sum(len(b["input_ids"]) for b in batches)
        counts[batch_size] = count
        for runner in runners.values():
            for batch in batches[:warmup_batches]:
                np.asarray(runner(batch))
        per_round: Dict[str, List[float]] = {name: [] for name in runners}
        for _ in range(result["rounds"]):
            for name, runner in runners.items():
                per_round[name].append(1000 * _time_all(runner, batches) / count)
        result["batch_sizes"][batch_size] = {name: summarize(values) for name, values in per_round.items()}
    result["examples"] = counts
    result["mean_tokens"] = float(features.lengths[:max(counts.values())].mean()) if len(features) else 0.0
    return result


def summarize(values: Sequence[float]) -> Dict[str, object]:
    median = float(statistics.median(values))
    low, high = float(min(values)), float(max(values))
    return {"ms_per_example": median, "min": low, "max": high,
            "spread": (high - low) / median if median else 0.0, "round_ms": [float(v) for v in values]}


def ms_per_example(measured: Dict[str, object], batch_size: int, name: str) -> float:
    """The median figure of one runner at one batch size from a :func:`measure` result."""
    return measured["batch_sizes"][batch_size][name]["ms_per_example"]


def describe(measured: Dict[str, object]) -> str:
    """One sentence saying how the figures were measured (for tables and READMEs)."""
    sizes = ", ".join(f"batch {b} ({n} sentences)" for b, n in measured["examples"].items())
    return (f"ms/example = median of {measured['rounds']} alternating rounds after {measured['warmup_batches']} "
            f"warm-up batches; {sizes}; dynamic padding (batches > 1 grouped by length); "
            f"{measured['threads']} CPU thread(s) per runtime")
