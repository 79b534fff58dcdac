"""Streaming corpus for general distillation: read, tokenize, pack, shuffle, shard, batch.

General distillation runs over corpora far larger than RAM for days, so this module never
holds the corpus: lines are read lazily, tokenized with the teacher's tokenizer, packed into
``[CLS] ... [SEP]`` sequences of one document, shuffled inside a fixed-size window, split
between ranks and padded per batch. Everything is a pure function of (files, tokenizer,
max_seq_length, seed, epoch), which is what makes resuming exact and ranks consistent.

Why a *window* shuffle (consecutive blocks of ``shuffle_window`` sequences, each permuted by
its own seed) rather than a rolling reservoir: the state at a window start is just a place in a
file. A saved :class:`StreamPosition` therefore costs a few integers, and resuming re-reads
at most one window instead of replaying the epoch up to the checkpoint (hours of tokenization
on a real corpus). The file order is also permuted per epoch, which mixes corpora that come
as many shard files.

Sharding: documents (and 256-line pieces of longer ones) are dealt out round-robin, so each
rank reads the files but tokenizes, packs and shuffles only its own share: with N ranks a
rank's producer does 1/N of the tokenization. The shares differ by a few sequences, so ranks
agree on the number of steps outside this module (``data.batches.CorpusBatches``: the smallest
share's batch count per epoch, or ``--max_steps``); each rank's stream and position are its own.

Typical use (the training loop owns the position):

    corpus = PackedCorpus(paths, tokenizer, max_seq_length=128, batch_size=32, seed=42,
                          rank=rank, world_size=world)
    position = corpus.position_from_state(saved) if resuming else None
    with BackgroundBatches(corpus, position) as batches:
        for batch in batches:             # dicts of int64 numpy arrays
            ...train on batch...
            state = corpus.state_dict(batches.position)   # store in the checkpoint
"""
from __future__ import annotations

import codecs
import gzip
import hashlib
import multiprocessing
import os
import queue
import threading
import time
import traceback
import zlib
from dataclasses import asdict, dataclass, fields, replace
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import UserError
from .fast_tokenizer import line_encoder

PIECE_LINES = 256  # a document longer than this is cut into pieces of this many lines (the unit of sharding)
MAX_LINE_CHARS = 1_000_000  # a longer "line" is a binary or mis-split file, not a sentence
UTF8_MAX_BYTES = 4  # bytes per character at most, to bound the raw read of one line
SNIFF_BYTES = 1 << 16  # checked up front in every file, so a binary file fails at start, not hours in
DEFAULT_SHUFFLE_WINDOW = 4096  # sequences per shuffle window (~2 MB of int32 ids at length 128)
DEFAULT_PREFETCH = 16  # batches queued ahead by the producer, beyond one shuffle window's worth
STATE_VERSION = 2  # 2: pieces and per-rank shares (0.3.1)
LINE_SAMPLE = 1000  # lines checked against PaddleNLP's tokenizer at start (fast_tokenizer.line_encoder)
SAMPLE_SEQUENCES = 256  # packed sequences read at start to judge the corpus (require_real_tokens)
MAX_UNK_SHARE = 0.5  # a larger share of [UNK] among them: the tokenizer does not fit the text
MIN_TOKENS_PER_SEQUENCE = 4.0  # fewer real tokens on average: [CLS] x [SEP], nothing to attend to


# --------------------------------------------------------------------------- files

def _is_gzip(path: str) -> bool:
    return path.endswith(".gz")


