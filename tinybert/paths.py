"""Files on disk: path flags checked before any work starts (one place, one wording, for every
entry point), and the digests that tell whether a file changed or was damaged.

A job that loads a teacher for minutes (or trains for hours) and only then finds that its
``--output_dir`` sits under a regular file, or in a directory it may not write, has wasted
that time and ends in a ``NotADirectoryError`` or ``PermissionError`` traceback. Each entry
point therefore calls these checks on its path flags first. They only look (``stat``,
``access``) and never create anything, so a refused run leaves the disk as it was, and every
process of a multi-process run may call them.

:func:`check_not_replacing` is the other half of "no command overwrites what it reads": an
output directory that a job replaces whole must be neither one of the job's inputs nor a
directory holding one (docs/formats.md#outputs-never-replace-inputs).

Permissions are judged with ``os.access``, which asks the kernel the question the later write
will ask: for root it allows writing everywhere but on a read-only file system, and so does
the write.
"""
from __future__ import annotations

import hashlib
import os
import zlib
from typing import Iterable, Tuple

from .errors import UserError

FIX_PERMISSIONS = "fix its permissions or choose another path"


def nearest_existing(path: str) -> str:
    """``path`` itself if it exists, else its nearest existing ancestor, in the caller's spelling.

    A dangling symbolic link counts as existing (``lexists``): writing through it fails too.
    """
    current = os.path.normpath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current) or os.curdir
        if parent == current:
            break
        current = parent
    return current


def _under_a_file(path: str, flag: str, found: str, fix: str = "") -> UserError:
    fix = fix or f"give a path whose parents are directories (or move {found} away)"
    return UserError(f"{flag} {path}: {found} is a file, not a directory, so nothing can be under it; {fix}")


def check_writable_dir(path: str, flag: str, replaced: bool = False) -> None:
    """``path`` is a directory this process may write files into, or one it can create.

    ``replaced``: the directory is written under a temporary sibling name and renamed over
    ``path`` (``training.checkpoint.atomic_directory``), so its *parent* must be writable.
    """
    if not path:
        raise UserError(f"{flag} is empty; give a directory")
    found = nearest_existing(path)
    if found == os.path.normpath(path) and not os.path.isdir(found):
        raise UserError(f"{flag} {path} is a file; give a directory (a new or an existing one)")
    if not os.path.isdir(found):
        raise _under_a_file(path, flag, found)
    if replaced and found == os.path.normpath(path):
        found = nearest_existing(os.path.dirname(found) or os.curdir)
    if not os.access(found, os.W_OK | os.X_OK):
        where = "is not writable" if found == os.path.normpath(path) else f"cannot be written: {found} is not writable"
        raise UserError(f"{flag} {path} {where} (permission denied); {FIX_PERMISSIONS}")


def check_readable_file(path: str, flag: str, fix: str) -> None:
    """``path`` is an existing regular file this process may read; ``fix`` ends the message."""
    found = nearest_existing(path)
    if found != os.path.normpath(path):
        if not os.path.isdir(found):
            raise _under_a_file(path, flag, found, fix)
        raise UserError(f"{flag} {path}: no such file; {fix}")
    if os.path.isdir(path):
        raise UserError(f"{flag} {path} is a directory; {fix}")
    if not os.path.isfile(path):
        raise UserError(f"{flag} {path}: no such file (a dangling link or a special file); {fix}")
    if not os.access(path, os.R_OK):
        raise UserError(f"{flag} {path} is not readable (permission denied); {FIX_PERMISSIONS}")


def _holds(outer: str, inner: str) -> bool:
    """``inner`` is ``outer`` or lies under it (both already resolved)."""
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def check_not_replacing(replaced: Iterable[Tuple[str, str, str]], inputs: Iterable[Tuple[str, str]],
                        hint: str = "") -> None:
    """Refuse a directory the job would replace that is, or holds, something it reads.

    ``replaced``: ``(flag, value, path)`` for every directory the job writes whole (renamed
    into place, so whatever was there is gone), ``path`` being ``value`` itself or a directory
    under it (``--output_dir out`` replaces ``out/best_model``). ``inputs``: ``(flag, path)``
    of what the job reads or must keep, whether it exists yet or not (a run's own output
    directory is created later; a model hub's name resolves to a path no output replaces).
    Paths are compared resolved (``os.path.realpath``: symbolic links, ``..``, relative
    spellings), so ``./tmp/x/`` and a link to it are the same directory. Only looks at the
    disk: every process of a multi-process run may call it.
    """
    inputs = [(flag, path) for flag, path in inputs if path]
    for flag, value, path in replaced:
        if not path:
            continue
        target = os.path.realpath(path)
        for input_flag, input_path in inputs:
            source = os.path.realpath(input_path)
            if not _holds(target, source):
                continue
            where = os.path.normpath(path)
            relation = "" if source == target else ", which holds it"
            if source == target and os.path.normpath(input_path) != where:
                relation = f" (both are {source})"
            raise UserError(f"{flag} {value} would overwrite {input_flag} {input_path}: this run replaces "
                            f"{where}{relation}; give another {flag}{hint}")


def _blocks(path: str):
    with open(path, "rb") as handle:
        yield from iter(lambda: handle.read(1 << 22), b"")


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    for block in _blocks(path):
        digest.update(block)
    return digest.hexdigest()


def file_crc32(path: str) -> int:
    """The CRC-32 of a file's bytes, streamed: the cheap check that a cached file is intact."""
    value = 0
    for block in _blocks(path):
        value = zlib.crc32(block, value)
    return value
