"""GloVe vectors for the nearest-word half of data augmentation (docs/math.md#data-augmentation).

Words that BERT splits into several WordPieces cannot be predicted by one masked position,
so their candidates are the K nearest GloVe words by cosine similarity among the first
``V`` words of the file (the paper's code reads only those, 100,000 by default).

The text format (``word v1 ... vd``, one word a line) takes seconds to parse, so the parsed
and unit-normalised matrix is cached next to the file as ``.npy`` plus a vocabulary file,
and reloaded while the source keeps its size and modification time. Vectors are normalised
once; an all-zero vector stays zero (no NaN) and is never anybody's neighbour.
"""
from __future__ import annotations

import json
import os
import sys
from typing import List, Optional, Sequence

import numpy as np

from ..errors import UserError

CACHE_VERSION = 1
NO_LIMIT = 0  # --glove_vocab_limit 0 reads every word of the file


class GloVe:
    """Unit-normalised vectors of the first ``len(words)`` words of a GloVe file."""

    def __init__(self, words: List[str], vectors: np.ndarray, path: str = ""):
        self.words = words
        self.vectors = vectors  # float32 [V, d], rows of norm 1 or 0
        self.path = path
        self.index = {}
        for row, word in enumerate(words):
            self.index.setdefault(word, row)  # a duplicated word keeps its first row
        self.usable = np.linalg.norm(vectors, axis=1) > 0

    def __len__(self) -> int:
        return len(self.words)

    def find(self, word: str) -> Optional[int]:
        """Row of ``word`` (or of its lower-cased form: GloVe 6B is uncased), None if absent.

        A word whose vector is all zeros has no direction, hence no neighbours: None too.
        """
        for form in (word, word.lower()):
            row = self.index.get(form)
            if row is not None and self.usable[row]:
                return row
        return None

    def similarities(self, rows: Sequence[int]) -> np.ndarray:
        """Cosine similarity of each row's word to every word: one matrix product.

        The word itself and all-zero vectors get -inf so that they are never chosen.
        """
        rows = np.asarray(rows, dtype=np.int64)
        scores = self.vectors[rows] @ self.vectors.T
        scores[:, ~self.usable] = -np.inf
        scores[np.arange(len(rows)), rows] = -np.inf
        return scores


def load_glove(path: str, limit: int = 100000, progress: bool = True) -> GloVe:
    """Load the first ``limit`` words of a GloVe text file (all if 0), through the cache."""
    if not os.path.isfile(path):
        raise UserError(f"--glove_embs {path}: no such file; give the path of a GloVe text file "
                        f"(word v1 ... vd per line, e.g. glove.6B.300d.txt)")
    limit = max(int(limit), NO_LIMIT)
    cached = _read_cache(path, limit)
    if cached is not None:
        return cached
    words, vectors = parse_glove_text(path, limit, progress)
    glove = GloVe(words, normalise(vectors), path)
    _write_cache(glove, limit)
    return glove


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Scale rows to unit length; all-zero rows stay zero instead of becoming NaN."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def parse_glove_text(path: str, limit: int, progress: bool = True):
    """Parse ``word v1 ... vd`` lines into (words, float32 matrix); errors name file and line.

    Words may contain spaces (glove.840B has a few): the last ``d`` fields are the numbers.
    A first line of two integers is a word2vec header and is skipped.
    """
    from tqdm import tqdm

    words: List[str] = []
    rows: List[np.ndarray] = []
    dim = None
    with open(path, "rb") as handle, tqdm(total=os.path.getsize(path), desc=f"reading {os.path.basename(path)}",
                                          unit="B", unit_scale=True, disable=not progress, file=sys.stderr,
                                          mininterval=1.0) as bar:
        for number, raw in enumerate(handle, start=1):
            if limit and len(words) >= limit:
                break
            bar.update(len(raw))
            fields = _decode(raw, path, number).rstrip("\r\n").rstrip(" ").split(" ")
            if fields == [""]:
                continue
            if dim is None and number == 1 and _is_word2vec_header(fields):
                continue
            dim = dim or len(fields) - 1
            words.append(_check_fields(fields, dim, path, number))
            rows.append(_numbers(fields[-dim:], path, number))
    if not words:
        raise UserError(f"{path} holds no word vectors; give a GloVe text file (word v1 ... vd per line)")
    return words, np.stack(rows)


def _decode(raw: bytes, path: str, number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}:{number}: bytes that are not UTF-8; is this really a GloVe text file?") from None


def _is_word2vec_header(fields: List[str]) -> bool:
    return len(fields) == 2 and all(f.isdigit() for f in fields)


def _check_fields(fields: List[str], dim: int, path: str, number: int) -> str:
    """The word of a line that has a word and ``dim`` numbers, else a one-line error."""
    if dim < 1 or len(fields) < dim + 1:
        raise UserError(f"{path}:{number}: expected a word and {max(dim, 1)} numbers, found "
                        f"{len(fields)} field(s); is this a GloVe text file (word v1 ... vd)?")
    return " ".join(fields[:-dim])


def _numbers(fields: List[str], path: str, number: int) -> np.ndarray:
    try:
        values = np.array(fields, dtype=np.float32)
    except ValueError:
        bad = next(f for f in fields if not _is_float(f))
        raise UserError(f"{path}:{number}: '{bad[:40]}' is not a number; is this a GloVe text file?") from None
    if not np.all(np.isfinite(values)):
        raise UserError(f"{path}:{number}: the vector holds inf or nan")
    return values


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# --- cache ---------------------------------------------------------------------------------

def cache_paths(path: str, limit: int):
    """``<file>.<limit>.npy`` (vectors) and ``<file>.<limit>.vocab`` (stamp line + words)."""
    stem = f"{path}.{limit or 'all'}"
    return stem + ".npy", stem + ".vocab"


def _stamp(path: str, limit: int) -> dict:
    """What identifies the source: a changed size or mtime invalidates the cache."""
    info = os.stat(path)
    return {"version": CACHE_VERSION, "size": info.st_size, "mtime_ns": info.st_mtime_ns, "limit": limit}


def _read_cache(path: str, limit: int) -> Optional[GloVe]:
    npy, vocab = cache_paths(path, limit)
    if not (os.path.isfile(npy) and os.path.isfile(vocab)):
        return None
    try:
        with open(vocab, encoding="utf-8", newline="") as handle:
            if json.loads(handle.readline()) != _stamp(path, limit):
                return None
            words = handle.read().split("\n")[:-1]
        vectors = np.load(npy)
    except (OSError, ValueError):
        return None  # unreadable or stale cache: rebuild it
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        return None
    return GloVe(words, vectors, path)


def _write_cache(glove: GloVe, limit: int) -> None:
    """Write both cache files under temporary names, then rename; a read-only dir only warns."""
    npy, vocab = cache_paths(glove.path, limit)
    suffix = f".tmp{os.getpid()}"
    try:
        with open(npy + suffix, "wb") as handle:
            np.save(handle, glove.vectors)
        with open(vocab + suffix, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(json.dumps(_stamp(glove.path, limit)) + "\n")
            handle.write("".join(word + "\n" for word in glove.words))
        os.replace(npy + suffix, npy)
        os.replace(vocab + suffix, vocab)
    except OSError as err:
        for leftover in (npy + suffix, vocab + suffix):
            if os.path.exists(leftover):
                os.remove(leftover)
        print(f"warning: could not cache GloVe next to {glove.path} ({err.strerror}); "
              f"it will be parsed again next time", file=sys.stderr)
