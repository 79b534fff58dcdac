"""One-line user errors.

Every problem a user can fix (a wrong flag, a missing file, a malformed row) is raised as a
:class:`UserError`. The root scripts catch it in :func:`run_cli` and print one line with the
problem and the fix, then exit with status 2: a user never sees a traceback from deep inside
Paddle for something they typed.
"""
from __future__ import annotations

import functools
import os
import sys

EXIT_USAGE = 2


class UserError(Exception):
    """A problem in the user's input, with the fix in the message."""


class PeerLost(Exception):
    """Another training process is gone (it failed, or the launcher stopped it): said in one line,
    exit status 1. Its own log (``workerlog.N``) says why; a traceback here would only hide that."""


class Stopped(Exception):
    """SIGTERM outside the training loop (which saves a checkpoint on it instead)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


# how gloo reports a peer that went away, when the error surfaces outside our own collectives
# (e.g. in the gradient all-reduce of ``paddle.DataParallel``)
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "TCP receive error", "Broken pipe")


def require(condition: bool, message: str) -> None:
    """Raise :class:`UserError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)


def run_cli(main):
    """Decorate a CLI ``main`` so user errors print one line and exit 2.

    A process started by ``paddle.distributed.launch`` ends through :func:`leave_launched`
    instead of the interpreter's normal shutdown.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        result = None
        launched = launched_process()
        if launched:
            _stop_on_sigterm()
        try:
            result = main(*args, **kwargs)
            code = 0
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            code = EXIT_USAGE
        except PeerLost as err:
            print(f"error: {err}; the other processes' logs (workerlog.N) say why", file=sys.stderr)
            code = 1
        except Stopped as stop:
            print(f"error: stopped by signal {stop.signum} (the launcher stops every process when one fails or "
                  f"it is stopped itself); nothing half-written is left", file=sys.stderr)
            code = 128 + stop.signum
        except SystemExit as stop:
            code = stop.code
        except Exception as err:  # noqa: BLE001 - only a lost peer is turned into one line
            if not (launched and any(sign in str(err) for sign in _PEER_GONE)):
                raise
            print(f"error: process lost another process ({str(err).splitlines()[0][:160]}); the other "
                  f"processes' logs (workerlog.N) say why", file=sys.stderr)
            code = 1
        if launched:
            leave_launched(code)
        if code:
            sys.exit(code)
        return result

    return wrapper


def _stop_on_sigterm() -> None:
    """SIGTERM raises :class:`Stopped`: files being written are cleaned up by their ``finally``
    and the process says one line. (Paddle's own handler would print a C++ stack instead.) The
    training loop installs its own handler while it runs, which saves a checkpoint instead."""
    import signal

    owner = os.getpid()

    def stop(signum, _frame):
        if os.getpid() != owner:  # a forked child inherited this handler: end as SIGTERM ends a process
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Stopped(signum)

    signal.signal(signal.SIGTERM, stop)


_LEAVING = []  # callables run before a launched process ends successfully (see leave_launched)


def before_leaving(hook) -> None:
    """Run ``hook()`` before a launched process that succeeded ends (e.g. rank 0 keeps the
    rendezvous server up until every other rank is done with it)."""
    _LEAVING.append(hook)


def launched_process() -> bool:
    """True in one of several processes started by ``paddle.distributed.launch`` (its
    ``PADDLE_TRAINERS_NUM``; ``tinybert.training.distributed.launched_world`` reads the same)."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1")) > 1


def leave_launched(code) -> None:
    """End a launched process at once, once its work and output are complete.

    Why: a 2-process gloo run now and then died with SIGABRT ("exit code -6") *after* it had
    finished and written everything, i.e. in the interpreter's shutdown, where Paddle's
    process groups are torn down while the peer process may already be gone (gloo aborts on
    a connection closed under it). Every collective is over when a CLI ``main`` returns (the
    runs end at a barrier), so nothing is lost by skipping that shutdown: output is flushed,
    our own child processes (corpus producer, store workers) are stopped, then ``os._exit``.
    """
    import multiprocessing

    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    if not code:
        for hook in _LEAVING:
            hook()
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout=5)
        if child.is_alive():  # SIGTERM lost in the child's first instants (Python clears pending signals after fork)
            child.kill()
            child.join(timeout=5)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)
