"""Jobs run by forked worker processes, their results taken back in submission order.

Featurizing a file is pure Python after a regular expression and holds the GIL, so threads do
not help; the token store's build (``tinybert.data.store``) hands pieces of the file to worker
processes while it reads the next ones. The workers are forked, so they start with the
tokenizers exactly as the parent holds them (nothing is pickled but the jobs and the results)
and the function they run is whatever the parent passes, a bound method or a closure alike.

:func:`pool` gives the same interface with or without processes (``count`` below 2, or a
platform that cannot fork: the jobs run in the calling process when submitted), so what a job
returns cannot depend on where it ran.

Workers never outlive the work: they are daemons and are terminated when the pool closes (on
success, an exception or Ctrl-C, which they ignore themselves so that the parent alone handles
it); and since a parent killed outright (SIGKILL, SIGTERM) runs no ``finally``, each worker also
stops by itself as soon as it sees that its parent is gone. A worker that dies (out of memory,
killed) is an error in the parent, never a wait for a result that cannot come.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import traceback
from collections import deque
from typing import Callable

POLL_SECONDS = 0.5  # how often an idle worker checks its parent, and a waiting parent its workers


def pool(function: Callable, count: int):
    """``count`` forked processes running ``function``, or the calling process when that is fewer than 2
    or fork is unavailable. Use as a context manager: ``submit(*args)``, then ``next()`` per job."""
    if count >= 2 and "fork" in multiprocessing.get_all_start_methods():
        return Workers(function, count)
    return InProcess(function)


class InProcess:
    """Each job runs when it is submitted, here; ``next`` hands the results back in order."""

    def __init__(self, function: Callable):
        self.function, self.done = function, deque()

    def submit(self, *args) -> None:
        self.done.append(self.function(*args))

    def next(self):
        return self.done.popleft()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.done.clear()


class Workers:
    """Forked daemon processes taking jobs from one queue (whichever is free takes the next)."""

    def __init__(self, function: Callable, count: int):
        context = multiprocessing.get_context("fork")
        self.jobs, self.results = context.Queue(), context.Queue()
        self.submitted = self.returned = 0
        self.early: dict = {}  # results that came back before an older job's
        self.processes = []
        try:
            for number in range(count):
                process = context.Process(target=_serve, args=(function, self.jobs, self.results, os.getpid()),
                                          name=f"tinybert-worker-{number}", daemon=True)
                process.start()
                self.processes.append(process)
        except BaseException:
            self.close()
            raise

    def submit(self, *args) -> None:
        self.jobs.put((self.submitted, args))
        self.submitted += 1

    def next(self):
        """The result of the oldest job not yet taken (waiting for it); a job's exception is raised here."""
        index = self.returned
        while index not in self.early:
            try:
                number, ok, value = self.results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode is not None]
                if dead:
                    raise RuntimeError(f"worker process {dead[0].name} died (exit code {dead[0].exitcode}, e.g. "
                                       f"killed for lack of memory)") from None
                continue
            self.early[number] = (ok, value)
        ok, value = self.early.pop(index)
        self.returned += 1
        if not ok:
            raise value
        return value

    def close(self) -> None:
        for process in self.processes:
            if process.exitcode is None:
                process.terminate()
        for process in self.processes:
            process.join()
        for channel in (self.jobs, self.results):
            channel.cancel_join_thread()  # what is still queued has no reader any more
            channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _serve(function: Callable, jobs, results, parent: int) -> None:
    """A worker's loop: run jobs until terminated or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the parent handles it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # so does the launcher's SIGTERM: a worker just ends (not the
    # parent's handler, inherited through fork, which would raise in the worker's loop or print a C++ stack)
    results.cancel_join_thread()  # an orphan must not wait at exit to hand over a result nobody reads
    while os.getppid() == parent:
        try:
            number, args = jobs.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        try:
            results.put((number, True, function(*args)))
        except BaseException as err:
            results.put((number, False, _portable(err)))


def _portable(err: BaseException) -> BaseException:
    """The exception with the worker's traceback as a note, as something the queue can pickle (an
    exception it cannot pickle would be dropped and the parent left waiting)."""
    err.add_note(f"in worker process {os.getpid()}:\n{traceback.format_exc()}")
    try:
        pickle.dumps(err)
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}\n{err.__notes__[-1]}")