def _open_binary(path: str):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def find_corpus_files(paths: Sequence[str]) -> List[str]:
    """Expand files and directories (recursively) into a sorted, duplicate-free file list.

    Directory contents are sorted by path so the list, hence the stream, is the same on every
    machine and rank. Hidden files (``.name``) are skipped: they are editor or VCS droppings.
    """
    if isinstance(paths, str):
        paths = [paths]
    if not paths:
        raise UserError("no corpus given; pass --corpus with one or more text files or directories")
    files: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = []
            for root, dirs, names in os.walk(path):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                found += [os.path.join(root, n) for n in names if not n.startswith(".")]
            if not found:
                raise UserError(f"corpus directory {path} holds no files; put plain-text (.txt or .gz) files in it")
            files += sorted(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise UserError(f"corpus path {path} does not exist; check --corpus")
    unique = list(dict.fromkeys(os.path.normpath(f) for f in files))
    for path in unique:
        _sniff(path)
    return unique


def _bad_bytes_error(path: str, line: int, what: str) -> UserError:
    return UserError(f"{path}:{line}: {what}; the corpus must be UTF-8 plain text (one sentence or paragraph "
                     f"per line), re-encode it (e.g. iconv -f latin1 -t utf-8) or remove the file from --corpus")


def _sniff(path: str) -> None:
    """Reject an unreadable, binary or non-UTF-8 file from its first bytes, before training starts."""
    try:
        with _open_binary(path) as handle:
            head = handle.read(SNIFF_BYTES + 1)
    except PermissionError as err:
        raise UserError(f"cannot read corpus file {path}: {err.strerror}; check its permissions") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise UserError(f"{path} is not a valid gzip file ({err}); decompress or re-create it, or rename it "
                        f"without .gz if it is plain text") from None
    whole = len(head) <= SNIFF_BYTES
    head = head[:SNIFF_BYTES]
    nul = head.find(b"\x00")
    if nul >= 0:
        raise _bad_bytes_error(path, head.count(b"\n", 0, nul) + 1, "NUL byte: this looks like a binary file")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError as err:
        raise _bad_bytes_error(path, head.count(b"\n", 0, err.start) + 1, "bytes that are not UTF-8") from None


def corpus_fingerprint(files: Sequence[str]) -> str:
    """Names and sizes of the files: a resume from a checkpoint of another corpus is refused."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(os.path.basename(path).encode("utf-8", "surrogateescape"))
        digest.update(str(os.path.getsize(path)).encode())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- positions

@dataclass(frozen=True)
class ReadPoint:
    """A place in an epoch's file order: the start of a line, plus tokens of it already used."""

    file_index: int = 0  # index in the epoch's (permuted) file order
    byte_offset: int = 0  # in the decompressed bytes of that file
    line_no: int = 1  # 1-based line number at byte_offset (for error messages)
    token_offset: int = 0  # tokens of that line that belong to the previous sequence
    piece: int = 0  # index in its file of the piece (document, or part of a long one) holding the line
    piece_line: int = 0  # non-blank lines of that piece before this one


@dataclass(frozen=True)
class StreamPosition:
    """Where the consumer is in its stream (this rank's share); a few ints, saved in checkpoints.

    ``window`` is the shuffle window holding the last consumed sequence (-1: nothing consumed
    in ``epoch`` yet), ``point`` where that window starts in the files, and ``consumed`` how
    many of its sequences have been used. ``batches`` counts the batches of the epoch (for
    progress and checks only). With several processes each rank has its own position in its
    own share of the corpus.
    """

    epoch: int = 0
    window: int = -1
    file_index: int = 0
    byte_offset: int = 0
    line_no: int = 1
    token_offset: int = 0
    piece: int = 0
    piece_line: int = 0
    consumed: int = 0
    batches: int = 0

    @property
    def point(self) -> ReadPoint:
        return ReadPoint(self.file_index, self.byte_offset, self.line_no, self.token_offset, self.piece,
                         self.piece_line)

    def to_array(self) -> np.ndarray:
        return np.asarray([getattr(self, f.name) for f in fields(self)], dtype=np.int64)

    @classmethod
    def from_array(cls, values) -> "StreamPosition":
        return cls(*(int(v) for v in np.asarray(values).reshape(-1)))

    @classmethod
    def after(cls, epoch: int, window: int, start: ReadPoint, consumed: int, batches: int) -> "StreamPosition":
        """The position once ``consumed`` sequences of ``window`` (which starts at ``start``) are used."""
        return cls(epoch, window, start.file_index, start.byte_offset, start.line_no, start.token_offset,
                   start.piece, start.piece_line, consumed, batches)


# --------------------------------------------------------------------------- reading and packing

def _read_lines(files: Sequence[str], start: ReadPoint, max_line_chars: int,
                piece_lines: int = PIECE_LINES) -> Iterator[Tuple[ReadPoint, Optional[str]]]:
    """Yield (point, text) per line from ``start``; text None marks the end of a piece.

    A piece is a document (lines up to a blank line or the end of the file), or
    ``piece_lines`` consecutive lines of a longer one: the unit that ranks share out
    (:func:`shard`) and that a packed sequence never crosses. Pieces are numbered in their
    file, so the numbering does not depend on the epoch's file order. Bytes are checked line
    by line: the up-front sniff only covers each file's head.
    """
    limit = max_line_chars * UTF8_MAX_BYTES + 1
    for file_index in range(start.file_index, len(files)):
        path = files[file_index]
        resumed = file_index == start.file_index
        offset = start.byte_offset if resumed else 0
        line_no = start.line_no if resumed else 1
        piece, piece_line = (start.piece, start.piece_line) if resumed else (0, 0)
        try:
            handle = _open_binary(path)
        except OSError as err:
            raise UserError(f"cannot read corpus file {path}: {err.strerror}; check that it still exists") from None
        with handle:
            if offset:
                handle.seek(offset)
            while True:
                try:
                    raw = handle.readline(limit)
                except (gzip.BadGzipFile, EOFError, zlib.error) as err:
                    raise UserError(f"{path}:{line_no}: corrupt gzip data ({err}); re-create the file") from None
                if not raw:
                    break
                text = _decode_line(raw, limit, path, line_no, max_line_chars)
                if offset == 0 and text.startswith("\ufeff"):
                    text = text[1:]
                token_offset = start.token_offset if resumed and offset == start.byte_offset else 0
                if not text.strip():  # a blank line ends the document
                    if piece_line:
                        piece, piece_line = piece + 1, 0
                    yield ReadPoint(file_index, offset, line_no, 0, piece, 0), None
                else:
                    if piece_line == piece_lines:  # a long document: the next piece starts here
                        yield ReadPoint(file_index, offset, line_no, 0, piece, piece_line), None
                        piece, piece_line = piece + 1, 0
                    yield ReadPoint(file_index, offset, line_no, token_offset, piece, piece_line), text
                    piece_line += 1
                offset += len(raw)
                line_no += 1
        yield ReadPoint(file_index + 1, 0, 1, 0), None  # end of file ends the document


def _decode_line(raw: bytes, limit: int, path: str, line_no: int, max_line_chars: int) -> str:
    if len(raw) >= limit and not raw.endswith(b"\n"):
        raise _too_long(path, line_no, max_line_chars)
    if b"\x00" in raw:
        raise _bad_bytes_error(path, line_no, "NUL byte: this looks like a binary file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_bytes_error(path, line_no, "bytes that are not UTF-8") from None
    if len(text) > max_line_chars + 2:  # the newline (\r\n) does not count
        raise _too_long(path, line_no, max_line_chars)
    return text


def shard(lines: Iterator[Tuple[ReadPoint, Optional[str]]], owners: Sequence[int], rank: int, world_size: int
          ) -> Iterator[Tuple[ReadPoint, Optional[str]]]:
    """This rank's lines: piece ``p`` of the file whose owner offset is ``owners[file_index]``
    belongs to rank ``(offset + p) % world_size``. Piece ends pass through (they end packing).

    Round-robin by piece keeps the shares within a piece of each other in every file, and the
    per-file offset (the file's place in the sorted list) spreads single-piece files too. The
    assignment is epoch-invariant, so each rank has the same share, hence the same number of
    sequences, every epoch; the other ranks' lines are read and checked, never tokenized.
    """
    if world_size == 1:
        yield from lines
        return
    for point, text in lines:
        if text is None or (owners[point.file_index] + point.piece) % world_size == rank:
            yield point, text


def _too_long(path: str, line_no: int, limit: int) -> UserError:
    return UserError(f"{path}:{line_no}: line longer than {limit:,} characters; put one sentence or paragraph "
                     f"per line (a file without line breaks is not a corpus)")


def pack_sequences(lines: Iterator[Tuple[ReadPoint, Optional[str]]], encode, capacity: int
                   ) -> Iterator[Tuple[ReadPoint, np.ndarray]]:
    """Greedily pack consecutive lines of one document into bodies of at most ``capacity`` ids.

    A line that does not fit in the room left starts a new sequence; a line longer than
    ``capacity`` is cut into full pieces, its remainder opening the next sequence. Every token
    lands in exactly one sequence. Each body comes with the point where it starts: packing is
    memoryless at a sequence start, so restarting there reproduces the same sequences.
    """
    pending: List[int] = []
    pending_start: Optional[ReadPoint] = None
    for point, text in lines:
        if text is None:
            if pending:
                yield pending_start, np.asarray(pending, dtype=np.int32)
                pending, pending_start = [], None
            continue
        ids = encode(text)
        pos = point.token_offset
        while pos < len(ids):
            room = capacity - len(pending)
            if len(ids) - pos <= room:
                if not pending:
                    pending_start = replace(point, token_offset=pos)
                pending.extend(ids[pos:])
                pos = len(ids)
            elif pending:
                yield pending_start, np.asarray(pending, dtype=np.int32)
                pending, pending_start = [], None
            else:
                yield replace(point, token_offset=pos), np.asarray(ids[pos:pos + capacity], dtype=np.int32)
                pos += capacity
    if pending:
        yield pending_start, np.asarray(pending, dtype=np.int32)


def _names(files: Sequence[str]) -> str:
    return files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)"


def sample_lines(files: Sequence[str], max_line_chars: int) -> List[str]:
    """The first ``LINE_SAMPLE`` non-blank lines: what the fast tokenizer is checked on."""
    lines, found, count = _read_lines(files, ReadPoint(), max_line_chars), [], LINE_SAMPLE
    try:
        for _, text in lines:
            if text is not None:
                found.append(text)
                if len(found) == count:
                    break
    finally:
        lines.close()
    return found


def require_text(files: Sequence[str], max_line_chars: int) -> None:
    """Fail at start on a corpus without a single non-blank line (stops at the first one)."""
    lines = _read_lines(files, ReadPoint(), max_line_chars)
    try:
        for _, text in lines:
            if text is not None:
                return
    finally:
        lines.close()
    raise UserError(f"corpus {_names(files)} holds no text (only blank lines); give text files with one sentence "
                    f"or paragraph per line")


def require_real_tokens(corpus: "PackedCorpus", sample: int = SAMPLE_SEQUENCES) -> Dict[str, float]:
    """Refuse a corpus whose first ``sample`` packed sequences of epoch 0 are mostly noise.

    Reading and tokenizing succeed on text the teacher cannot see: a file without spaces or
    line breaks becomes one ``[UNK]`` per 100 characters, a word list with blank lines between
    words becomes ``[CLS] x [SEP]`` sequences. Training would then run for hours on nothing.
    The sample is the start of what training reads first, so the check costs about a
    second; the thresholds (``MAX_UNK_SHARE``, ``MIN_TOKENS_PER_SEQUENCE``) are explained in
    docs/general-distillation-data.md#degenerate-corpora. Returns what was measured.
    """
    count = tokens = unknown = 0
    unk_id = corpus.tokenizer.unk_token_id
    sequences = corpus.sequences(0)
    try:
        for _, body in sequences:
            count += 1
            tokens += len(body)
            unknown += int(np.count_nonzero(body == unk_id)) if unk_id is not None else 0
            if count == sample:
                break
    finally:
        sequences.close()
    if not count:
        return {"sequences": 0, "tokens_per_sequence": 0.0, "unk_share": 0.0}
    found = {"sequences": count, "tokens_per_sequence": tokens / count, "unk_share": unknown / tokens}
    if found["unk_share"] > MAX_UNK_SHARE:  # the cause; short sequences would only be its symptom
        problem = ("the teacher's tokenizer does not know this text: check its language and encoding, that words "
                   "are separated by spaces, or use a teacher whose vocabulary fits")
    elif found["tokens_per_sequence"] < MIN_TOKENS_PER_SEQUENCE:
        problem = ("its documents are too short to learn attention from: put the sentences of a document on "
                   "consecutive lines, with a blank line only between documents")
    else:
        return found
    raise UserError(f"corpus {_names(corpus.files)}: its first {count} packed sequence(s) hold {found['tokens_per_sequence']:.1f} "
                    f"token(s) each besides [CLS] and [SEP], {found['unk_share']:.0%} of them [UNK]; {problem}")


def shuffle_windows(sequences: Iterator[Tuple[ReadPoint, np.ndarray]], size: int, seed: Optional[List[int]],
                    window: int = 0, held=lambda count: None) -> Iterator[Tuple[int, ReadPoint, List[np.ndarray]]]:
    """Consecutive blocks of ``size`` sequences, each permuted by its own seed ``seed + [1, index]``.

    Yields (window index, point where the window starts, permuted bodies), counting windows
    from ``window``; ``seed`` None keeps the order. ``held(count)`` is told how many bodies
    are held at once (the memory bound tests check).
    """
    bodies: List[np.ndarray] = []
    first: Optional[ReadPoint] = None

    def permuted():
        if seed is None:
            return bodies
        order = np.random.default_rng(seed + [1, window]).permutation(len(bodies))
        return [bodies[i] for i in order]

    for point, body in sequences:
        if not bodies:
            first = point
        bodies.append(body)
        held(len(bodies))
        if len(bodies) == size:
            yield window, first, permuted()
            bodies, window = [], window + 1
    if bodies:
        yield window, first, permuted()


def collate_packed(bodies: Sequence[np.ndarray], cls_id: int, sep_id: int, pad_id: int) -> Dict[str, np.ndarray]:
    """[CLS] body [SEP], padded to the longest in the batch, with the attention mask."""
    width = max(len(b) for b in bodies) + 2
    input_ids = np.full((len(bodies), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(bodies), width), dtype=np.int64)
    for row, body in enumerate(bodies):
        input_ids[row, 0] = cls_id
        input_ids[row, 1:len(body) + 1] = body
        input_ids[row, len(body) + 1] = sep_id
        attention_mask[row, :len(body) + 2] = 1
    return {"input_ids": input_ids, "token_type_ids": np.zeros_like(input_ids), "attention_mask": attention_mask}


# --------------------------------------------------------------------------- the corpus

RESUME_KEYS = ("max_seq_length", "global_batch", "world_size", "seed", "shuffle", "shuffle_window", "piece_lines")


def check_stream_settings(max_seq_length: int, batch_size: int, shuffle_window: int, piece_lines: int, rank: int,
                          world_size: int) -> None:
    """Refuse (one line) a stream that could not produce a batch or a share."""
    if max_seq_length < 3:
        raise UserError(f"--max_seq_length must be at least 3 ([CLS], one token, [SEP]), got {max_seq_length}")
    if batch_size < 1:
        raise UserError(f"--batch_size must be positive, got {batch_size}")
    if shuffle_window < 1:
        raise UserError(f"the shuffle window must be at least 1 sequence, got {shuffle_window}")
    if piece_lines < 1:
        raise ValueError(f"piece_lines must be positive, got {piece_lines}")
    if not (world_size >= 1 and 0 <= rank < world_size):
        raise UserError(f"rank {rank} is not in a world of size {world_size}")


class PackedCorpus:
    """The deterministic pipeline, run synchronously; wrap it in :class:`BackgroundBatches`.

    ``rank``/``world_size`` select this process's share (:func:`shard`). ``drop_last``
    defaults to True when ``world_size > 1`` (every rank's batches then have ``batch_size``
    rows) and False otherwise (so one process uses every token once per epoch).
    """

    def __init__(self, paths: Sequence[str], tokenizer, max_seq_length: int = 128, batch_size: int = 32,
                 seed: int = 0, shuffle: bool = True, shuffle_window: int = DEFAULT_SHUFFLE_WINDOW,
                 rank: int = 0, world_size: int = 1, drop_last: Optional[bool] = None,
                 max_line_chars: int = MAX_LINE_CHARS, piece_lines: int = PIECE_LINES):
        check_stream_settings(max_seq_length, batch_size, shuffle_window, piece_lines, rank, world_size)
        self.files = find_corpus_files(paths)
        self.fingerprint = corpus_fingerprint(self.files)
        self.tokenizer, self.max_seq_length, self.batch_size = tokenizer, max_seq_length, batch_size
        self.seed, self.shuffle, self.shuffle_window = seed, shuffle, shuffle_window
        self.rank, self.world_size, self.max_line_chars = rank, world_size, max_line_chars
        self.piece_lines = piece_lines
        self.drop_last = world_size > 1 if drop_last is None else drop_last
        self.cls_id, self.sep_id, self.pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
        self.max_buffered = 0  # largest number of sequences held at once (a memory check for tests)
        require_text(self.files, self.max_line_chars)
        self._encode = line_encoder(tokenizer, sample_lines(self.files, self.max_line_chars))

    def encode(self, text: str) -> List[int]:
        return self._encode(text)

    def file_order(self, epoch: int) -> List[str]:
        """This epoch's file order: a seeded permutation, so many-shard corpora mix across epochs."""
        if not self.shuffle or len(self.files) == 1:
            return list(self.files)
        order = np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.files))
        return [self.files[i] for i in order]

    def sequences(self, epoch: int = 0, start: ReadPoint = ReadPoint()) -> Iterator[Tuple[ReadPoint, np.ndarray]]:
        """This rank's packed bodies (no [CLS]/[SEP]) of one epoch in file order, unshuffled."""
        order = self.file_order(epoch)
        place = {path: index for index, path in enumerate(self.files)}
        owners = [place[path] for path in order]
        lines = shard(_read_lines(order, start, self.max_line_chars, self.piece_lines), owners, self.rank,
                      self.world_size)
        return pack_sequences(lines, self.encode, self.max_seq_length - 2)

    def _windows(self, epoch: int, window: int, start: ReadPoint) -> Iterator[Tuple[int, ReadPoint, List[np.ndarray]]]:
        return shuffle_windows(self.sequences(epoch, start), self.shuffle_window,
                               [self.seed, epoch, self.rank] if self.shuffle else None, window, self._buffered)

    def _buffered(self, count: int) -> None:
        self.max_buffered = max(self.max_buffered, count)

    # -- batches

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def epoch_batches(self, position: Optional[StreamPosition] = None, collate: bool = True,
                      require_one: bool = True) -> Iterator[Tuple[Optional[Dict[str, np.ndarray]], StreamPosition]]:
        """This rank's batches of ``position.epoch`` after ``position``: (batch, position after it).

        With ``collate=False`` the batch is None: a caller that only needs to advance (a cheap
        skip, or counting batches) builds no arrays. An epoch without a single batch is an
        error unless ``require_one`` is False (counting: ranks compare their counts first).
        """
        position = position or StreamPosition()
        epoch, batches = position.epoch, position.batches
        if position.window < 0:
            windows = self._windows(epoch, 0, ReadPoint())
            skip = 0
        else:
            windows = self._windows(epoch, position.window, position.point)
            skip = position.consumed
        group: List[np.ndarray] = []
        last = None  # (window, start point, consumed) of the last sequence put in ``group``
        emitted_any = position.batches > 0 or position.window >= 0
        for window, start, bodies in windows:
            for index in range(skip, len(bodies)):
                group.append(bodies[index])
                last = (window, start, index + 1)
                if len(group) == self.batch_size:
                    batches += 1
                    emitted_any = True
                    yield self._collate(group, collate), StreamPosition.after(epoch, *last, batches)
                    group = []
            skip = 0
        if group and not self.drop_last:
            batches += 1
            emitted_any = True
            yield self._collate(group, collate), StreamPosition.after(epoch, *last, batches)
        if not emitted_any and require_one:
            raise UserError(self.too_small_message())

    def too_small_message(self) -> str:
        share = f"process {self.rank}'s share of " if self.world_size > 1 else ""
        return (f"{share}corpus {_names(self.files)} yields fewer sequences than one batch of {self.batch_size}; "
                f"give more text or lower --batch_size")

    def _collate(self, group: List[np.ndarray], collate: bool):
        return collate_packed(group, self.cls_id, self.sep_id, self.pad_id) if collate else None

    def batches(self, position: Optional[StreamPosition] = None, num_epochs: Optional[int] = None
                ) -> Iterator[Tuple[Dict[str, np.ndarray], StreamPosition]]:
        """(batch, position after it) from ``position`` on, through epochs ``< num_epochs`` (or forever)."""
        position = position or StreamPosition()
        while num_epochs is None or position.epoch < num_epochs:
            yield from self.epoch_batches(position)
            position = StreamPosition(position.epoch + 1)

    def count_batches(self, epoch: int = 0) -> int:
        """Batches per epoch for this rank (one pass over its share, no arrays): for schedules.

        The same for every epoch: a rank's share does not depend on the epoch's file order.
        """
        return sum(1 for _ in self.epoch_batches(StreamPosition(epoch), collate=False, require_one=False))

    def require_one_batch(self) -> None:
        """Fail at start when this rank's share holds less than one batch (reads only that much)."""
        need = self.batch_size if self.drop_last else 1
        sequences, found = self.sequences(0), 0
        try:
            for _ in sequences:
                found += 1
                if found == need:
                    return
        finally:
            sequences.close()
        raise UserError(self.too_small_message())

    # -- checkpoints

    def state_dict(self, position: Optional[StreamPosition]) -> Dict:
        """What a checkpoint stores: the position plus what must match for it to mean the same."""
        return {"version": STATE_VERSION, "position": asdict(position or StreamPosition()),
                "fingerprint": self.fingerprint, **{key: getattr(self, key) for key in RESUME_KEYS}}

    def position_from_state(self, state: Dict) -> StreamPosition:
        """The saved position, after checking the corpus and stream settings are unchanged."""
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION or "position" not in state:
            raise UserError("the checkpoint's corpus position is missing or from another version; "
                            "resume is impossible, start again with --overwrite_output_dir")
        if state["fingerprint"] != self.fingerprint:
            raise UserError("the corpus files differ from the checkpoint's (names or sizes changed); "
                            "resume with the same --corpus, or start again with --overwrite_output_dir")
        for key in RESUME_KEYS:
            if state[key] != getattr(self, key):
                raise UserError(f"the checkpoint was written with {key}={state[key]}, this run has "
                                f"{getattr(self, key)}; resume with the same settings "
                                f"(batch_size x processes must match)")
        return StreamPosition(**state["position"])


