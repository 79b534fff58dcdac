"""A compiled WordPiece tokenizer that gives PaddleNLP's ``BertTokenizer`` ids, many times faster.

Featurizing MNLI's augmented training set (8.25M pairs) with PaddleNLP's pure-Python tokenizer
takes over an hour on two cores. :class:`FastWordPiece` is built from the checkpoint's own
vocabulary and casing settings and reproduces ``BertTokenizer(first, text_pair=second,
max_length=L, truncation=True)``: BERT's normalisation (control characters dropped, CJK
characters split, accents stripped when lower-casing), word pieces, ``[CLS] a [SEP] b [SEP]``
and longest-first truncation.

Equal by construction is not equal in fact, so it is never trusted blindly: the token store
(``tinybert.data.store``) encodes a sample of the very rows it featurizes with both tokenizers
and falls back to PaddleNLP's for the whole file (one warning line) on the first difference.
Tokenizers other than BERT's, TinyBERT's and ERNIE's WordPiece (SentencePiece ones, subclasses) are never replaced.
"""
from __future__ import annotations

import itertools
import os
import re
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

CHECK_ROWS = 2000  # rows compared against PaddleNLP at build time (spread over the rows)


class Encoded:
    """Token ids of a batch as flat arrays: ``ids`` concatenated, ``lengths``, ``first_lengths``.

    ``first_lengths[i]`` counts ``[CLS] a [SEP]``: token type 0 before it, 1 from it on.
    """

    def __init__(self, ids: np.ndarray, lengths: np.ndarray, first_lengths: np.ndarray):
        first_lengths = np.minimum(first_lengths, lengths)  # a single sentence is all "first"
        self.ids, self.lengths, self.first_lengths = ids, lengths, first_lengths

    def rows(self) -> List[Tuple[List[int], List[int]]]:
        """(input_ids, token_type_ids) per row, as lists (for comparisons and small sets)."""
        out, start = [], 0
        for length, first in zip(self.lengths.tolist(), self.first_lengths.tolist()):
            ids = self.ids[start:start + length].tolist()
            out.append((ids, [0] * first + [1] * (length - first)))
            start += length
        return out

    def select(self, rows: np.ndarray) -> "Encoded":
        """The rows ``rows`` alone, in that order (the sample a check compares)."""
        starts = np.concatenate([[0], np.cumsum(self.lengths)])
        ids = np.concatenate([self.ids[starts[i]:starts[i + 1]] for i in rows]) if len(rows) else self.ids[:0]
        return Encoded(ids, self.lengths[rows], self.first_lengths[rows])

    @staticmethod
    def concatenate(parts: Sequence["Encoded"]) -> "Encoded":
        """Batches encoded one after the other, as one batch."""
        return Encoded(*(np.concatenate([getattr(part, name) for part in parts])
                         for name in ("ids", "lengths", "first_lengths")))


def paddlenlp_encode(tokenizer, first: Sequence[str], second: Optional[Sequence[str]], max_length: int) -> Encoded:
    """The reference: PaddleNLP's own pair encoding (what the suite used before, and the fallback)."""
    encoded = tokenizer(list(first), text_pair=list(second) if second is not None else None, max_length=max_length,
                        truncation=True, return_token_type_ids=True, return_attention_mask=False)
    ids = encoded["input_ids"]
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    firsts = np.fromiter((len(t) - sum(t) for t in encoded["token_type_ids"]), dtype=np.int64, count=len(ids))
    flat = np.fromiter((i for row in ids for i in row), dtype=np.int64, count=int(lengths.sum()))
    return Encoded(flat, lengths, firsts)


def truncated_lengths(first: np.ndarray, second: Optional[np.ndarray], budget: int):
    """Lengths after PaddleNLP's ``longest_first`` truncation to ``budget`` tokens, in closed form.

    PaddleNLP removes one token at a time from the longer sequence (from the second on a tie).
    That first shortens the longer one to the other's length, then alternates starting with the
    second: the second loses ``ceil(r / 2)`` and the first ``floor(r / 2)`` of the ``r`` left.
    """
    if second is None:
        return np.minimum(first, max(budget, 0)), None
    excess = np.maximum(first + second - budget, 0)
    gap = np.abs(first - second)
    cut = np.minimum(excess, gap)
    longer_first = first > second
    first, second = first - np.where(longer_first, cut, 0), second - np.where(longer_first, 0, cut)
    rest = excess - cut
    return np.maximum(first - rest // 2, 0), np.maximum(second - (rest + 1) // 2, 0)


ASCII_CONTROL = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 127]}  # deleted, as BERT's clean_text does
ASCII_WORDS = {True: re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]"), False: re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")}


