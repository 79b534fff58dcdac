"""Featurization and batching: tokenizer pair encoding, dynamic padding, length buckets.

Batches are padded to their own longest example, never to ``max_seq_length``: with the
masked losses (docs/math.md#masked-losses) the result is the same and short batches cost far less.
Batch order is a pure function of (seed, epoch), which is what makes resuming exact: a
resumed run recomputes the epoch's order and skips the batches it already did.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Dict, Iterator, List, Sequence, Tuple

import numpy as np

from .glue import Example

BUCKET_WINDOW = 50  # batches per sorting window when bucketing by length


@dataclass
class Features:
    """Token ids of every example, unpadded, plus labels."""

    input_ids: List[List[int]]
    token_type_ids: List[List[int]]
    labels: np.ndarray  # int64 (classification) or float32 (regression)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self))

    def example(self, index: int) -> Tuple[Sequence[int], Sequence[int]]:
        """(input ids, token type ids) of one example (``store.TokenStore`` answers the same)."""
        return self.input_ids[index], self.token_type_ids[index]

    def fingerprint(self) -> str:
        """A short digest of the token ids: changes when the data, tokenizer or max length do."""
        ids = hashlib.sha256()
        for row in self.input_ids:
            ids.update(np.asarray(row, dtype=np.int64).tobytes())
        return fingerprint_of(hashlib.sha256(self.lengths.astype(np.int64).tobytes()), ids)


def fingerprint_of(lengths_sha, ids_sha) -> str:
    """The fingerprint of examples from the SHA-256 of their lengths and of their ids (int64).

    Two streams, so a store can compute it chunk by chunk while it is written.
    """
    return hashlib.sha256(lengths_sha.digest() + ids_sha.digest()).hexdigest()[:16]


def featurize(examples: Sequence[Example], tokenizer, max_seq_length: int, regression: bool) -> Features:
    """Encode texts (pairs with the tokenizer's pair encoding) truncated to max_seq_length."""
    first = [ex.texts[0] for ex in examples]
    second = [ex.texts[1] for ex in examples] if examples and len(examples[0].texts) > 1 else None
    encoded = tokenizer(
        first,
        text_pair=second,
        max_length=max_seq_length,
        truncation=True,
        return_token_type_ids=True,
        return_attention_mask=False,
    )
    labels = np.array([ex.label for ex in examples], dtype=np.float32 if regression else np.int64)
    return Features(list(encoded["input_ids"]), list(encoded["token_type_ids"]), labels)


def collate(features: Features, indices: Sequence[int], pad_token_id: int, pad_to: int = 0) -> Dict[str, np.ndarray]:
    """Pad the chosen examples to their longest length (or ``pad_to``, if larger).

    Returns numpy arrays: input_ids, token_type_ids, attention_mask (1 real / 0 pad), labels,
    and ``index`` (the example indices, used to look up cached teacher outputs).
    """
    examples = [features.example(i) for i in indices]
    width = max(max(len(ids) for ids, _ in examples), pad_to)
    count = len(indices)
    input_ids = np.full((count, width), pad_token_id, dtype=np.int64)
    token_type_ids = np.zeros((count, width), dtype=np.int64)
    attention_mask = np.zeros((count, width), dtype=np.int64)
    for row, (ids, types) in enumerate(examples):
        input_ids[row, : len(ids)] = ids
        token_type_ids[row, : len(ids)] = types
        attention_mask[row, : len(ids)] = 1
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
        "labels": np.asarray(features.labels[np.asarray(indices, dtype=np.int64)]),
        "index": np.asarray(indices, dtype=np.int64),
    }


def epoch_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, shuffle: bool = True, bucket: bool = True
) -> List[np.ndarray]:
    """Index batches of one epoch, a pure function of (seed, epoch).

    With ``bucket``, examples are shuffled, sorted by length inside windows of
    ``BUCKET_WINDOW`` batches, cut into batches, and the batches shuffled: similar lengths
    share a batch (little padding) while every epoch still sees a random order.
    """
    count = len(lengths)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(count) if shuffle else np.arange(count)
    if shuffle and bucket:
        window = batch_size * BUCKET_WINDOW
        order = np.concatenate(
            [chunk[np.argsort(lengths[chunk], kind="stable")] for chunk in np.array_split(order, max(1, -(-count // window)))]
        )
    batches = [order[start : start + batch_size] for start in range(0, count, batch_size)]
    if shuffle and bucket:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def eval_batches(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Batches for evaluation: sorted by length (least padding); order does not matter."""
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def concat_features(sets: Sequence[Features]) -> Features:
    if len(sets) == 1:
        return sets[0]
    return Features(
        input_ids=[ids for s in sets for ids in s.input_ids],
        token_type_ids=[ids for s in sets for ids in s.token_type_ids],
        labels=np.concatenate([s.labels for s in sets]),
    )
