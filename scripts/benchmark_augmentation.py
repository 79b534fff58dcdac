"""Benchmark: batched augmentation (tinybert.augmentation.augment) against one forward per word.

The "naive" augmenter below is what the reference scripts do (docs/math.md#data-augmentation): for every
candidate word, one BERT forward over ``[CLS] masked [SEP] original [SEP]`` computing the
logits of every position, and one GloVe similarity vector per multi-piece word. Both run on
the same sentences, model and GloVe matrix; the candidate sets are compared and the speeds
printed as JSON.

Offline, so the model is a randomly initialised BERT masked LM (hidden 128, 2 layers) over a
synthetic 30,522-token WordPiece vocabulary (BERT's size, so the output layer costs what it
costs for real) and the GloVe file holds synthetic 50-d vectors. Speed does not depend on
the weights being trained.

    python scripts/benchmark_augmentation.py [--examples 100] [--batch_size 64] [--repeats 2]
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

import numpy as np  # noqa: E402

from tinybert.augmentation.augment import (  # noqa: E402
    CandidateFinder,
    GloveNeighbours,
    MaskedLM,
    Row,
    Sampling,
    augment_rows,
    candidate_positions,
    sample_variants,
)
from tinybert.augmentation.glove import load_glove  # noqa: E402
from tinybert.augmentation.stopwords import ENGLISH_STOP_WORDS  # noqa: E402
from tinybert.data.tasks import get_task  # noqa: E402

VOCAB_SIZE = 30522
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"[unused{i}]" for i in range(20)]
SUFFIXES = ["ing", "ed", "er", "ly", "ness", "able", "ment", "ous", "ful", "less"]
PUNCTUATION = list(".,!?;:'\"()-")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def pseudo_words(rng: random.Random, count: int, taken: set) -> list:
    words = []
    while len(words) < count:
        word = "".join(rng.choice(LETTERS) for _ in range(rng.randint(4, 9)))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def build_assets(directory: str, rng: random.Random):
    """vocab.txt, a GloVe text file, and the in-vocabulary / out-of-vocabulary word lists."""
    taken = set(ENGLISH_STOP_WORDS) | set(LETTERS)
    pieces = SPECIAL + PUNCTUATION + list(LETTERS) + ["##" + c for c in LETTERS] + ["##" + s for s in SUFFIXES]
    known = pseudo_words(rng, VOCAB_SIZE - len(pieces) - len(ENGLISH_STOP_WORDS), taken)
    vocab = pieces + sorted(ENGLISH_STOP_WORDS) + known
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(vocab) + "\n")
    unknown = [w + rng.choice(SUFFIXES) for w in rng.sample(known, 3000)]  # several WordPieces each
    glove_words = unknown + known[:17000]
    glove_path = os.path.join(directory, "glove.txt")
    vectors = np.random.default_rng(0).standard_normal((len(glove_words), 50)).astype(np.float32)
    with open(glove_path, "w", encoding="utf-8") as handle:
        for word, vector in zip(glove_words, vectors):
            handle.write(word + " " + " ".join(f"{v:.4f}" for v in vector) + "\n")
    return os.path.join(directory, "vocab.txt"), glove_path, known[:5000], unknown


def sentences(rng: random.Random, count: int, known: list, unknown: list) -> list:
    """SST-2-like sentences of 10-30 words: content words, stop words, rarer words, punctuation."""
    stop = sorted(ENGLISH_STOP_WORDS - {w for w in ENGLISH_STOP_WORDS if "'" in w})
    result = []
    for _ in range(count):
        words = []
        for _ in range(rng.randint(10, 30)):
            roll = rng.random()
            pool = known if roll < 0.45 else stop if roll < 0.8 else unknown if roll < 0.9 else PUNCTUATION
            words.append(rng.choice(pool))
        result.append(" ".join(words))
    return result


def build_model(vocab_file: str):
    import paddle
    from paddlenlp.transformers import BertConfig, BertForMaskedLM, BertTokenizer

    paddle.seed(0)
    config = BertConfig(vocab_size=VOCAB_SIZE, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=512, max_position_embeddings=512, type_vocab_size=2)
    return MaskedLM(BertForMaskedLM(config), BertTokenizer(vocab_file, do_lower_case=True))


class NaiveAugmenter:
    """One forward per candidate word (all positions' logits), one GloVe product per word."""

    def __init__(self, masked_lm: MaskedLM, glove, k: int):
        self.lm = masked_lm
        self.glove = glove
        self.k = k

    def candidates(self, words: list) -> dict:
        found = {}
        for position in candidate_positions(words):
            if self.lm.predictable(words[position]):
                found[position] = self.predict(words, position)
            else:
                found[position] = self.nearest(words[position])
        return found

    def predict(self, words: list, position: int) -> list:
        import paddle

        lm = self.lm
        pieces = [p for w in words for p in lm.word_pieces(w)]
        target = sum(len(lm.word_pieces(w)) for w in words[:position])
        masked = list(pieces)
        masked[target] = lm.mask_id
        ids = ([lm.cls_id] + masked + [lm.sep_id] + pieces + [lm.sep_id])[:512]
        types = ([0] * (len(masked) + 2) + [1] * (len(pieces) + 1))[:512]
        with paddle.no_grad():
            logits = lm.model(paddle.to_tensor([ids]), token_type_ids=paddle.to_tensor([types]))
        scores = logits[0, target + 1].numpy()
        top = np.argsort(-scores, kind="stable")[: self.k]
        return sorted(lm.tokens[i] for i in top
                      if not lm.excluded[i] and lm.tokens[i].lower() != words[position].lower())

    def nearest(self, word: str) -> list:
        row = self.glove.find(word)
        if row is None:
            return []
        scores = self.glove.vectors @ self.glove.vectors[row]
        scores[row] = -np.inf
        top = np.argsort(-scores, kind="stable")[: self.k]
        return sorted(self.glove.words[i] for i in top)


def run_naive(naive, finder, texts, settings):
    started = time.perf_counter()
    found = []
    for line, text in enumerate(texts, start=1):
        words = finder.words(text)
        candidates = naive.candidates(words)
        sample_variants(words, candidates, settings.n_samples, settings.p,
                        np.random.default_rng([settings.seed, line]))
        found.append(candidates)
    return time.perf_counter() - started, found


def run_ours(finder, texts, settings, spec):
    started = time.perf_counter()
    rows = [Row(line, f"{text}\t1") for line, text in enumerate(texts, start=1)]
    lines = list(augment_rows(rows, spec, finder, settings))
    elapsed = time.perf_counter() - started
    found = finder.find([finder.words(t) for t in texts])  # for the comparison, not timed
    return elapsed, found, len(lines)


def compare(ours: list, naive: list):
    """Positions whose candidate sets differ (order is irrelevant: sampling sorts them)."""
    differing = 0
    total = 0
    for a, b in zip(ours, naive):
        assert set(a) == set(b), "different candidate words"
        for position in a:
            total += 1
            differing += set(a[position]) != set(b[position])
    return total, differing


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--M", type=int, default=15)
    parser.add_argument("--N", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each; the best is reported")
    args = parser.parse_args()

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as directory:
        vocab_file, glove_path, known, unknown = build_assets(directory, rng)
        glove = load_glove(glove_path, 100000, progress=False)
        masked_lm = build_model(vocab_file)
        texts = sentences(rng, args.examples, known, unknown)
        settings = Sampling(args.N, args.M, 0.4, 42, args.batch_size)
        naive = NaiveAugmenter(masked_lm, glove, args.M)

        def fresh_finder():  # nothing remembered from an earlier run
            return CandidateFinder(GloveNeighbours(glove, args.M, args.batch_size), args.M, args.batch_size, masked_lm)

        finder = fresh_finder()
        naive.candidates(finder.words(texts[0]))  # warm-up both
        finder.find([finder.words(texts[0])])
        ours_runs, naive_runs = [], []
        for _ in range(args.repeats):  # interleaved, best of each: other load on the machine hurts both alike
            finder = fresh_finder()
            ours_runs.append(run_ours(finder, texts, settings, get_task("SST-2")))
            naive_runs.append(run_naive(naive, finder, texts, settings))
        ours_time, ours_found, written = min(ours_runs, key=lambda run: run[0])
        naive_time, naive_found = min(naive_runs, key=lambda run: run[0])
    positions, differing = compare(ours_found, naive_found)
    words = [finder.words(t) for t in texts]
    mlm_queries = sum(masked_lm.predictable(w[p]) for w in words for p in candidate_positions(w))
    print(json.dumps({
        "examples": args.examples,
        "candidate_words": positions,
        "masked_lm_queries": int(mlm_queries),
        "glove_queries": positions - int(mlm_queries),
        "rows_written": written,
        "model": "random BertForMaskedLM, hidden 128, 2 layers, vocab 30522; GloVe 20000 x 50",
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "ours_seconds": round(ours_time, 3),
        "naive_seconds": round(naive_time, 3),
        "ours_examples_per_s": round(args.examples / ours_time, 2),
        "naive_examples_per_s": round(args.examples / naive_time, 2),
        "speedup": round(naive_time / ours_time, 2),
        "candidates_equal": differing == 0,
        "differing_positions": differing,
    }, indent=2))


if __name__ == "__main__":
    main()
