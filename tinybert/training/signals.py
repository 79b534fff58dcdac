"""SIGINT/SIGTERM during training: remembered, so every rank stops after the same step."""
from __future__ import annotations

import signal


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StopSignal:
    """Remembers a SIGINT/SIGTERM so the loop can stop after the current step.

    The launcher repeats SIGTERM while it waits for its workers: repeats are ignored, so the
    checkpoint gets written. A second Ctrl-C stops at once.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    def install(self) -> None:
        def remember(signum, _frame):
            if self.signum is not None:
                if signum == signal.SIGINT == self.signum:
                    raise KeyboardInterrupt
                return
            self.signum = signum
        self._previous = {s: signal.signal(s, remember) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
