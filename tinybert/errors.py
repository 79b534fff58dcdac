"""One-line user errors.

Every problem a user can fix (a wrong flag, a missing file, a malformed row) is raised as a
:class:`UserError`. The root scripts catch it in :func:`run_cli` and print one line with the
problem and the fix, then exit with status 2: a user never sees a traceback from deep inside
Paddle for something they typed.
"""
from __future__ import annotations

import functools
import sys

EXIT_USAGE = 2


class UserError(Exception):
    """A problem in the user's input, with the fix in the message."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`UserError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)


def run_cli(main):
    """Decorate a CLI ``main`` so user errors print one line and exit 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_USAGE)

    return wrapper
