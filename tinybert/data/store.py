"""A task file featurized once into a memory-mapped token store, shared by stages and processes.

Reading and tokenizing MNLI's augmented training set (8.25M rows) into Python lists took about
an hour and 15 GB of RAM before the first step, in every process, again for stage 2 and again
on every ``--resume``. A store is written once and then mapped: training reads only the pages
of the batches it touches, and the OS page cache holds one copy for all processes.

Layout (docs/formats.md#token-store): one directory per (file content, tokenizer, max length,
task, split) with flat binary arrays and ``meta.json``:

- ``ids.bin``: every example's token ids back to back (uint16 when the vocabulary fits, else
  uint32); ``offsets.bin`` (int64, n + 1) where each example starts;
- ``first.bin`` (int32): length of ``[CLS] a [SEP]`` (token type 0 before it, 1 from it on);
- ``labels.bin``: int64 class indices, or float32 scores for regression;
- ``meta.json``: the key it was built for, counts, dtypes, a CRC-32 of every array and the
  fingerprint the checkpoints record.

The directory name carries a digest of the key, so any change of file, vocabulary, casing,
``--max_seq_length`` or task gives another store; it is written under a temporary name and
renamed when complete, so a name that exists is a finished store. Opening checks sizes and
checksums: a damaged store is rebuilt (rank 0) or refused, never trained on.
"""
from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..errors import UserError
from ..paths import file_crc32, file_sha256
from . import parallel
from .fast_tokenizer import (
    CHECK_ROWS,
    Encoded,
    FastWordPiece,
    check_sample,
    fast_tokenizer_enabled,
    is_wordpiece_bert,
    paddlenlp_encode,
)
from .features import Features, fingerprint_of
from .glue import check_readable, iter_examples
from .tasks import TaskSpec

STORE_VERSION = 1
CHUNK_ROWS = 100_000  # rows checked together: each chunk's sample is drawn from all its rows
LATER_CHECK_ROWS = 100  # rows of every later chunk compared with PaddleNLP (the first chunk: CHECK_ROWS)
PIECE_ROWS = 5_000  # rows encoded by one job (a worker's share at a time; a chunk is cut into pieces)
CHECK_PIECE_ROWS = 200  # sample rows PaddleNLP encodes in one job: about as long as a piece's job
IN_FLIGHT = 3  # jobs per worker submitted and not yet taken back (bounds the memory of a build)
WORKERS_VARIABLE = "TINYBERT_STORE_WORKERS"
ARRAYS = ("ids", "offsets", "first", "labels")


def tokenizer_digest(tokenizer) -> str:
    """What makes two tokenizers give the same ids: class, casing, special tokens, vocabulary."""
    vocab = tokenizer.get_vocab()
    sha = hashlib.sha256(type(tokenizer).__name__.encode())
    sha.update(repr((getattr(tokenizer, "do_lower_case", None), tokenizer.all_special_tokens)).encode())
    for token, index in sorted(vocab.items(), key=lambda item: item[1]):
        sha.update(f"{index}\t{token}\n".encode("utf-8", "surrogateescape"))
    return sha.hexdigest()


def store_key(path: str, spec: TaskSpec, split: str, tokenizer, max_seq_length: int, skip_bad_rows: bool) -> Dict:
    check_readable(path)
    return {"version": STORE_VERSION, "task": spec.name, "split": split, "file_sha256": file_sha256(path),
            "file_size": os.path.getsize(path), "tokenizer": tokenizer_digest(tokenizer),
            "max_seq_length": int(max_seq_length), "skip_bad_rows": bool(skip_bad_rows)}


def store_directory(cache_dir: str, path: str, key: Dict) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(cache_dir, f"{key['task']}-{stem}-{key['max_seq_length']}-{digest}")


