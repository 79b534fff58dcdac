"""Speed of the general-distillation data pipeline (tinybert.data.corpus); prints JSON.

Three questions, answered on the same corpus and tokenizer:

1. how many tokens per second the pipeline (read, tokenize, pack, shuffle, collate) delivers
   on its own, in the calling process; and to one rank of two (``sharding``: each rank
   tokenizes only its share, vs the old way where each tokenized the whole stream);
3. what share of a training loop's time is spent waiting for data when batches come from the
   background producer, with a consumer that does real work per batch. The default consumer
   runs a stage-1-shaped step on random weights (TinyBERT4 student forward + backward, a
   6-layer/384 teacher forward, no optimizer) so the producer competes for the same two
   cores as training would; ``--step_ms N`` replaces it by a busy numpy loop of N ms.

The first batch (start-up: fork, first shuffle window) is reported separately from the
steady-state wait fraction. The tokenizer is MiniLM's (``assets/minilm/vocab.txt``, BERT's
uncased WordPiece) and the text the Rotten Tomatoes snippets when the demo's assets are
present; otherwise a synthetic corpus over the tests' tiny vocabulary.

    python scripts/benchmark_corpus.py [--quick] [--modes process,thread,dataloader]
"""
from __future__ import annotations

import argparse
import bz2
import csv
import io
import json
import os
import random
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from tinybert.runtime import prepare_process  # noqa: E402

if __name__ == "__main__":
    prepare_process()

import numpy as np  # noqa: E402

ASSETS = os.path.join(ROOT, "assets")


def build_corpus(directory: str, min_tokens_hint: int):
    """Write a corpus file (documents of consecutive snippets); return (path, vocab path, source)."""
    vocab = os.path.join(ASSETS, "minilm", "vocab.txt")
    snippets = os.path.join(ASSETS, "rotten_tomatoes", "rotten_tomatoes_corpus_full.csv.bz2")
    rng = random.Random(0)
    if os.path.exists(vocab) and os.path.exists(snippets):
        with bz2.open(snippets, "rt", encoding="utf-8") as handle:
            lines = [row[1].strip() for row in list(csv.reader(io.StringIO(handle.read())))[1:] if row[1].strip()]
        source = "rotten_tomatoes snippets, MiniLM WordPiece vocabulary"
    else:
        from tiny import NEGATIVE, NEUTRAL, POSITIVE, write_vocab  # noqa: E402

        vocab = write_vocab(os.path.join(directory, "vocab"))
        words = NEUTRAL + POSITIVE + NEGATIVE
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 40))) for _ in range(20000)]
        source = "synthetic sentences, tests' tiny vocabulary"
    path = os.path.join(directory, "corpus.txt")
    written = 0
    with open(path, "w", encoding="utf-8") as handle:
        while written < min_tokens_hint:  # repeat the text if a larger corpus is asked for
            for start in range(0, len(lines), 8):
                handle.write("\n".join(lines[start:start + rng.randint(1, 8)]) + "\n\n")
                written += sum(len(line.split()) for line in lines[start:start + 8])
    return path, vocab, source


def make_step(quick: bool, step_ms: float):
    """The consumer's per-batch work: a stage-1-shaped step, or a busy numpy loop."""
    if step_ms:
        a = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)

        def busy(batch):
            end = time.perf_counter() + step_ms / 1000.0
            while time.perf_counter() < end:
                a @ a
        return busy, f"busy numpy loop, {step_ms:g} ms"
    import paddle
    from paddlenlp.transformers import BertConfig, BertModel

    paddle.seed(0)
    shapes = dict(student=(4, 312, 12, 1200), teacher=(6, 384, 12, 1536))
    if quick:
        shapes = dict(student=(2, 64, 4, 128), teacher=(2, 96, 4, 192))
    models = {}
    for name, (layers, hidden, heads, inter) in shapes.items():
        models[name] = BertModel(BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                                            num_attention_heads=heads, intermediate_size=inter,
                                            max_position_embeddings=512))
    models["teacher"].eval()

    def step(batch):
        ids = paddle.to_tensor(batch["input_ids"])
        mask = paddle.to_tensor(batch["attention_mask"]).unsqueeze([1, 2]).astype("float32")
        mask = (1.0 - mask) * -1e4
        with paddle.no_grad():
            models["teacher"](ids, attention_mask=mask)
        out = models["student"](ids, attention_mask=mask)[0]
        out.mean().backward()
        models["student"].clear_gradients()
    return step, "stage-1-shaped step: student %dL/%d fwd+bwd, teacher %dL/%d fwd" % (
        shapes["student"][0], shapes["student"][1], shapes["teacher"][0], shapes["teacher"][1])


