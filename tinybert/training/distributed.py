"""Several processes (``python -m paddle.distributed.launch``), or one, behind one interface.

Every stage runs the same code whatever the number of processes; what differs is hidden in
:class:`Distribution`:

- the student is wrapped in ``paddle.DataParallel`` once (:meth:`Distribution.data_parallel`):
  each process trains on its own share of every epoch's batches and the wrapper averages
  the gradients in the backward pass (NCCL on GPUs, gloo on CPUs). Everything that receives
  gradients must be used inside that one wrapped forward, which is why the student and its
  stage-1 projections are one layer (``tinybert.models.student``);
- rank 0 evaluates and writes; the other ranks meet it at :meth:`barrier` wherever they
  would otherwise read its files or race on them;
- small control messages (a stop request, the best figure, per-rank RNG states, teacher
  logits, parameter digests) travel over a separate gloo group on the host, so that they
  never force a GPU synchronisation.

With one process every method is a no-op or an identity, and nothing is imported.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, List

from ..errors import UserError


def launched_world() -> tuple:
    """(rank, world size) announced by ``paddle.distributed.launch``; (0, 1) otherwise."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0")), int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


class Distribution:
    """This process's place among the training processes."""

    def __init__(self, rank: int = 0, world_size: int = 1, control_group=None):
        self.rank = rank
        self.world_size = world_size
        self._group = control_group

    @classmethod
    def start(cls) -> "Distribution":
        """Join the process group when started by the launcher; a single process otherwise."""
        rank, size = launched_world()
        if size <= 1:
            return cls()
        import paddle.distributed as dist

        dist.init_parallel_env()
        size = dist.get_world_size()
        group = dist.new_group(list(range(size)), backend="gloo")  # host-side control messages
        return cls(dist.get_rank(), size, group)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world_size > 1

    # ------------------------------------------------------------- the model
    def data_parallel(self, layer):
        """``layer`` wrapped for gradient averaging (the layer itself in a single process).

        Parameters must be frozen before this call: the wrapper registers every trainable
        parameter with its gradient reducer once, here. It also copies rank 0's parameters to
        every rank, so randomly initialised parts start identical everywhere.
        """
        if not self.several:
            return layer
        import paddle

        return paddle.DataParallel(layer)

    # ------------------------------------------------------ control messages
    def barrier(self) -> None:
        if self.several:
            import paddle.distributed as dist

            dist.barrier(group=self._group)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        if not self.several:
            return value
        import paddle.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, group=self._group)
        return box[0]

    def gather(self, value: Any) -> List[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.several:
            return [value]
        import paddle.distributed as dist

        values: List[Any] = []
        dist.all_gather_object(values, value, group=self._group)
        return values

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on some rank (one small host all-reduce)."""
        if not self.several:
            return bool(flag)
        import paddle
        import paddle.distributed as dist

        value = paddle.to_tensor([int(bool(flag))], dtype="int32", place=paddle.CPUPlace())
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self._group)
        return bool(value.numpy()[0])

    def smallest(self, value: int) -> int:
        """The smallest of every rank's ``value``, on every rank (e.g. the epoch length ranks agree on)."""
        return min(self.gather(value))

    def check_everywhere(self, check: Callable[[], None]) -> None:
        """Run ``check`` on every rank; if it refuses (UserError) on one, every rank refuses with its line.

        For checks whose outcome may differ between ranks (each judges its own share of the
        data): a rank failing alone would leave the others waiting at the next collective.
        """
        try:
            check()
            problem = None
        except UserError as err:
            problem = str(err)
        problems = [p for p in self.gather(problem) if p is not None]
        if problems:
            raise UserError(problems[0])

    def conclude(self, layer, best):
        """End of a run: rank 0's ``best`` everywhere, weights checked equal, nobody leaves early."""
        best = self.broadcast(best)
        if self.several:
            digest = self.check_same_parameters(layer)  # every rank says it, in its own log
            print(f"rank {self.rank}: parameters identical on all {self.world_size} processes (digest {digest})",
                  flush=True)
        self.barrier()  # no rank exits before rank 0 has written everything
        return best

    def check_same_parameters(self, layer) -> str:
        """Digest of ``layer``'s trainable parameters, the same on every rank or an error."""
        digest = parameter_digest(layer)
        digests = self.gather(digest)
        if len(set(digests)) > 1:
            raise RuntimeError(f"the {self.world_size} processes ended with different weights "
                               f"(parameter digests {digests}); gradient synchronisation failed")
        return digest


def parameter_digest(layer) -> str:
    """A short sha256 of every trainable parameter's bytes, in name order."""
    sha = hashlib.sha256()
    for name, parameter in sorted(layer.named_parameters(), key=lambda item: item[0]):
        if not parameter.stop_gradient:
            sha.update(name.encode())
            sha.update(parameter.numpy().tobytes())
    return sha.hexdigest()[:16]
