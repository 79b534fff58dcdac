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

    Each rank streams its own share of the corpus without a break between epochs, and a loop
    "epoch" is ``batches_per_epoch`` batches of it. The shares differ by a few sequences, so
    the epoch length is the *smallest* share's batch count, agreed through ``agree`` (a
    function from this rank's count to the count every rank uses: the minimum over ranks
    under ``paddle.distributed.launch``). Counting costs one tokenization pass over the share,
    so it is done only when an epoch count needs it; with ``--max_steps`` the stream is one
    endless epoch and nothing is counted.

    Tokenization and packing run ahead in a background worker (``mode``: a thread, or a
    process), so the model does not wait for them. The rank's position in its stream is saved
    in the checkpoint (``state_dict``) and a resumed run restarts from it (``load_state_dict``)
    after re-reading at most one shuffle window.
    """

    def __init__(self, corpus, mode: str = "thread", agree=lambda count: count):
        self.corpus = corpus
        self.mode = mode
        self.agree = agree
        self._count = None
        self._stream = None
        self._position = None  # where this rank's stream is (None: at the start)

    @property
    def batches_per_epoch(self) -> int:
        """The agreed number of batches per epoch (one tokenization pass over this rank's share)."""
        if self._count is None:
            self._count = self.agree(self.corpus.count_batches(0))
            if self._count < 1:
                raise UserError(self.corpus.too_small_message())
        return self._count

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Dict[str, np.ndarray]]:
        """The next batches of this rank's stream: the rest of epoch ``epoch`` after ``start``
        batches of it (all of them when the epoch length was never counted)."""
        from .corpus import BackgroundBatches

        if self._stream is None:
            self._stream = BackgroundBatches(self.corpus, self._position, mode=self.mode)
        wanted = None if self._count is None else self._count - start
        finished = False
        try:
            taken = 0
            while wanted is None or taken < wanted:
                yield next(self._stream)
                taken += 1
            finished = True
        finally:
            if not finished:  # the loop stopped early (last step, a signal, an error): stop producing
                self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._position = self._stream.position
            self._stream.close()
            self._stream = None

    def state_dict(self) -> dict:
        return self.corpus.state_dict(self._stream.position if self._stream is not None else self._position)

    def load_state_dict(self, state: dict) -> None:
        self.close()
        self._position = self.corpus.position_from_state(state)