class FastWordPiece:
    """PaddleNLP's BERT tokenization, fast: a regex for ASCII text, ``tokenizers`` for the rest.

    Measured here (with other jobs on the machine, so only the ratio), Hugging Face ``tokenizers``' full BERT pipeline is only 2-4x PaddleNLP's
    Python one on short sentences (its normaliser and pre-tokeniser dominate), while splitting
    ASCII text is one regex: after deleting control characters, BERT's basic tokenizer on ASCII
    reduces to runs of letters and digits, and single punctuation characters. The word pieces
    of each distinct word come from ``tokenizers``' compiled WordPiece once and are memoised
    (words repeat: a corpus of millions of rows has tens of thousands of distinct words). Text
    with any non-ASCII character goes through ``tokenizers``' whole pipeline (BERT normaliser:
    accents, CJK characters, control characters); text that spells a special token (``[SEP]``)
    through PaddleNLP's own tokenizer, which treats it as that token.

    Each distinct text is tokenized once (augmented pair files repeat one side of the pair in
    about half their rows), then ``[CLS] a [SEP] b [SEP]`` is assembled with
    :func:`truncated_lengths`.
    """

    def __init__(self, tokenizer, max_length: int):
        from tokenizers import Tokenizer, normalizers, pre_tokenizers
        from tokenizers.models import WordPiece

        vocab = dict(tokenizer.vocab.token_to_idx) if hasattr(tokenizer.vocab, "token_to_idx") else dict(tokenizer.vocab)
        self.lower = bool(getattr(tokenizer, "do_lower_case", True))
        piece = getattr(tokenizer, "wordpiece_tokenizer", None)
        model = WordPiece(vocab, unk_token=tokenizer.unk_token,
                          max_input_chars_per_word=getattr(piece, "max_input_chars_per_word", 100))
        fast = Tokenizer(model)
        fast.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                     strip_accents=self.lower, lowercase=self.lower)
        fast.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self.tokenizer, self.fast, self.model, self.max_length = tokenizer, fast, model, max_length
        self.cls, self.sep = vocab[tokenizer.cls_token], vocab[tokenizer.sep_token]
        self.specials = [t for t in tokenizer.all_special_tokens if t]
        self.words: dict = {}

    def _word(self, word: str) -> List[int]:
        """A word seen for the first time: its pieces, memoised (``tokenize`` looks the others up itself)."""
        ids = self.words[word] = [token.id for token in self.model.tokenize(word)]
        return ids

    def tokenize(self, texts: Sequence[str]) -> List[List[int]]:
        """Word-piece ids of each text, no special tokens, no truncation."""
        out: List[Optional[List[int]]] = [None] * len(texts)
        pattern, rest, known = ASCII_WORDS[self.lower], [], self.words.get  # a call per word: the inner loop
        for index, text in enumerate(texts):
            if "[" in text and any(special in text for special in self.specials):
                out[index] = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(text))
            elif text.isascii():
                text = text.translate(ASCII_CONTROL)
                ids: List[int] = []
                for word in pattern.findall(text.lower() if self.lower else text):
                    ids += known(word) or self._word(word)
                out[index] = ids
            else:
                rest.append(index)
        if rest:
            encode = getattr(self.fast, "encode_batch_fast", self.fast.encode_batch)
            for index, encoding in zip(rest, encode([texts[i] for i in rest], add_special_tokens=False)):
                out[index] = encoding.ids
        return out

    def encode(self, first: Sequence[str], second: Optional[Sequence[str]] = None) -> Encoded:
        columns = [first] if second is None else [first, second]
        unique = list(dict.fromkeys(text for column in columns for text in column))
        pieces = dict(zip(unique, self.tokenize(unique)))
        a = [pieces[text] for text in first]
        b = [pieces[text] for text in second] if second is not None else None
        la = np.fromiter(map(len, a), dtype=np.int64, count=len(a))
        lb = np.fromiter(map(len, b), dtype=np.int64, count=len(b)) if b is not None else None
        la, lb = truncated_lengths(la, lb, self.max_length - (2 if b is None else 3))
        cls, sep = [self.cls], [self.sep]
        rows = ([cls + x[:n] + sep for x, n in zip(a, la.tolist())] if b is None else
                [cls + x[:n] + sep + y[:m] + sep for x, n, y, m in zip(a, la.tolist(), b, lb.tolist())])
        lengths = la + 2 if b is None else la + lb + 3
        flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
        return Encoded(flat, lengths, la + 2)


def is_wordpiece_bert(tokenizer) -> bool:
    """A plain BERT-style WordPiece tokenizer (vocabulary + basic and word-piece tokenizers): BERT's,
    TinyBERT's and ERNIE's (the same algorithm), the only kinds replaced. Subclasses are not: they
    may tokenize differently."""
    from paddlenlp.transformers import BertTokenizer, ErnieTokenizer, TinyBertTokenizer

    return type(tokenizer) in (BertTokenizer, TinyBertTokenizer, ErnieTokenizer)


def fast_tokenizer_enabled() -> bool:
    """``tokenizers`` importable and not switched off (``TINYBERT_FAST_TOKENIZER=0``)."""
    if os.environ.get("TINYBERT_FAST_TOKENIZER", "1") == "0":
        return False
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        return False
    return True


def check_sample(texts: Sequence[Sequence[str]], size: int = CHECK_ROWS) -> np.ndarray:
    """Indices of the rows compared: ``size`` spread evenly, plus up to ``size`` rows that take the
    rarer roads (non-ASCII text, a ``[``), where a difference would hide (all rows when fewer)."""
    count = len(texts[0])
    if count <= size:
        return np.arange(count)
    spread = np.linspace(0, count - 1, size).astype(np.int64)
    rare = [i for i in range(count) if any(not t[i].isascii() or "[" in t[i] for t in texts)][:size]
    return np.unique(np.concatenate([spread, np.asarray(rare, dtype=np.int64)]))


def line_encoder(tokenizer, sample: Sequence[str]):
    """``text -> word-piece ids`` (no special tokens) for a streamed corpus: the fast tokenizer when
    it gives PaddleNLP's ids on every ``sample`` line, else PaddleNLP's (one warning line)."""
    def reference(text: str) -> List[int]:
        return tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))

    if not fast_tokenizer_enabled() or not is_wordpiece_bert(tokenizer):
        return reference
    fast = FastWordPiece(tokenizer, max_length=2)
    for number, (mine, text) in enumerate(zip(fast.tokenize(sample), sample), start=1):
        if mine != reference(text):
            print(f"warning: the fast tokenizer differs from PaddleNLP's on corpus line {number} of the sample; "
                  f"tokenizing the corpus with PaddleNLP's tokenizer (slower)", file=sys.stderr)
            return reference
    return lambda text: fast.tokenize([text])[0]
