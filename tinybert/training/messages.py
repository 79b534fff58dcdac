"""Control messages between processes, in host memory only: the one place collectives are called.

After ``init_parallel_env`` on a GPU, Paddle's current place is that GPU, and Paddle's object
collectives (``broadcast_object_list``, ``all_gather_object``) build their byte buffers there;
the control group is gloo, which takes host memory only. So a message is pickled into a numpy
byte array, made a tensor with an explicit ``CPUPlace`` (:func:`host_tensor`), and sent with the
in-place ``broadcast`` and ``all_reduce``: a gather is a sum all-reduce of one zeroed buffer in
which each process fills its own slot, so no collective allocates its output anywhere
(docs/distributed.md#control-messages-stay-in-host-memory). Callers meet at a rendezvous first
(``training.rendezvous``): every process is present when these run.
"""
from __future__ import annotations

import pickle
from typing import Any, List

import numpy as np

from ..errors import PeerLost


def host_tensor(array: np.ndarray):
    """A tensor in host memory whatever the current device: the only kind the gloo group takes."""
    import paddle

    return paddle.to_tensor(array, place=paddle.CPUPlace())


class HostMessages:
    """Pickled values over a gloo group of ``world_size`` processes."""

    def __init__(self, group, rank: int, world_size: int):
        self.group, self.rank, self.world_size = group, rank, world_size

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank: its size, then its bytes."""
        import paddle.distributed as dist

        payload = pickle.dumps(value) if self.rank == 0 else b""
        size = host_tensor(np.array([len(payload)], dtype=np.int64))
        self._send(dist.broadcast, size, src=0)
        data = np.frombuffer(payload, dtype=np.uint8) if self.rank == 0 else np.zeros(int(size.numpy()[0]), np.uint8)
        buffer = host_tensor(data)
        self._send(dist.broadcast, buffer, src=0)
        return pickle.loads(buffer.numpy().tobytes())

    def gather(self, value: Any) -> List[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        import paddle.distributed as dist

        payload = pickle.dumps(value)
        sizes = np.zeros(self.world_size, dtype=np.int64)
        sizes[self.rank] = len(payload)
        sizes_tensor = host_tensor(sizes)
        self._send(dist.all_reduce, sizes_tensor)
        offsets = np.concatenate([[0], np.cumsum(sizes_tensor.numpy())])
        data = np.zeros(int(offsets[-1]), dtype=np.uint8)
        data[offsets[self.rank]:offsets[self.rank + 1]] = np.frombuffer(payload, dtype=np.uint8)
        buffer = host_tensor(data)
        self._send(dist.all_reduce, buffer)
        joined = buffer.numpy()
        return [pickle.loads(joined[offsets[r]:offsets[r + 1]].tobytes()) for r in range(self.world_size)]

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on some rank."""
        import paddle.distributed as dist

        value = host_tensor(np.array([int(bool(flag))], dtype=np.int32))
        self._send(dist.all_reduce, value, op=dist.ReduceOp.MAX)
        return bool(value.numpy()[0])

    def _send(self, operation, tensor, **options) -> None:
        """One gloo operation of the control group, on a host tensor only."""
        if not tensor.place.is_cpu_place():
            raise RuntimeError(f"a control message on {tensor.place}: the gloo control group takes host tensors "
                               f"only (build it with host_tensor)")
        try:
            operation(tensor, group=self.group, **options)
        except (RuntimeError, ValueError, OSError) as err:
            raise PeerLost(f"process {self.rank} lost another process during a control message "
                           f"({str(err).splitlines()[0][:120]})") from None
