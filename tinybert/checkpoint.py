"""Checkpoint directories written atomically (SPEC.md §6: temporary name, then rename).

A directory under its final name is always complete: it is written as ``<name>.tmp-<pid>``
and renamed into place. A crash or a full disk leaves at most a ``.tmp-*`` directory, which
the next save removes.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
from typing import Callable, Iterator

from .errors import UserError


def _remove_stale_temporaries(final_path: str) -> None:
    for stale in glob.glob(f"{final_path}.tmp-*") + glob.glob(f"{final_path}.old-*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final_path: str) -> Iterator[str]:
    """Yield a temporary directory; on success it replaces ``final_path`` in one rename.

    On any failure the temporary directory is removed and ``final_path`` is untouched.
    """
    final_path = os.path.abspath(final_path)
    os.makedirs(os.path.dirname(final_path), exist_ok=True)
    _remove_stale_temporaries(final_path)
    temporary = f"{final_path}.tmp-{os.getpid()}"
    os.makedirs(temporary)
    try:
        yield temporary
        _fsync_tree(temporary)
    except BaseException as err:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise UserError(
                f"no space left on device while saving {final_path}; the previous copy is intact. "
                f"Free disk space or choose another --output_dir"
            ) from None
        raise
    old = None
    if os.path.exists(final_path):
        old = f"{final_path}.old-{os.getpid()}"
        os.rename(final_path, old)
    os.rename(temporary, final_path)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(directory: str) -> None:
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())


def save_pretrained_atomically(final_path: str, model, tokenizer, extra: Callable[[str], None] = None) -> None:
    """Save a model + tokenizer in the layout PaddleNLP's ``from_pretrained`` loads."""
    with atomic_directory(final_path) as temporary:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        if extra is not None:
            extra(temporary)
