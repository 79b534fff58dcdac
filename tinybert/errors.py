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
        try:
            result = main(*args, **kwargs)
            code = 0
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            code = EXIT_USAGE
        except SystemExit as stop:
            code = stop.code
        if launched_process():
            leave_launched(code)
        if code:
            sys.exit(code)
        return result

    return wrapper


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
    for child in multiprocessing.active_children():
        child.terminate()
        child.join(timeout=5)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code or 0)
