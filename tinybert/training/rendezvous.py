"""Processes meeting without gloo: a barrier on the launcher's TCP store, with a deadline of ours.

Paddle's gloo process groups give up after 30 seconds, a constant of gloo that Paddle does not
expose, so a process that entered a collective while another worked alone for longer (building
a token store, writing a checkpoint) died with a gloo TIMEOUT. The launcher's TCP store is a
server thread in process 0 (host memory, served whatever process 0's Python is doing): a
process that meets the others there adds one to a counter and polls it until every process has
arrived, or until ``TINYBERT_WAIT_TIMEOUT`` seconds (default 3600) have passed. The collective
that follows then starts with every process present (docs/distributed.md#waiting).
"""
from __future__ import annotations

import os
import signal
import sys
import time

from ..errors import PeerLost, UserError

WAIT_VARIABLE = "TINYBERT_WAIT_TIMEOUT"
DEFAULT_WAIT_SECONDS = 3600  # longer than NCCL's 30-minute default; MNLI's augmented store takes ~4 min
ANNOUNCE_AFTER = 10.0  # a wait longer than this is said once in the waiting process's log
KEY_PREFIX = "tinybert/"


def wait_seconds() -> float:
    """How long a process waits for the others: ``TINYBERT_WAIT_TIMEOUT`` seconds, default 3600."""
    raw = os.environ.get(WAIT_VARIABLE)
    if raw is None or not raw.strip():
        return float(DEFAULT_WAIT_SECONDS)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserError(f"{WAIT_VARIABLE}={raw!r} is not a positive number of seconds; unset it for "
                        f"{DEFAULT_WAIT_SECONDS} s or give the seconds a process may wait for the others")
    return value


class Rendezvous:
    """Numbered meetings of ``world_size`` processes on a store with ``add(key, n) -> count``."""

    def __init__(self, store, rank: int, world_size: int, timeout: float):
        self.store, self.rank, self.world_size, self.timeout = store, rank, world_size, timeout
        self.meetings = 0
        self.closed = False

    def meet(self, what: str) -> None:
        """Return once every process has arrived at this meeting; ``what`` is what a process waits for."""
        self.meetings += 1
        key = f"{KEY_PREFIX}{self.meetings}"
        started = time.monotonic()
        announced, pause = False, 0.001
        try:
            self._count(key, 1)
            while True:
                arrived = self._count(key, 0)
                waited = time.monotonic() - started
                if arrived >= self.world_size:
                    if announced:
                        print(f"process {self.rank}: waited {waited:.0f} s for {what}", file=sys.stderr, flush=True)
                    return
                if waited > self.timeout:
                    raise UserError(
                        f"process {self.rank} waited {waited:.0f} s for {what} ({arrived} of {self.world_size} "
                        f"processes arrived); if that work needs longer, raise {WAIT_VARIABLE} (seconds, now "
                        f"{self.timeout:g})")
                if not announced and waited > ANNOUNCE_AFTER:
                    print(f"process {self.rank}: waiting for {what} (up to {self.timeout:g} s, {WAIT_VARIABLE})",
                          file=sys.stderr, flush=True)
                    announced = True
                time.sleep(pause)
                pause = min(2 * pause, 0.25)
        except (RuntimeError, ValueError, OSError) as err:  # the store's server lives in process 0
            raise PeerLost(f"process {self.rank} lost process 0 while waiting for {what} "
                           f"({str(err).splitlines()[0][:120]})") from None

    def close(self, seconds: float = 60.0) -> None:
        """Process 0 holds the server: it leaves only once every other process is done with it (they
        may still be polling the last meeting when process 0 has seen it complete)."""
        if self.closed:
            return
        self.closed = True
        key = f"{KEY_PREFIX}closed"
        try:
            if self.rank != 0:
                self._count(key, 1)
                return
            deadline = time.monotonic() + seconds
            while self._count(key, 0) < self.world_size - 1 and time.monotonic() < deadline:
                time.sleep(0.01)
        except (RuntimeError, ValueError, OSError):
            pass  # leaving anyway: nothing is left to agree on

    def _count(self, key: str, increment: int) -> int:
        """The store's counter ``key`` after adding ``increment``.

        SIGINT and SIGTERM are held back for the duration of the call (they are delivered right
        after): interrupted, the store's client gives up with "Interrupted system call", and a
        retry could count this process twice.
        """
        held = {signal.SIGINT, signal.SIGTERM}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            return self.store.add(key, increment)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