# ----------------------------------------------------------------------- the store
class TokenStore:
    """Featurized examples, memory-mapped: what training needs of a ``Features`` table.

    ``len``, ``lengths``, ``labels``, ``example(i)`` (ids, token types) and ``fingerprint()``,
    so ``collate``, ``epoch_batches`` and the batch sources take either.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self.meta = read_meta(directory)
        count, tokens = self.meta["examples"], self.meta["tokens"]
        dtypes = self.meta["dtypes"]
        shapes = {"ids": tokens, "offsets": count + 1, "first": count, "labels": count}
        self.arrays = {name: np.memmap(os.path.join(directory, f"{name}.bin"), dtype=dtypes[name], mode="r",
                                       shape=(shapes[name],)) if shapes[name] else np.zeros(0, dtypes[name])
                       for name in ARRAYS}
        self.ids, self.offsets, self.first, self.labels = (self.arrays[name] for name in ARRAYS)
        self.path = self.meta["source"]
        self.built_now = False  # set by open_store when this call built it
        self._lengths = None

    def __len__(self) -> int:
        return int(self.meta["examples"])

    @property
    def lengths(self) -> np.ndarray:
        if self._lengths is None:
            self._lengths = np.diff(self.offsets).astype(np.int32)  # 4 bytes an example
        return self._lengths

    def example(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        ids = self.ids[start:end]
        return ids, (np.arange(end - start) >= int(self.first[index])).astype(np.int64)

    def fingerprint(self) -> str:
        return self.meta["fingerprint"]

    def to_features(self):
        """The examples as an in-memory ``Features`` table (dev sets: small)."""
        rows = [self.example(i) for i in range(len(self))]
        return Features([r[0].tolist() for r in rows], [r[1].tolist() for r in rows], np.asarray(self.labels).copy())


def read_meta(directory: str) -> Dict:
    """``meta.json`` after checking every array's size and checksum; ValueError says what is wrong."""
    try:
        with open(os.path.join(directory, "meta.json"), encoding="utf-8") as handle:
            meta = json.load(handle)
    except (OSError, ValueError) as err:
        raise ValueError(f"meta.json unreadable ({err})") from None
    if meta.get("version") != STORE_VERSION:
        raise ValueError(f"version {meta.get('version')}, expected {STORE_VERSION}")
    for name in ARRAYS:
        path = os.path.join(directory, f"{name}.bin")
        expected = meta["sizes"][name]
        if not os.path.isfile(path) or os.path.getsize(path) != expected:
            raise ValueError(f"{name}.bin has {os.path.getsize(path) if os.path.isfile(path) else 'no'} bytes, "
                             f"expected {expected}")
        if file_crc32(path) != meta["crc32"][name]:
            raise ValueError(f"{name}.bin fails its checksum")
    return meta


# ----------------------------------------------------------------------- building
class _Mismatch(Exception):
    pass


def store_workers() -> int:
    """Worker processes a build encodes with: ``TINYBERT_STORE_WORKERS`` (0 or 1: in this process),
    else one per core up to two (docs/environment.md#building-a-token-store)."""
    raw = os.environ.get(WORKERS_VARIABLE)
    if raw is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return min(2, cores)
    if not raw.strip().isdigit():
        raise UserError(f"{WORKERS_VARIABLE}={raw!r} is not a number of worker processes; unset it, or set 0 or 1 "
                        f"to build token stores in this process")
    return int(raw)


@dataclass
class _Chunk:
    """``CHUNK_ROWS`` rows on their way through a build: their texts while they are read (the sample
    is drawn from all of them), then their encoded pieces as they come back (the sample's ids are
    taken from what is written) and PaddleNLP's ids of the sample."""

    start: int  # rows before it in the file
    rows: int = 0
    columns: Optional[List[List[str]]] = None  # [first texts] or [first, second]; dropped once sampled
    sample: Optional[np.ndarray] = None
    slices: int = 0  # jobs PaddleNLP's encoding of the sample was split into
    encoded: List[Encoded] = field(default_factory=list)
    reference: List[Encoded] = field(default_factory=list)

    def add(self, first: List[str], second: Optional[List[str]]) -> None:
        texts = [first] if second is None else [first, second]
        self.columns = self.columns or [[] for _ in texts]
        for column, more in zip(self.columns, texts):
            column.extend(more)
        self.rows += len(first)