def pipeline_alone(corpus, max_batches: int):
    """Tokens/s of the synchronous pipeline (real tokens: [CLS]/[SEP] included, padding not)."""
    from tinybert.data.corpus import BackgroundBatches

    stream = BackgroundBatches(corpus, num_epochs=None, mode="sync")
    tokens, began = 0, time.perf_counter()
    for index, batch in enumerate(stream):
        tokens += int(batch["attention_mask"].sum())
        if index + 1 == max_batches:
            break
    seconds = time.perf_counter() - began
    return {"batches": index + 1, "tokens": tokens, "seconds": round(seconds, 3),
            "tokens_per_second": round(tokens / seconds)}


def with_consumer(corpus, mode: str, steps: int, step):
    """Wait fraction of a loop that does ``step`` per batch, data from ``mode``."""
    from tinybert.data.corpus import BackgroundBatches, make_iterable_dataset

    began = time.perf_counter()
    if mode == "dataloader":
        import paddle

        loader = paddle.io.DataLoader(make_iterable_dataset(corpus), batch_size=None, num_workers=1)
        source = iter(loader)
        close = lambda: None  # noqa: E731
    else:
        stream = BackgroundBatches(corpus, mode=mode)
        source, close = stream, stream.close
    waits, tokens = [], 0
    try:
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            batch = next(source)
            waits.append(time.perf_counter() - t0)
            batch = {k: np.asarray(v) for k, v in batch.items()}
            tokens += int(batch["attention_mask"].sum())
            if len(waits) == 1:
                steady = time.perf_counter()
            step(batch)
            print(f"[{mode}] step {len(waits) - 1}/{steps} wait {waits[-1]:.3f}s", file=sys.stderr, flush=True)
        total = time.perf_counter() - steady
    finally:
        close()
    steady_wait = sum(waits[1:])
    return {"mode": mode, "steps": steps, "first_batch_seconds": round(waits[0], 3),
            "step_seconds": round(total / steps, 4), "wait_fraction": round(steady_wait / total, 4),
            "max_wait_seconds": round(max(waits[1:]), 4),
            "consumed_tokens_per_second": round(tokens / (time.perf_counter() - began))}


def run(quick: bool = False, modes=("process", "thread"), steps: int = 30, step_ms: float = 0.0,
        batch_size: int = 32, max_seq_length: int = 128):
    from paddlenlp.transformers import BertTokenizer

    from tinybert.data.corpus import PackedCorpus

    if quick:
        steps, batch_size, max_seq_length = min(steps, 5), 8, 64
    with tempfile.TemporaryDirectory() as tmp:
        path, vocab, source = build_corpus(tmp, 50_000 if quick else 400_000)
        tokenizer = BertTokenizer(vocab, do_lower_case=True)
        make = lambda rank=0, world=1: PackedCorpus([path], tokenizer, max_seq_length=max_seq_length,  # noqa: E731
                                                    batch_size=batch_size, seed=0, rank=rank, world_size=world,
                                                    shuffle_window=256 if quick else 1024)
        step, step_name = make_step(quick, step_ms)
        batches = 10 if quick else 150
        alone = pipeline_alone(make(), batches)
        result = {"corpus": source, "corpus_bytes": os.path.getsize(path), "batch_size": batch_size,
                  "max_seq_length": max_seq_length, "cpu_count": os.cpu_count(),
                  "pipeline_alone": alone, "sharding": sharding(alone, pipeline_alone(make(0, 2), batches)),
                  "consumer": step_name, "with_consumer": [with_consumer(make(), m, steps, step) for m in modes]}
    return result


def sharding(whole: dict, share: dict) -> dict:
    """Tokens/s one rank of two receives. Before 0.3.1 every rank tokenized the whole stream and
    kept every other batch, i.e. half of what one process's pipeline delivers (the naive
    baseline, derived from ``whole`` measured in this run); now a rank tokenizes only its share."""
    before = whole["tokens_per_second"] / 2
    return {"whole_stream_per_rank_tokens_per_second": round(before),
            "own_share_tokens_per_second": share["tokens_per_second"],
            "ratio": round(share["tokens_per_second"] / before, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--modes", default="process,thread", help="comma list of process, thread, dataloader, sync")
    parser.add_argument("--steps", type=int, default=30, help="consumer steps measured per mode")
    parser.add_argument("--step_ms", type=float, default=0.0, help="busy-loop step instead of the model step")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_seq_length", type=int, default=128)
    args = parser.parse_args()
    result = run(args.quick, [m for m in args.modes.split(",") if m], args.steps, args.step_ms,
                 args.batch_size, args.max_seq_length)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
