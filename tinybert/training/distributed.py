"""Several processes (``python -m paddle.distributed.launch``), or one, behind one interface.

Every stage runs the same code whatever the number of processes; what differs is hidden in
:class:`Distribution`:

- the student is wrapped in ``paddle.DataParallel`` once (:meth:`Distribution.data_parallel`):
  each process trains on its own share of every epoch's batches and the wrapper averages
  the gradients in the backward pass (NCCL on GPUs, gloo on CPUs). Everything that receives
  gradients must be used inside that one wrapped forward, which is why the student and its
  stage-1 projections are one layer (``tinybert.models.student``);
- work that can be split is split (evaluation, teacher logits: ``training.evaluate``); what one
  process does alone (building a token store, writing a checkpoint, exporting) is done by
  rank 0 while the others wait at :meth:`barrier`;
- small control messages (a stop request, the best figure, per-rank RNG states, teacher
  logits, parameter digests) travel over a separate gloo group, as host tensors
  (``training.messages``).

Waiting (docs/distributed.md#waiting): gloo gives up after 30 seconds, so no collective here
waits for a slow peer; every control message first meets the others at a
:class:`~tinybert.training.rendezvous.Rendezvous` (the launcher's TCP store, our own deadline,
``TINYBERT_WAIT_TIMEOUT``), and a process whose peer is gone stops with one line
(:class:`tinybert.errors.PeerLost`).

With one process every method is a no-op or an identity, and nothing is imported.
"""
from __future__ import annotations

import atexit
import hashlib
import os
from typing import Any, Callable, List, Optional


from ..errors import UserError, before_leaving
from .messages import HostMessages
from .rendezvous import Rendezvous, wait_seconds


def launched_world() -> tuple:
    """(rank, world size) announced by ``paddle.distributed.launch``; (0, 1) otherwise."""
    return int(os.environ.get("PADDLE_TRAINER_ID", "0")), int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


class Distribution:
    """This process's place among the training processes."""

    def __init__(self, rank: int = 0, world_size: int = 1, messages: Optional[HostMessages] = None,
                 rendezvous: Optional[Rendezvous] = None, device: str = "cpu"):
        self.device = device  # this process's device: "cpu" or "gpu:N"
        self.rank = rank
        self.world_size = world_size
        self._messages = messages
        self._rendezvous = rendezvous

    @classmethod
    def start(cls, device: str = "cpu") -> "Distribution":
        """Join the process group when started by the launcher; a single process otherwise.

        ``device`` is what :func:`tinybert.runtime.choose_device` decided. ``init_parallel_env``
        picks the backend and the place itself (NCCL and this rank's GPU whenever Paddle was
        built with CUDA), so a CPU run says so first (``PADDLE_DISTRI_BACKEND=gloo``) and the
        place is set again afterwards: ``--device cpu`` stays on the CPU on a CUDA build.
        """
        from ..runtime import apply_device

        rank, size = launched_world()
        if size <= 1:
            return cls(device=apply_device(device))
        timeout = wait_seconds()  # a bad value is refused before anything starts
        import paddle.distributed as dist
        from paddle.base import core

        if not device.startswith("gpu"):
            os.environ["PADDLE_DISTRI_BACKEND"] = "gloo"
        dist.init_parallel_env()
        if device.startswith("gpu"):
            device = f"gpu:{dist.ParallelEnv().device_id}"  # the GPU the launcher gave this rank
        apply_device(device)
        size = dist.get_world_size()
        rank = dist.get_rank()
        messages = HostMessages(dist.new_group(list(range(size)), backend="gloo"), rank, size)
        rendezvous = Rendezvous(core.create_or_get_global_tcp_store(), rank, size, timeout)
        started = cls(rank, size, messages, rendezvous, device)
        before_leaving(started.close)  # the CLIs leave through os._exit (tinybert.errors.leave_launched)
        atexit.register(started.close)  # a script whose main is not wrapped in run_cli (its shutdown may abort)
        return started

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
        every rank (a collective of the default group), so every rank first meets the others.
        """
        if not self.several:
            return layer
        import paddle

        self.barrier("every process to load its models")
        return paddle.DataParallel(layer)

    # ---------------------------------------------------------------- waiting
    def barrier(self, what: str = "the other processes") -> None:
        """Return once every rank got here; ``what`` names, for the log, what a rank may wait for."""
        if self.several:
            self._rendezvous.meet(what)

    def close(self) -> None:
        """Before this process ends: rank 0 keeps the rendezvous server up until the others are done."""
        if self.several:
            self._rendezvous.close()

    def main_does(self, work: Callable[[], Any], what: str) -> Any:
        """``work()`` on rank 0 alone while the others wait; its result there (None elsewhere).

        If rank 0 refuses (a ``UserError``: a bad row, a full disk), every rank stops with its
        line rather than the others waiting for a rank that has left.
        """
        result, problem = None, None
        if self.is_main:
            try:
                result = work()
            except UserError as err:
                problem = str(err)
        problem = self.broadcast(problem, what)
        if problem is not None:
            raise UserError(problem)
        return result

    # ------------------------------------------------------ control messages
    def broadcast(self, value: Any, what: str = "process 0") -> Any:
        """Rank 0's ``value`` on every rank."""
        if not self.several:
            return value
        self.barrier(what)
        return self._messages.broadcast(value)

    def gather(self, value: Any, what: str = "the other processes") -> List[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.several:
            return [value]
        self.barrier(what)
        return self._messages.gather(value)

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on some rank (one small host all-reduce).

        Called after every step, where the gradient all-reduce has just kept the ranks in step:
        no rendezvous first.
        """
        return self._messages.any(flag) if self.several else bool(flag)

    def smallest(self, value: int) -> int:
        """The smallest of every rank's ``value``, on every rank (e.g. the epoch length ranks agree on)."""
        return min(self.gather(value, "every process to count its share"))

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
        problems = [p for p in self.gather(problem, "every process to check its share") if p is not None]
        if problems:
            raise UserError(problems[0])

    def conclude(self, layer) -> None:
        """End of a run: every rank's trained weights checked equal (each says so in its own log), and
        nobody leaves before rank 0 has written everything. Every rank already knows the best figure:
        each took part in every evaluation."""
        if not self.several:
            return
        digests = self.gather(parameter_digest(layer), "process 0 to finish writing")
        if len(set(digests)) > 1:
            raise RuntimeError(f"the {self.world_size} processes ended with different weights "
                               f"(parameter digests {digests}); gradient synchronisation failed")
        print(f"rank {self.rank}: parameters identical on all {self.world_size} processes (digest {digests[0]})",
              flush=True)
        self.barrier("every process to finish")


def parameter_digest(layer) -> str:
    """A short sha256 of every trainable parameter's bytes, in name order."""
    sha = hashlib.sha256()
    for name, parameter in sorted(layer.named_parameters(), key=lambda item: item[0]):
        if not parameter.stop_gradient:
            sha.update(name.encode())
            sha.update(parameter.numpy().tobytes())
    return sha.hexdigest()[:16]