# --------------------------------------------------------------------------- background production

def _produce(corpus: PackedCorpus, position, num_epochs, out, stop) -> None:
    """Run the pipeline and put ("batch", arrays, position array) items; errors travel as items."""
    try:
        for batch, after in corpus.batches(position, num_epochs):
            item = ("batch", batch, after.to_array())
            while True:
                if stop.is_set():
                    if hasattr(out, "cancel_join_thread"):
                        out.cancel_join_thread()  # exit now, without flushing batches nobody will read
                    return
                try:
                    out.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
        out.put(("end", None, None))
    except UserError as err:
        out.put(("user_error", str(err), None))
    except BaseException:  # noqa: BLE001 - must reach the consumer, not die silently
        out.put(("crash", traceback.format_exc(), None))


class BackgroundBatches:
    """Iterate a corpus's batches produced ahead of time by a background process (or thread).

    ``mode="process"`` (default) tokenizes in a forked child, so the training process's Python
    thread never runs the tokenizer; ``"thread"`` starts instantly but shares the GIL;
    ``"sync"`` runs in the caller (tests, debugging). The queue holds at most ``prefetch``
    batches: the producer blocks when the model is slower, so memory stays bounded. The
    default holds one shuffle window's batches plus ``DEFAULT_PREFETCH``: a window is only
    emitted once fully read, so a shorter queue would drain while the producer tokenizes the
    next window, and the model would wait at every window boundary.

    ``position`` is the position after the last batch handed out; ``wait_seconds`` the time
    spent blocked waiting for data (the numerator of the data-wait fraction).
    """

    def __init__(self, corpus: PackedCorpus, position: Optional[StreamPosition] = None,
                 num_epochs: Optional[int] = None, mode: str = "process", prefetch: Optional[int] = None):
        if mode not in ("process", "thread", "sync"):
            raise ValueError(f"mode must be process, thread or sync, got {mode!r}")
        self.corpus = corpus
        self.position = position or StreamPosition()
        self.wait_seconds = 0.0
        self.batches_out = 0
        self.mode = mode
        self._worker = None
        if prefetch is None:
            prefetch = -(-corpus.shuffle_window // corpus.batch_size) + DEFAULT_PREFETCH
        self.prefetch = prefetch
        if mode == "sync":
            self._sync = corpus.batches(self.position, num_epochs)
            return
        if mode == "process":
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            self._queue, self._stop = ctx.Queue(maxsize=prefetch), ctx.Event()
            self._worker = ctx.Process(target=_produce, args=(corpus, self.position, num_epochs, self._queue, self._stop),
                                       daemon=True, name="corpus-producer")
        else:
            self._queue, self._stop = queue.Queue(maxsize=prefetch), threading.Event()
            self._worker = threading.Thread(target=_produce, args=(corpus, self.position, num_epochs, self._queue, self._stop),
                                            daemon=True, name="corpus-producer")
        self._worker.start()
        self._done = False

    def __iter__(self):
        return self

    def __next__(self) -> Dict[str, np.ndarray]:
        began = time.perf_counter()
        try:
            if self.mode == "sync":
                batch, after = next(self._sync)
                after = after.to_array()
            else:
                if self._done:
                    raise StopIteration
                kind, batch, after = self._get()
                if kind == "end":
                    self._done = True
                    raise StopIteration
                if kind == "user_error":
                    self._done = True
                    raise UserError(batch)
                if kind == "crash":
                    self._done = True
                    raise RuntimeError(f"the corpus producer failed:\n{batch}")
        finally:
            self.wait_seconds += time.perf_counter() - began
        self.position = StreamPosition.from_array(after)
        self.batches_out += 1
        return batch

    def _get(self):
        while True:
            try:
                return self._queue.get(timeout=1.0)
            except queue.Empty:
                if self.mode == "process" and not self._worker.is_alive() and self._queue.empty():
                    self._done = True
                    raise RuntimeError(f"the corpus producer process died (exit code {self._worker.exitcode})")

    def close(self) -> None:
        """Stop the producer we started (by its own handle) and release the queue."""
        if self._worker is None:
            return
        self._stop.set()
        if self.mode == "process":
            self._worker.join(timeout=2.0)
            if self._worker.is_alive():
                self._worker.terminate()
                self._worker.join(timeout=2.0)
            self._queue.close()
            self._queue.cancel_join_thread()
        else:
            self._worker.join(timeout=2.0)
        self._worker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def make_iterable_dataset(corpus: PackedCorpus, position: Optional[StreamPosition] = None,
                          num_epochs: Optional[int] = None):
    """A ``paddle.io.IterableDataset`` of whole batches, for ``DataLoader(ds, batch_size=None,
    num_workers=1)``. Each item carries ``stream_position`` (int64[10], StreamPosition.from_array).

    The stream is sequential, so only one worker may produce it: with more workers they would
    each produce the full stream. :class:`BackgroundBatches` is the measured default (see the
    docs); this exists for loops built around DataLoader.
    """
    import paddle

    class _CorpusDataset(paddle.io.IterableDataset):
        def __iter__(self):
            info = paddle.io.get_worker_info()
            if info is not None and info.num_workers > 1:
                raise UserError("the corpus stream needs exactly one DataLoader worker (num_workers=1)")
            for batch, after in corpus.batches(position, num_epochs):
                yield dict(batch, stream_position=after.to_array())

    return _CorpusDataset()
