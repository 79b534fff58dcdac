"""Loss terms between logging steps: summed on the device, read back once, checked for NaN."""
from __future__ import annotations

import math
import time
from typing import Dict

from ..errors import UserError


class NonFiniteLoss(UserError):
    pass


class TermMeter:
    """Loss terms summed on the device between logging steps, read back once (one host sync).

    Reading also checks them: a NaN/inf term raises :class:`NonFiniteLoss` naming the term and
    the steps it covers. With ``with_speed`` it adds the throughput since the last read and the
    share of that time the loop waited for data (measured by :meth:`timed`).
    """

    def __init__(self, stage: str, world_size: int = 1):
        self.stage, self.world_size = stage, world_size
        self.sums: Dict = {}
        self.steps = 0  # steps summed in ``sums``
        self.timed_steps, self.waited, self.clock = 0, 0.0, time.perf_counter()  # since the last speed

    def add(self, terms: Dict) -> None:
        for name, value in terms.items():
            value = value.detach()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.steps += 1
        self.timed_steps += 1

    def timed(self, batches):
        """``batches``, adding the time spent waiting for each one to ``waited``."""
        batches = iter(batches)
        while True:
            began = time.perf_counter()
            batch = next(batches, None)
            self.waited += time.perf_counter() - began
            if batch is None:
                return
            yield batch

    def read(self, step: int, with_speed: bool = False) -> Dict[str, float]:
        import paddle

        values: Dict[str, float] = {}
        if self.sums:
            names = list(self.sums)
            means = paddle.stack([self.sums[n].astype("float32").reshape([]) for n in names]).numpy() / self.steps
            values = dict(zip(names, means.tolist()))
            bad = [(n, v) for n, v in values.items() if not math.isfinite(v)]
            if bad:
                first = step - self.steps + 1
                when = f"at step {step}" if first == step else f"between steps {first} and {step}"
                raise NonFiniteLoss(f"loss term '{bad[0][0]}' became {bad[0][1]} {when} ({self.stage}); checkpoints "
                                    f"on disk are from the last good step. Lower --learning_rate or check the data")
        if with_speed:
            values.update(self._speed(values))
        self.sums, self.steps = {}, 0
        return values

    def _speed(self, values: Dict[str, float]) -> Dict[str, float]:
        now = time.perf_counter()
        elapsed, self.clock = max(now - self.clock, 1e-9), now
        waited, self.waited = self.waited, 0.0
        steps, self.timed_steps = self.timed_steps, 0
        speed = {"steps_per_s": steps / elapsed, "data_wait": waited / elapsed}
        if "tokens" in values:  # real tokens of this rank's batches, per step
            speed["tokens_per_s"] = values["tokens"] * steps * self.world_size / elapsed
        return speed
