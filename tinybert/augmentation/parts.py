"""``train_aug.tsv`` built from part files: one per chunk of input rows, resumable and shareable.

An augmented MNLI is about 8 million rows and hours of masked-LM forwards, so the output is
not one long write that an interruption throws away. The data rows of ``train.tsv`` are cut
into chunks of ``--chunk_rows``; chunk ``i``'s output lines go to
``<task_dir>/train_aug.tsv.parts/part-<i>.tsv``, written under a temporary name and renamed,
so a part file that exists is complete. ``manifest.json`` beside them records everything the
lines depend on (the input's size and sha256, N, M, p, seed, the model, the GloVe file and
its limit, ``--skip_bad_rows``, the chunk size, ``--segmented``, and the device and precision
the masked LM scores candidates in): a later run with the same manifest writes only the
missing parts; a run with another one is refused, naming what changed. When every
part exists they are concatenated in chunk order under the header into
``train_aug.tsv.tmp<pid>``, renamed to ``train_aug.tsv``, and the parts are removed.

Which process writes a part does not matter (every row's random generator is seeded by the
row's line number, and candidate sets do not depend on the batch), which is what lets
several processes share the chunks and lets a resumed run equal an uninterrupted one byte
for byte. That holds on one kind of device in one precision: a GPU's scores differ from the
CPU's (and TF32's from float32's) by more than the batch noise the top-K tie check absorbs, so
parts written on different ones are never merged into one file.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Iterable, List, Optional

from ..errors import UserError

PARTS_SUFFIX = ".parts"
MANIFEST = "manifest.json"
FORMAT = 2  # the manifest's layout (2: with "compute"); a different one is refused like changed settings
COPY_BYTES = 1 << 20


def file_digest(path: str) -> str:
    """sha256 of a file's bytes, read in blocks (an input of any size)."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(COPY_BYTES), b""):
            sha.update(block)
    return sha.hexdigest()


def manifest(source: str, rows: int, chunks: int, settings: dict, compute: dict) -> dict:
    """What the part files depend on: the input file (size, digest), the output's settings and
    where the candidates are scored (``compute``: ``{"device", "precision"}``)."""
    return {"format": FORMAT, "input": {"file": os.path.basename(source), "bytes": os.path.getsize(source),
                                        "sha256": file_digest(source)},
            "settings": settings, "compute": compute, "rows": rows, "chunks": chunks}


def describe_compute(compute: dict) -> str:
    return f"{compute.get('device')} in {compute.get('precision')}"


def differences(old: dict, new: dict) -> List[str]:
    """Human-readable changes between two manifests (empty: the same run)."""
    if old.get("format") != new["format"] or not isinstance(old.get("settings"), dict):
        return [f"its {MANIFEST} is unreadable or from another version"]
    changed = []
    before, after = old.get("input") or {}, new["input"]
    if before != after:
        sizes = (f"{before.get('bytes')} -> {after['bytes']} bytes" if before.get("bytes") != after["bytes"]
                 else "same size, other bytes")
        changed.append(f"{after['file']} changed ({sizes})")
    for key, value in new["settings"].items():
        if old["settings"].get(key) != value:
            changed.append(f"{key} {old['settings'].get(key)} -> {value}")
    if (old.get("compute") or {}) != new["compute"]:
        changed.append(f"its parts were scored on {describe_compute(old.get('compute') or {})}, this run scores on "
                       f"{describe_compute(new['compute'])} (the candidate sets can differ between the two)")
    return changed


def _write_atomically(path: str, lines: Iterable[str]) -> int:
    """Write ``lines`` to ``path`` under a temporary name, rename when complete; the line count."""
    temporary = f"{path}.tmp{os.getpid()}"
    count = 0
    try:
        with open(temporary, "w", encoding="utf-8", newline="\n") as out:
            for line in lines:
                out.write(line + "\n")
                count += 1
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return count


class Parts:
    """The part files of one ``train_aug.tsv``, in ``<target>.parts/``."""

    def __init__(self, target: str):
        self.target = target
        self.directory = target + PARTS_SUFFIX

    def path(self, index: int) -> str:
        return os.path.join(self.directory, f"part-{index:06d}.tsv")

    def read_manifest(self) -> Optional[dict]:
        path = os.path.join(self.directory, MANIFEST)
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}  # unreadable: differs from anything, so it is refused, not overwritten

    def check(self, wanted: dict) -> None:
        """Refuse to mix parts of different runs; nothing is written here (every rank calls it)."""
        found = self.read_manifest()
        if found is None:
            return
        changed = differences(found, wanted)
        if changed:
            raise UserError(f"{self.directory} holds the parts of another unfinished augmentation "
                            f"({'; '.join(changed)}); rerun with its settings to finish it, or delete "
                            f"{self.directory} to start over")

    def begin(self, wanted: dict) -> List[int]:
        """Create the directory and the manifest (rank 0, after :meth:`check`); the finished chunks."""
        if self.read_manifest() is None and os.path.isdir(self.directory):
            shutil.rmtree(self.directory)  # parts without a manifest belong to no known run
        os.makedirs(self.directory, exist_ok=True)
        _write_atomically(os.path.join(self.directory, MANIFEST), [json.dumps(wanted, indent=2)])
        return self.finished(wanted["chunks"])

    def finished(self, chunks: int) -> List[int]:
        return [i for i in range(chunks) if os.path.exists(self.path(i))]

    def write(self, index: int, lines: Iterable[str]) -> int:
        """Chunk ``index``'s output lines as its part file (complete or absent); the line count."""
        return _write_atomically(self.path(index), lines)

    def merge(self, header: Optional[str], chunks: int) -> int:
        """The header, then every part in chunk order, as ``target`` (atomically); parts removed
        after. Returns the number of data lines written."""
        temporary = f"{self.target}.tmp{os.getpid()}"
        lines = 0
        try:
            with open(temporary, "wb") as out:
                if header is not None:
                    out.write(header.encode("utf-8") + b"\n")
                for index in range(chunks):
                    with open(self.path(index), "rb") as part:
                        for block in iter(lambda: part.read(COPY_BYTES), b""):
                            out.write(block)
                            lines += block.count(b"\n")
            os.replace(temporary, self.target)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
        shutil.rmtree(self.directory)  # after the rename: a kill in between merges again, same bytes
        return lines