@dataclass
class _Encoder:
    """The fast tokenizer, checked chunk by chunk against PaddleNLP's (or PaddleNLP's alone).

    The file is encoded in pieces of ``PIECE_ROWS`` rows, by worker processes when there are
    several pieces (``tinybert.data.parallel``) while this process reads on. A row's ids do not
    depend on the rows encoded with it, so the store is the same whoever encoded which piece.
    Each chunk of ``CHUNK_ROWS`` rows is checked on a sample drawn from the whole chunk, whose
    PaddleNLP encoding is a job like the pieces (it runs beside them, not before). Results are
    taken back in file order, so the difference named is the one a chunk-by-chunk build names.
    """

    tokenizer: object
    max_length: int
    fast: Optional[FastWordPiece]
    checked: int = 0

    def run(self, reference: bool, first: List[str], second: Optional[List[str]]) -> Encoded:
        """One job, in a worker or here: a piece for the store, or (``reference``) sample rows by PaddleNLP."""
        if reference or self.fast is None:
            return paddlenlp_encode(self.tokenizer, first, second, self.max_length)
        return self.fast.encode(first, second)

    def stream(self, pieces: Iterator[Tuple[list, Optional[list], list]],
               workers: int) -> Iterator[Tuple[Encoded, list]]:
        """(encoded piece, its labels) in file order, every chunk checked; raises ``_Mismatch``."""
        head = list(itertools.islice(pieces, 2))  # a file of one piece (a dev set) is encoded here, unforked
        pending: deque = deque()  # (kind, chunk, labels) of every job submitted and not taken back, oldest first
        with parallel.pool(self.run, workers if len(head) > 1 else 0) as jobs:
            limit = IN_FLIGHT * workers if isinstance(jobs, parallel.Workers) else 0
            chunk, error = _Chunk(0), None
            try:
                for first, second, labels in itertools.chain(head, pieces):
                    jobs.submit(False, first, second)
                    pending.append(("piece", chunk, labels))
                    chunk.add(first, second)
                    if chunk.rows == CHUNK_ROWS:
                        self._check(jobs, pending, chunk)
                        chunk = _Chunk(chunk.start + chunk.rows)
                    while len(pending) > limit:
                        yield from self._settle(jobs, pending.popleft())
                if chunk.rows:
                    self._check(jobs, pending, chunk)
            except UserError as err:  # a bad row: a difference in an earlier chunk is still named first
                error = err
            while pending:
                yield from self._settle(jobs, pending.popleft())
            if error is not None:
                raise error

    def _check(self, jobs, pending: deque, chunk: _Chunk) -> None:
        """Draw the chunk's sample and submit PaddleNLP's encoding of it, in slices that balance the workers."""
        if self.fast is not None:
            chunk.sample = check_sample(chunk.columns, CHECK_ROWS if chunk.start == 0 else LATER_CHECK_ROWS)
            self.checked += len(chunk.sample)
            for begin in range(0, len(chunk.sample), CHECK_PIECE_ROWS):
                first, *second = [[column[i] for i in chunk.sample[begin:begin + CHECK_PIECE_ROWS]]
                                  for column in chunk.columns]
                jobs.submit(True, first, second[0] if second else None)
                pending.append(("check", chunk, None))
                chunk.slices += 1
        chunk.columns = None

    def _settle(self, jobs, entry) -> Iterator[Tuple[Encoded, list]]:
        """Take back the oldest job's result: a piece is passed on (and kept until its chunk is
        checked); the last slice of a chunk's sample compares the chunk's ids with PaddleNLP's."""
        kind, chunk, labels = entry
        result = jobs.next()
        if kind == "piece":
            if self.fast is not None:
                chunk.encoded.append(result)
            yield result, labels
            return
        chunk.reference.append(result)
        if len(chunk.reference) == chunk.slices:
            ours = Encoded.concatenate(chunk.encoded).select(chunk.sample).rows()
            for row, (mine, theirs) in enumerate(zip(ours, Encoded.concatenate(chunk.reference).rows())):
                if mine != theirs:
                    raise _Mismatch(chunk.start + int(chunk.sample[row]) + 1)
            chunk.encoded = chunk.reference = None  # checked: the chunk's ids can go


def _pieces(path: str, spec: TaskSpec, skip_bad_rows: bool,
            counts: Dict) -> Iterator[Tuple[list, Optional[list], list]]:
    """The file's rows as (first texts, second texts or None, labels), ``PIECE_ROWS`` at a time; a
    piece never straddles two chunks."""
    first: List[str] = []
    second: List[str] = []
    labels: list = []
    pair, rows = spec.is_pair, 0
    for example in iter_examples(path, spec, skip_bad_rows, counts):
        first.append(example.texts[0])
        if pair:
            second.append(example.texts[1])
        labels.append(example.label)
        rows += 1
        if len(first) == PIECE_ROWS or rows % CHUNK_ROWS == 0:
            yield first, (second if pair else None), labels
            first, second, labels = [], [], []
    if first:
        yield first, (second if pair else None), labels


def build(directory: str, path: str, spec: TaskSpec, tokenizer, max_seq_length: int, skip_bad_rows: bool,
          key: Dict, progress: bool = True) -> str:
    """Featurize ``path`` into a store at ``directory`` (atomically); the fast tokenizer when it agrees."""
    fast = FastWordPiece(tokenizer, max_seq_length) if (fast_tokenizer_enabled() and is_wordpiece_bert(tokenizer)) \
        else None
    try:
        return _write(directory, path, spec, key, _Encoder(tokenizer, max_seq_length, fast), progress)
    except _Mismatch as mismatch:
        print(f"warning: {path}: the fast tokenizer differs from PaddleNLP's on example {mismatch.args[0]}; "
              f"featurizing the whole file with PaddleNLP's tokenizer (slower)", file=sys.stderr)
        return _write(directory, path, spec, key, _Encoder(tokenizer, max_seq_length, None), progress)


