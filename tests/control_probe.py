"""Every control message of ``Distribution`` as the gloo group receives it, under a device that is not the CPU.

Run under ``python -m paddle.distributed.launch --nproc_per_node 2``. This machine has no GPU,
so "the current device is a GPU" is simulated where it matters: every tensor Paddle creates
*without an explicit place* (``to_tensor`` without ``place``, ``empty``, ``zeros``, ``full``,
``empty_like``) is marked as a device tensor, as it would live on the GPU after
``init_parallel_env``. Paddle's collectives are wrapped to record, for each tensor they receive,
whether it is on the CPU and whether it was marked. Then every control message is sent. Rank 0
writes the record (JSON) to ``<out>``; a test requires every tensor to be an explicit host tensor.

    python control_probe.py OUT.json
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinybert.runtime import prepare_process  # noqa: E402

prepare_process()

import paddle  # noqa: E402
import paddle.distributed as dist  # noqa: E402

from tinybert.errors import UserError, run_cli  # noqa: E402
from tinybert.training.distributed import Distribution  # noqa: E402

IMPLICIT = set()  # ids of tensors created without an explicit place
RECEIVED = []


def marking(create):
    def wrapper(*args, **kwargs):
        tensor = create(*args, **kwargs)
        if kwargs.get("place") is None:
            IMPLICIT.add(id(tensor))
        return tensor
    return wrapper


def recording(name, collective):
    def wrapper(tensor, *args, **kwargs):
        RECEIVED.append({"op": name, "cpu": bool(tensor.place.is_cpu_place()), "explicit": id(tensor) not in IMPLICIT})
        return collective(tensor, *args, **kwargs)
    return wrapper


def main():
    out = sys.argv[1]
    control = Distribution.start("cpu")
    for name in ("to_tensor", "empty", "zeros", "full", "empty_like", "zeros_like"):
        setattr(paddle, name, marking(getattr(paddle, name)))
    for name in ("all_reduce", "broadcast", "all_gather", "reduce", "scatter", "send", "recv"):
        setattr(dist, name, recording(name, getattr(dist, name)))
    control.barrier("the probe's start")
    shared = control.broadcast({"rank 0 says": list(range(5))} if control.is_main else None)
    gathered = control.gather(("rank", control.rank, b"\x00" * (3 + control.rank)))
    stop = control.any(control.rank == 1)
    smallest = control.smallest(10 + control.rank)
    try:
        control.check_everywhere(lambda: (_ for _ in ()).throw(UserError("refused on 1")) if control.rank == 1 else None)
        refused = None
    except UserError as err:
        refused = str(err)
    done = control.main_does(lambda: "written", "process 0 to write")
    if control.is_main:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump({"received": RECEIVED, "shared": shared, "gathered": [[g[0], g[1], len(g[2])] for g in gathered],
                       "stop": stop, "smallest": smallest, "refused": refused, "done": done}, handle)
    control.barrier("process 0 to write the probe's output")


if __name__ == "__main__":
    run_cli(main)()  # under the launcher, leaves as the CLIs do (tinybert.errors.leave_launched)
