"""Where a training loop gets its batches: this process's share of each epoch, resumable.

A batch source has ``batches_per_epoch`` (the same on every rank) and
``epoch(epoch, start)``, an iterator over the collated batches of one epoch from batch
``start`` on. Batch order is a pure function of (seed, epoch), so a resumed run recomputes an
epoch's order and starts at the saved position: it sees exactly the batches the interrupted
run would have seen.

Under several processes every rank takes every ``world_size``-th batch of the epoch and the
uneven tail is dropped, so all ranks make the same number of steps (a rank with one batch
fewer would wait forever in the gradient all-reduce of the others).
"""
from __future__ import annotations

import math
from typing import Dict, Iterator, List, Sequence

import numpy as np

from ..errors import UserError
from .features import Features, collate, epoch_batches


def shard(batches: Sequence, rank: int, world_size: int) -> List:
    """This rank's batches: every ``world_size``-th, the uneven tail dropped so ranks stay in step."""
    if world_size <= 1:
        return list(batches)
    usable = len(batches) - len(batches) % world_size
    return list(batches[rank:usable:world_size])


def check_batches(batches_per_epoch: int, world_size: int, examples: int, batch_size: int) -> None:
    """Every rank needs at least one batch an epoch, or the ranks cannot stay in step."""
    if batches_per_epoch < world_size:
        raise UserError(
            f"{examples} training examples make {batches_per_epoch} batches of --batch_size {batch_size}, "
            f"fewer than the {world_size} processes: lower --batch_size or use fewer processes"
        )


class TaskBatches:
    """Length-bucketed, dynamically padded batches of a featurized training set."""

    def __init__(self, features: Features, batch_size: int, seed: int, pad_token_id: int,
                 bucket: bool = True, rank: int = 0, world_size: int = 1):
        self.features = features
        self.batch_size = batch_size
        self.seed = seed
        self.pad_token_id = pad_token_id
        self.bucket = bucket
        self.rank, self.world_size = rank, world_size
        total = math.ceil(len(features) / batch_size)
        check_batches(total, world_size, len(features), batch_size)
        self.batches_per_epoch = total // world_size

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Dict[str, np.ndarray]]:
        order = epoch_batches(self.features.lengths, self.batch_size, self.seed, epoch, shuffle=True,
                              bucket=self.bucket)
        for indices in shard(order, self.rank, self.world_size)[start:]:
            yield collate(self.features, indices, self.pad_token_id)


class CorpusBatches:
    """This rank's batches of a streamed, packed text corpus (``tinybert.data.corpus``), resumable.

    Tokenization and packing run ahead in a background worker (``mode``: a thread, or a
    process), so the model does not wait for them. The position in the stream is saved in
    the checkpoint (``state_dict``) and a resumed run restarts from it (``load_state_dict``)
    after re-reading at most one shuffle window.
    """

    def __init__(self, corpus, mode: str = "thread"):
        self.corpus = corpus
        self.mode = mode
        self._count = None
        self._stream = None
        self._resume_from = None

    @property
    def batches_per_epoch(self) -> int:
        """One tokenization pass over the corpus, done only when an epoch count needs it."""
        if self._count is None:
            self._count = self.corpus.count_batches(0)
        return self._count

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Dict[str, np.ndarray]]:
        from .corpus import BackgroundBatches, StreamPosition

        position = StreamPosition(epoch)
        if self._resume_from is not None and self._resume_from.epoch == epoch:
            position = self._resume_from
        self._resume_from = None
        self._stream = BackgroundBatches(self.corpus, position, num_epochs=epoch + 1, mode=self.mode)
        try:
            yield from self._stream
        finally:
            self._stream.close()

    def state_dict(self) -> dict:
        return self.corpus.state_dict(self._stream.position if self._stream is not None else self._resume_from)

    def load_state_dict(self, state: dict) -> None:
        self._resume_from = self.corpus.position_from_state(state)