def _write(directory: str, path: str, spec: TaskSpec, key: Dict, encode: _Encoder, progress: bool) -> str:
    vocab_size = len(encode.tokenizer.get_vocab())
    dtypes = {"ids": "uint16" if vocab_size <= 65535 else "uint32", "offsets": "int64", "first": "int32",
              "labels": "float32" if spec.is_regression else "int64"}
    for stale in glob.glob(f"{glob.escape(directory)}.tmp-*"):  # a build killed before its rename
        shutil.rmtree(stale, ignore_errors=True)
    temporary = f"{directory}.tmp-{os.getpid()}"
    os.makedirs(temporary)
    started, counts, rows, tokens = time.time(), {"skipped": 0}, 0, 0
    lengths_sha, ids_sha = hashlib.sha256(), hashlib.sha256()  # the fingerprint of features.Features
    try:
        handles = {name: open(os.path.join(temporary, f"{name}.bin"), "wb") for name in ARRAYS}
        handles["offsets"].write(np.zeros(1, dtype=np.int64).tobytes())
        for encoded, labels in encode.stream(_pieces(path, spec, key["skip_bad_rows"], counts), store_workers()):
            handles["ids"].write(encoded.ids.astype(dtypes["ids"]).tobytes())
            handles["offsets"].write((tokens + np.cumsum(encoded.lengths)).astype(np.int64).tobytes())
            handles["first"].write(encoded.first_lengths.astype(np.int32).tobytes())
            handles["labels"].write(np.asarray(labels, dtype=dtypes["labels"]).tobytes())
            lengths_sha.update(encoded.lengths.astype(np.int64).tobytes())
            ids_sha.update(encoded.ids.astype(np.int64).tobytes())
            rows, tokens = rows + len(labels), tokens + int(encoded.lengths.sum())
            if progress and sys.stdout.isatty():
                print(f"\rfeaturizing {os.path.basename(path)}: {rows:,} rows, {rows / (time.time() - started):,.0f} "
                      f"rows/s", end="", flush=True)
        for handle in handles.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        if rows == 0:
            raise UserError(f"{path} holds no {spec.name} examples; it is empty or has only a header")
        meta = {"version": STORE_VERSION, "key": key, "source": os.path.abspath(path), "examples": rows,
                "tokens": tokens, "dtypes": dtypes, "skipped_rows": counts["skipped"],
                "tokenizer_used": "fast" if encode.fast is not None else "paddlenlp", "checked_rows": encode.checked,
                "fingerprint": fingerprint_of(lengths_sha, ids_sha),
                "sizes": {n: os.path.getsize(os.path.join(temporary, f"{n}.bin")) for n in ARRAYS},
                "crc32": {n: file_crc32(os.path.join(temporary, f"{n}.bin")) for n in ARRAYS},
                "seconds": round(time.time() - started, 2)}
        with open(os.path.join(temporary, "meta.json"), "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
        shutil.rmtree(directory, ignore_errors=True)  # a damaged store of the same key
        os.replace(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if progress:
        skipped = f" ({counts['skipped']} malformed rows dropped)" if counts["skipped"] else ""
        print(f"\rfeaturized {path}: {rows:,} examples{skipped}, {tokens:,} tokens, "
              f"{meta['tokenizer_used']} tokenizer, {rows / max(meta['seconds'], 1e-9):,.0f} rows/s -> {directory}",
              flush=True)
    return directory


def open_store(cache_dir: str, path: str, spec: TaskSpec, split: str, tokenizer, max_seq_length: int,
               skip_bad_rows: bool, may_build: bool, progress: bool = True) -> TokenStore:
    """The store of ``path``: reused when complete and intact, (re)built when ``may_build``.

    Several processes: rank 0 calls with ``may_build=True`` first, the others after a barrier
    with ``False`` (they then find the finished store, or fail with one line).
    """
    key = store_key(path, spec, split, tokenizer, max_seq_length, skip_bad_rows)
    directory = store_directory(cache_dir, path, key)
    problem = None
    if os.path.isdir(directory):
        try:
            return TokenStore(directory)
        except ValueError as err:
            problem = str(err)
    if not may_build:
        raise UserError(f"token store {directory} is {'damaged (' + problem + ')' if problem else 'missing'} on this "
                        f"process; the first process builds it: check that --cache_dir is shared by all processes")
    if problem:
        print(f"warning: token store {directory} is damaged ({problem}); rebuilding it", file=sys.stderr)
    try:
        os.makedirs(cache_dir, exist_ok=True)
        build(directory, path, spec, tokenizer, max_seq_length, skip_bad_rows, key, progress)
    except OSError as err:
        raise UserError(f"cannot write the token store in {cache_dir} ({err.strerror}); pass a writable "
                        f"--cache_dir") from None
    store = TokenStore(directory)
    store.built_now = True
    return store
