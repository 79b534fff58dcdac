"""Data augmentation for task distillation: the algorithm of docs/math.md#data-augmentation, batched.

TinyBERT (Jiao et al., §3.1 "Data Augmentation" and Algorithm 1) multiplies a task's training
set by replacing words with likely alternatives:

1. each text is split with BERT's basic tokenizer; alphabetic words that are not stop
   words are *candidate words* (:func:`split_words`, :func:`candidate_positions`);
2. candidates, once per word position: a word that is one WordPiece is masked and the
   masked LM's top-K predictions are taken (input ``[CLS] masked [SEP] original [SEP]``),
   without ``##`` pieces, special tokens and the word itself; any other word gets its K
   nearest GloVe words (:class:`CandidateFinder`); without GloVe (``--glove_embs`` not given)
   the latter have no candidates and stay as they are;
3. N times, each candidate word is replaced with probability p by a random one of its
   candidates; a sample is kept if it is new (:func:`sample_variants`).

Chinese text (:mod:`tinybert.augmentation.chinese`): every CJK character is a word of its own,
or every space-separated word with ``--segmented``; a CJK word is replaced only by CJK words
that are candidates themselves (no punctuation, Latin, pieces or stop words), chosen among the
admissible predictions and neighbours so that there are still K of them.

The reference scripts run one BERT forward per word; here the masked copies of many
sentences share one forward (dynamic padding, attention mask, the MLM head applied to the
masked positions only) and the GloVe neighbours of many words come from one matrix product.

The output does not depend on ``--batch_size``, ``--chunk_rows`` or the number of processes:
sampling uses a generator seeded by (``--seed``, line number), and a top-K set whose K-th and
(K+1)-th scores are so close that the floating-point noise of a different batch composition
could swap them is recomputed alone, so every set equals that of a one-query computation
(:func:`top_k_rows`). That is what lets the file be written in resumable chunks shared among
processes (:mod:`tinybert.augmentation.parts`, :func:`run`); the input is streamed, so memory
holds one chunk, the models and the per-word candidate caches, whatever the file's size.
"""
from __future__ import annotations

import copy
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..data.glue import decoded_lines, locate, parse_json_row, parse_row, task_dir
from ..data.tasks import TaskSpec
from ..errors import UserError, require
from ..paths import check_writable_dir
from .chinese import Separators, cjk_pieces, is_cjk_word, join_words, separators
from .glove import GloVe, load_glove
from .stopwords import is_stop_word

NO_MODEL = "none"
MAX_BERT_LENGTH = 512
TIE_TOLERANCE = 1e-5  # relative gap at the top-K cut; batch noise measured here: 3e-7 to 8e-7
EXAMPLES_PER_SEARCH = 256  # examples whose candidate searches are pooled into shared batches
TOKENS_PER_SEQUENCE = 128  # a forward holds at most batch_size * this many padded tokens
GLOVE_SCORES_PER_BATCH = 2 ** 24  # floats in one [words, V] similarity matrix (64 MB)


@dataclass(frozen=True)
class Sampling:
    n_samples: int  # N: samples drawn per text column
    top_k: int = 15  # K (the seed's --M)
    p: float = 0.4
    seed: int = 42
    batch_size: int = 64  # masked sequences per forward, GloVe words per matrix product


# --- step 1: words and candidate words -------------------------------------------------------

def basic_tokenizer(lower_case: bool = True):
    """BERT's basic tokenizer (whitespace, punctuation and CJK splitting, accents, case)."""
    from paddlenlp.transformers.bert.tokenizer import BasicTokenizer

    return BasicTokenizer(do_lower_case=lower_case)


def split_words(text: str, tokenizer) -> List[str]:
    """The words of ``text`` as BERT's basic tokenizer sees them (step 1).

    Special-token strings in the text are split like any other ("[MASK]" -> ``[ mask ]``), so
    a sentence can never smuggle a special token into the masked LM's input.
    """
    return tokenizer.tokenize(text)


def is_candidate(word: str) -> bool:
    """A word may be replaced if it is alphabetic and not one of NLTK's English stop words.

    "Alphabetic" is ``str.isalpha``: letters of any script, so the words of a cased or a
    non-English vocabulary (``Müller``, ``naïve``, ``фильм``) are candidates too; the
    paper's code tests ASCII letters only, which silently leaves such text unaugmented.
    """
    return word.isalpha() and not is_stop_word(word)


def candidate_positions(words: Sequence[str]) -> List[int]:
    return [i for i, word in enumerate(words) if is_candidate(word)]


def is_cjk_replacement(word: str) -> bool:
    """What may replace a CJK word: a CJK word that is a candidate itself (not 的, not ，, not
    ``ok``, not ``##影``). English words keep the paper's filter (``##`` pieces, special tokens),
    so that their output is unchanged."""
    return is_cjk_word(word) and is_candidate(word)


def only_cjk_replacements(scores: np.ndarray, cjk_rows: Sequence[int], admissible: np.ndarray) -> np.ndarray:
    """Scores of the rows of CJK queries limited to ``admissible`` columns (the others -inf),
    before the top-K cut: a Chinese MLM's best guesses are mostly ，。的了, and dropping those
    after the cut would leave a handful of the K candidates."""
    if len(cjk_rows):
        rows = np.asarray(cjk_rows, dtype=np.int64)
        scores[np.ix_(rows, np.flatnonzero(~admissible))] = -np.inf
    return scores


# --- ranking shared by the masked LM and GloVe -----------------------------------------------

def top_k_rows(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the ids of the ``k`` best scores (equal scores: lower id first), their scores,
    and whether the k-th and (k+1)-th scores are too close to trust.

    Scores of the same query computed in batches of different shapes differ by ~1e-7; when the
    gap at the cut is below ``TIE_TOLERANCE`` (relative), the caller recomputes that query on
    its own, so the chosen set never depends on the batch.
    """
    rows, width = scores.shape
    if k >= width:
        order = np.lexsort((np.broadcast_to(np.arange(width), scores.shape), -scores), axis=-1)
        return order, np.take_along_axis(scores, order, axis=1), np.zeros(rows, dtype=bool)
    best = np.argpartition(scores, width - k - 1, axis=1)[:, width - k - 1:]  # the k+1 largest
    values = np.take_along_axis(scores, best, axis=1)
    order = np.lexsort((best, -values), axis=-1)
    best, values = np.take_along_axis(best, order, axis=1), np.take_along_axis(values, order, axis=1)
    with np.errstate(invalid="ignore"):  # -inf minus -inf: nothing left to choose, not a tie
        gap = values[:, k - 1] - values[:, k]
        ambiguous = gap < TIE_TOLERANCE * (1.0 + np.abs(values[:, k - 1]))
    return best[:, :k], values[:, :k], ambiguous


def _ranked(scores_of, queries: list, k: int) -> List[np.ndarray]:
    """Top-k ids of every query (scored in one batch), near-ties re-scored one at a time."""
    ids, values, ambiguous = top_k_rows(scores_of(queries), k)
    result = [row[np.isfinite(vals)] for row, vals in zip(ids, values)]
    for i in np.flatnonzero(ambiguous):
        alone_ids, alone_values, _ = top_k_rows(scores_of([queries[i]]), k)
        result[i] = alone_ids[0][np.isfinite(alone_values[0])]
    return result


# --- step 2a: masked-LM candidates ------------------------------------------------------------

@dataclass(frozen=True)
class MaskedQuery:
    """One masked position, as the inputs of a forward pass."""
    input_ids: Tuple[int, ...]
    token_type_ids: Tuple[int, ...]
    position: int  # index of [MASK] in input_ids
    word: str


class MaskedLM:
    """A BERT with its masked-LM head, asked for many masked positions per forward pass."""

    def __init__(self, model, tokenizer):
        self.model = model
        self.model.eval()
        self.tokenizer = tokenizer
        self.max_length = min(MAX_BERT_LENGTH, int(model.config.max_position_embeddings))
        known = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer.vocab))))
        # a model may have more output rows than vocab.txt has tokens (padded vocabularies):
        # those rows get bracketed names, which are never candidates
        self.tokens = known + [f"[row{i}]" for i in range(len(known), int(model.config.vocab_size))]
        self.cls_id, self.sep_id, self.mask_id, self.unk_id, self.pad_id = tokenizer.convert_tokens_to_ids(
            [tokenizer.cls_token, tokenizer.sep_token, tokenizer.mask_token, tokenizer.unk_token,
             tokenizer.pad_token])
        self.excluded = self._never_candidates()
        self.cjk_admissible = np.array([is_cjk_replacement(t) for t in self.tokens])
        self._pieces: Dict[str, Tuple[int, ...]] = {}

    def _never_candidates(self) -> np.ndarray:
        """Vocabulary ids never offered as a word: ``##`` pieces and special tokens (including
        BERT's ``[unused*]`` placeholders)."""
        special = set(self.tokenizer.all_special_ids)
        return np.array([i in special or t.startswith("##") or (t.startswith("[") and t.endswith("]"))
                         for i, t in enumerate(self.tokens)])

    def word_pieces(self, word: str) -> Tuple[int, ...]:
        """WordPiece ids of one word (cached: datasets repeat their words).

        A segmented CJK word is cut into its characters first, as the model's own tokenizer
        does (电影 is 电 影 to ``bert-base-chinese``, not 电 ##影 or [UNK]).
        """
        pieces = self._pieces.get(word)
        if pieces is None:
            wordpiece = self.tokenizer.wordpiece_tokenizer.tokenize
            tokens = [t for sub in cjk_pieces(word) for t in wordpiece(sub)] or [self.tokenizer.unk_token]
            pieces = tuple(self.tokenizer.convert_tokens_to_ids(tokens))
            self._pieces[word] = pieces
        return pieces

    def predictable(self, word: str) -> bool:
        """One known WordPiece: the masked LM can predict it; others go to GloVe."""
        pieces = self.word_pieces(word)
        return len(pieces) == 1 and pieces[0] != self.unk_id

    def query(self, words: Sequence[str], index: int) -> MaskedQuery:
        """``[CLS] masked [SEP] original [SEP]`` for word ``index`` (step 2).

        A sentence too long for the model is cut to the same window of WordPieces on both
        sides, centred on the masked word, instead of crashing (Huawei issues #141/#149).
        """
        pieces = [self.word_pieces(w) for w in words]
        flat = [p for word in pieces for p in word]
        target = sum(len(word) for word in pieces[:index])
        start, stop = self._window(len(flat), target)
        original = flat[start:stop]
        masked = list(original)
        masked[target - start] = self.mask_id
        ids = (self.cls_id, *masked, self.sep_id, *original, self.sep_id)
        types = (0,) * (len(masked) + 2) + (1,) * (len(original) + 1)
        return MaskedQuery(ids, types, 1 + target - start, words[index])

    def _window(self, length: int, target: int) -> Tuple[int, int]:
        width = max(1, (self.max_length - 3) // 2)
        if length <= width:
            return 0, length
        start = min(max(target - width // 2, 0), length - width)
        return start, start + width

    def candidates(self, queries: List[MaskedQuery], k: int, batch_size: int) -> List[List[str]]:
        """Top-k predictions of every query, batched by length, filtered, in vocabulary order."""
        found: List[Optional[List[str]]] = [None] * len(queries)
        order = sorted(range(len(queries)), key=lambda i: len(queries[i].input_ids))
        for batch in _length_batches(order, [len(q.input_ids) for q in queries], batch_size):
            ranked = _ranked(self._admissible_scores, [queries[i] for i in batch], k)
            for i, ids in zip(batch, ranked):
                found[i] = self._words(ids, queries[i].word)
        return found

    def _words(self, ids: np.ndarray, word: str) -> List[str]:
        """Drop excluded ids and the word itself; sort by id so the order is noise-free."""
        kept = sorted(int(i) for i in ids if not self.excluded[i])
        return [self.tokens[i] for i in kept if self.tokens[i].lower() != word.lower()]

    def _admissible_scores(self, queries: List[MaskedQuery]) -> np.ndarray:
        """:meth:`scores`, CJK words limited to CJK replacements other than themselves."""
        scores = self.scores(queries)
        cjk = [row for row, q in enumerate(queries) if is_cjk_word(q.word)]
        for row in cjk:
            scores[row, self.word_pieces(queries[row].word)[0]] = -np.inf
        return only_cjk_replacements(scores, cjk, self.cjk_admissible)

    def scores(self, queries: List[MaskedQuery]) -> np.ndarray:
        """MLM logits at the masked positions, [len(queries), vocab]: one padded forward."""
        import paddle

        width = max(len(q.input_ids) for q in queries)
        ids = np.full((len(queries), width), self.pad_id, dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, q in enumerate(queries):
            ids[row, : len(q.input_ids)] = q.input_ids
            types[row, : len(q.input_ids)] = q.token_type_ids
            mask[row, : len(q.input_ids)] = 1
        flat_positions = np.array([row * width + q.position for row, q in enumerate(queries)], dtype=np.int64)
        with paddle.no_grad():
            logits = self.model(
                paddle.to_tensor(ids), token_type_ids=paddle.to_tensor(types),
                attention_mask=paddle.to_tensor(mask), masked_positions=paddle.to_tensor(flat_positions),
            )
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        return logits.astype("float32").numpy()


def _length_batches(order: List[int], lengths: List[int], batch_size: int) -> Iterable[List[int]]:
    """Split indices sorted by length into batches of at most ``batch_size`` sequences and
    ``batch_size * TOKENS_PER_SEQUENCE`` padded tokens (long inputs: fewer per batch)."""
    budget = batch_size * TOKENS_PER_SEQUENCE
    batch: List[int] = []
    for i in order:
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * lengths[i] > budget):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


# --- step 2b: GloVe candidates ----------------------------------------------------------------

class GloveNeighbours:
    """K nearest GloVe words of many words per matrix product, remembered per word."""

    def __init__(self, glove: GloVe, k: int, batch_size: int):
        self.glove = glove
        self.k = k
        self.rows_per_product = max(1, min(batch_size, GLOVE_SCORES_PER_BATCH // max(len(glove), 1)))
        self.known: Dict[str, List[str]] = {}
        self._cjk_admissible: Optional[np.ndarray] = None  # over GloVe's words; built at the first CJK word

    def lookup(self, words: Iterable[str]) -> Dict[str, List[str]]:
        """Neighbours of each word (words absent from GloVe have none)."""
        words = set(words)
        todo = sorted(w for w in words if w not in self.known)
        rows = {w: self.glove.find(w) for w in todo}
        for w in todo:
            if rows[w] is None:
                self.known[w] = []
        present = [w for w in todo if rows[w] is not None]
        for start in range(0, len(present), self.rows_per_product):
            batch = present[start: start + self.rows_per_product]
            ranked = _ranked(self._admissible_scores, [rows[w] for w in batch], self.k)
            for word, ids in zip(batch, ranked):
                self.known[word] = self._words(ids, word)
        return {w: self.known[w] for w in words}

    def _admissible_scores(self, rows: List[int]) -> np.ndarray:
        """Similarities, the rows of CJK words limited to CJK replacements (Chinese word vectors
        hold punctuation, numbers and Latin words among their nearest neighbours)."""
        scores = self.glove.similarities(rows)
        cjk = [i for i, row in enumerate(rows) if is_cjk_word(self.glove.words[row])]
        if cjk and self._cjk_admissible is None:
            self._cjk_admissible = np.array([is_cjk_replacement(w) for w in self.glove.words])
        return only_cjk_replacements(scores, cjk, self._cjk_admissible)

    def _words(self, ids: np.ndarray, word: str) -> List[str]:
        """Neighbour words in GloVe order; title-cased for a title-cased word (cased models),
        and never a word that would break a TSV row or the word split (spaces, tabs)."""
        found = [self.glove.words[i] for i in sorted(int(i) for i in ids)]
        found = [w for w in found if w.isprintable() and not any(c.isspace() for c in w)]
        return [w.title() for w in found] if word.istitle() else found


# --- step 2: both together --------------------------------------------------------------------

Candidates = Dict[int, List[str]]  # word position -> replacement words


class CandidateFinder:
    """Candidates for the candidate words of many sentences at once (step 2).

    Without GloVe (``neighbours`` None) the words that would need it have no candidates; how
    many such occurrences there were is kept in ``without_source`` (of ``candidate_words``)
    for the run's closing note.
    """

    def __init__(self, neighbours: Optional[GloveNeighbours], top_k: int, batch_size: int,
                 masked_lm: Optional[MaskedLM] = None, segmented: bool = False):
        self.neighbours = neighbours
        self.top_k = top_k
        self.batch_size = batch_size
        self.masked_lm = masked_lm
        self.tokenizer = _word_splitter(masked_lm, segmented)
        self.candidate_words = 0
        self.without_source = 0

    def words(self, text: str) -> List[str]:
        return split_words(text, self.tokenizer)

    def split(self, text: str) -> Tuple[List[str], Separators]:
        """The words of ``text`` and what separated them (for :func:`join_words`)."""
        words = self.words(text)
        return words, separators(text, words, self.words)

    def find(self, sentences: Sequence[Sequence[str]]) -> List[Candidates]:
        """Candidates of every sentence (a list of words); equal sentences are searched once."""
        unique = list(dict.fromkeys(tuple(s) for s in sentences))
        by_model = [[p for p in candidate_positions(words) if self._predictable(words[p])] for words in unique]
        by_glove = [sorted(set(candidate_positions(words)) - set(mlm)) for words, mlm in zip(unique, by_model)]
        if self.neighbours is None:
            found: List[Candidates] = [{p: [] for p in ps} for ps in by_glove]
        else:
            neighbours = self.neighbours.lookup(words[p] for words, ps in zip(unique, by_glove) for p in ps)
            found = [{p: neighbours[words[p]] for p in ps} for words, ps in zip(unique, by_glove)]
        owners = [(n, p) for n, ps in enumerate(by_model) for p in ps]
        if owners:
            queries = [self.masked_lm.query(unique[n], p) for n, p in owners]
            predicted = self.masked_lm.candidates(queries, self.top_k, self.batch_size)
            for (n, p), words in zip(owners, predicted):
                found[n][p] = words
        index = {words: n for n, words in enumerate(unique)}
        for s in sentences:
            n = index[tuple(s)]
            self.candidate_words += len(found[n])
            self.without_source += len(by_glove[n]) if self.neighbours is None else 0
        return [found[index[tuple(s)]] for s in sentences]

    def _predictable(self, word: str) -> bool:
        """Single-WordPiece words go to the masked LM; all others (and all without one) to GloVe."""
        return self.masked_lm is not None and self.masked_lm.predictable(word)


def _word_splitter(masked_lm: Optional[MaskedLM], segmented: bool = False):
    """The model's own basic tokenizer (its casing); lower-casing without a model (GloVe 6B
    is uncased). For segmented text, a copy that leaves CJK runs whole: the user's words,
    still split at punctuation (好看！ -> 好看 ！)."""
    if masked_lm is None:
        found = basic_tokenizer(lower_case=True)
    else:
        tokenizer = masked_lm.tokenizer
        found = getattr(tokenizer, "basic_tokenizer", None)
        found = found or basic_tokenizer(lower_case=getattr(tokenizer, "do_lower_case", True))
    if segmented:
        found = copy.copy(found)
        found.tokenize_chinese_chars = False
    return found


# --- step 3: sampling -------------------------------------------------------------------------

def sample_variants(words: Sequence[str], candidates: Candidates, n: int, p: float,
                    rng: np.random.Generator) -> List[List[str]]:
    """Up to ``n`` new versions of ``words`` (step 3).

    In each of ``n`` draws every candidate word is replaced with probability ``p`` by a
    uniformly chosen candidate; a draw equal to the original or to an earlier draw is dropped.
    """
    positions = [i for i in sorted(candidates) if candidates[i]]
    if not positions or n <= 0:
        return []
    sizes = np.array([len(candidates[i]) for i in positions])
    replace = rng.random((n, len(positions))) < p
    picks = np.minimum((rng.random((n, len(positions))) * sizes).astype(np.int64), sizes - 1)
    seen = {tuple(words)}
    variants = []
    for draw in range(n):
        new = list(words)
        for column, position in enumerate(positions):
            if replace[draw, column]:
                new[position] = candidates[position][picks[draw, column]]
        key = tuple(new)
        if key not in seen:
            seen.add(key)
            variants.append(new)
    return variants


# --- rows and files ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    line: int  # 1-based line number in train.tsv; seeds the row's random generator
    text: str  # the line as read, written back unchanged as the first (original) example


class TrainRows:
    """The data rows of a train.tsv file, read as a stream: memory does not grow with the file.

    Rows are validated with the same parser as ``tinybert.data.glue`` so that the augmented file
    reads back with the task's reader; bad rows are errors naming the line unless skipped.
    Each iteration reads the file again and sets ``header`` and ``skipped``.
    """

    def __init__(self, path: str, spec: TaskSpec, skip_bad_rows: bool):
        self.path, self.spec, self.skip_bad_rows = path, spec, skip_bad_rows
        self.header: Optional[str] = None
        self.skipped = 0

    def __iter__(self) -> Iterator[Row]:
        header_pending, skipped = self.spec.has_header, 0
        parse = parse_json_row if self.spec.file_format == "jsonl" else parse_row
        for number, line in decoded_lines(self.path):
            if not line.strip():
                continue
            if header_pending:
                self.header, header_pending = line, False
                continue
            try:
                if parse(line, self.spec) is None:
                    continue  # no gold label (OCNLI/CMNLI "-"): the reader drops it, so does augmentation
            except ValueError as err:
                if not self.skip_bad_rows:
                    raise UserError(f"{self.path}:{number}: row {err}; fix the row or pass --skip_bad_rows "
                                    f"to drop such rows")
                skipped += 1
                continue
            yield Row(number, line)
        self.skipped = skipped

    def count(self) -> int:
        """Read the whole file once: every row checked before any work starts; their number."""
        rows = sum(1 for _ in self)
        require(rows > 0, f"{self.path} holds no {self.spec.name} examples; it is empty or has only a header")
        return rows

    def chunks(self, size: int) -> Iterator[List[Row]]:
        """Consecutive lists of ``size`` rows (the last one shorter)."""
        rows = iter(self)
        while True:
            chunk = list(itertools.islice(rows, size))
            if not chunk:
                return
            yield chunk


def augment_rows(rows: Sequence[Row], spec: TaskSpec, finder: CandidateFinder,
                 sampling: Sampling) -> Iterable[str]:
    """Output lines for ``rows``, in the task's own format: each original, then its new versions.

    For a sentence pair, each text is varied with the other held at its original, N draws per
    text (docs/reference-defects.md#sentence-pair-augmentation-mutates-the-row); everything
    else (ids, label, other fields) is copied.
    """
    texts = [row_texts(row.text, spec) for row in rows]
    for row, row_fields, variants in zip(rows, texts, augment_texts([list(t.values()) for t in texts],
                                                                     [row.line for row in rows], finder, sampling)):
        yield row.text
        names = list(row_fields)
        for j, text in variants:
            yield with_text(row.text, spec, names[j], text)


def row_texts(line: str, spec: TaskSpec) -> Dict:
    """The texts augmentation varies, by column (TSV) or field (JSON lines), in order.

    A JSON field that is not a string (CSL's keyword list) is copied, not varied.
    """
    if spec.file_format == "jsonl":
        row = json.loads(line)
        return {name: row[name] for name in spec.text_fields if isinstance(row.get(name), str)}
    columns = line.split("\t")
    return {column: columns[column] for column in spec.text_columns}


def with_text(line: str, spec: TaskSpec, key, text: str) -> str:
    """``line`` with the text at ``key`` (a column index, or a JSON field name) replaced."""
    if spec.file_format == "jsonl":
        row = json.loads(line)
        row[key] = text
        return json.dumps(row, ensure_ascii=False)
    columns = line.split("\t")
    columns[key] = text
    return "\t".join(columns)


def augment_texts(texts: Sequence[Sequence[str]], keys: Sequence[int], finder: CandidateFinder,
                  sampling: Sampling) -> List[List[Tuple[int, str]]]:
    """The new versions of many rows, whatever their file format: per row (its text columns'
    strings, in order), ``(j, new text of text column j)`` in output order, N draws of column 0,
    then of column 1. Row ``r``'s draws use a generator seeded by (``--seed``, ``keys[r]``), its
    line number in the file, so a row's variants do not depend on the rows around it.
    """
    split = [[finder.split(text) for text in row] for row in texts]
    found = iter(finder.find([words for row in split for words, _ in row]))
    result = []
    for row, key in zip(split, keys):
        rng = np.random.default_rng([sampling.seed, key])
        variants = []
        for j, (words, between) in enumerate(row):
            for variant in sample_variants(words, next(found), sampling.n_samples, sampling.p, rng):
                variants.append((j, join_words(variant, between)))
        result.append(variants)
    return result


def augment_chunk(rows: Sequence[Row], spec: TaskSpec, finder: CandidateFinder, sampling: Sampling,
                  bar=None) -> Iterable[str]:
    """Output lines of one chunk, searched ``EXAMPLES_PER_SEARCH`` rows at a time."""
    for start in range(0, len(rows), EXAMPLES_PER_SEARCH):
        batch = rows[start: start + EXAMPLES_PER_SEARCH]
        yield from augment_rows(batch, spec, finder, sampling)
        if bar is not None:
            bar.update(len(batch))


# --- loading and the command ------------------------------------------------------------------

def default_n(spec: TaskSpec, table: Optional[str] = None) -> int:
    """N for the task: ``augment_n`` of the per-task table (``tinybert/data/glue.json``, read by
    :mod:`tinybert.data.hparams`), the one place the paper's per-task values live."""
    from ..data.hparams import task_hparams

    value = task_hparams(spec.name, table).get("augment_n")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise UserError(f"the hyperparameter table has no usable augment_n for {spec.name} ({value!r}); "
                        f"fix tinybert/data/glue.json or pass --N") from None
    require(n >= 0, f"tinybert/data/glue.json: augment_n of {spec.name} is {n}; it must be 0 or more")
    return n


def check_settings(settings) -> None:
    require(settings.N is None or settings.N >= 0, f"--N {settings.N}: must be 0 or more")
    require(settings.M >= 1, f"--M {settings.M}: must be 1 or more")
    require(0.0 <= settings.p <= 1.0, f"--p {settings.p}: must be a probability between 0 and 1")
    require(settings.batch_size >= 1, f"--batch_size {settings.batch_size}: must be 1 or more")
    require(settings.seed >= 0, f"--seed {settings.seed}: must be 0 or more")
    require(settings.chunk_rows >= 1, f"--chunk_rows {settings.chunk_rows}: must be 1 or more")
    require(settings.glove_vocab_limit >= 0, f"--glove_vocab_limit {settings.glove_vocab_limit}: must be 0 (all) or more")
    require(bool(settings.glove_embs) or str(settings.pretrained_bert_model).lower() != NO_MODEL,
            "--pretrained_bert_model none without --glove_embs leaves nothing to replace words with; "
            "give a GloVe-format word-vector file, a masked LM, or both")


def output_settings(settings, spec: TaskSpec, sampling: Sampling) -> dict:
    """Every setting the lines of ``train_aug.tsv`` depend on (not ``--batch_size``, ``--device``
    or the number of processes, which change only the speed): the parts' manifest compares them."""
    glove = os.path.abspath(settings.glove_embs) if settings.glove_embs else None
    return {"task": spec.name, "N": sampling.n_samples, "M": sampling.top_k, "p": sampling.p,
            "seed": sampling.seed, "pretrained_bert_model": str(settings.pretrained_bert_model),
            "glove_embs": glove, "glove_bytes": os.path.getsize(glove) if glove and os.path.isfile(glove) else None,
            "glove_vocab_limit": settings.glove_vocab_limit, "skip_bad_rows": settings.skip_bad_rows,
            "chunk_rows": settings.chunk_rows, "segmented": settings.segmented}


def compute_record(settings, device: str) -> Dict[str, str]:
    """Where the candidates are scored, and in what precision (the parts' manifest compares it).

    The masked LM runs on ``device`` (``Distribution.start`` set it, falling back to the CPU with
    one line); GloVe neighbours are numpy float32 on the CPU whatever the device. On a GPU the
    precision is TF32 when Paddle lets cuBLAS use it (compute capability 8.0 and newer, unless
    ``NVIDIA_TF32_OVERRIDE=0``), float32 otherwise.
    """
    cpu = {"device": "cpu", "precision": "float32"}
    if str(settings.pretrained_bert_model).lower() == NO_MODEL or not device.startswith("gpu"):
        return cpu
    import paddle

    major, _ = paddle.device.cuda.get_device_capability()
    switch = getattr(paddle.base.core, "get_cublas_switch", None)  # TF32 allowed for cuBLAS (Paddle's default)
    tf32 = major >= 8 and os.environ.get("NVIDIA_TF32_OVERRIDE") != "0" and (switch is None or bool(switch()))
    return {"device": f"gpu ({paddle.device.cuda.get_device_name()})", "precision": "tf32" if tf32 else "float32"}


def load_finder(settings, sampling: Sampling, progress: bool) -> CandidateFinder:
    """GloVe (if given), and the masked LM on this process's device (unless
    ``--pretrained_bert_model none``); the device is set by ``Distribution.start``."""
    neighbours = None
    if settings.glove_embs:
        glove = load_glove(settings.glove_embs, settings.glove_vocab_limit, progress)
        neighbours = GloveNeighbours(glove, sampling.top_k, sampling.batch_size)
    masked_lm = None
    if str(settings.pretrained_bert_model).lower() != NO_MODEL:
        from ..models.loading import load_masked_lm

        masked_lm = MaskedLM(*load_masked_lm(settings.pretrained_bert_model))
    return CandidateFinder(neighbours, sampling.top_k, sampling.batch_size, masked_lm, settings.segmented)


def run(settings, progress: bool = True) -> str:
    """``data_augmentation.py``: write <glue_dir>/<TASK>/train_aug.tsv; return its path.

    Chunk by chunk into part files (:mod:`tinybert.augmentation.parts`): a run that finds the
    parts of an interrupted one with the same settings writes only the missing chunks. Under
    ``paddle.distributed.launch`` the k-th missing chunk goes to rank ``k % world_size``; rank 0
    waits for all of them and merges.
    """
    from tqdm import tqdm

    from ..data.tasks import get_task
    from ..runtime import choose_device
    from ..training.distributed import Distribution
    from .parts import Parts, manifest

    spec = get_task(settings.task_name)
    check_settings(settings)
    require(not spec.mark_spans, f"{spec.name}'s spans point at characters of its text, and replacing words would move "
                                 f"them: distil {spec.name} without --use_aug")
    sampling = Sampling(default_n(spec) if settings.N is None else settings.N, settings.M, settings.p, settings.seed,
                        settings.batch_size)
    directory = task_dir(settings.glue_dir, spec)
    check_writable_dir(directory, "--glue_dir's task directory")  # train_aug.tsv goes there: know it before any work
    source = locate(settings.glue_dir, spec, spec.train_file)
    rows = TrainRows(source, spec, settings.skip_bad_rows)
    total = rows.count()
    chunks = -(-total // settings.chunk_rows)
    target = os.path.join(directory, spec.aug_file)
    parts = Parts(target)
    uses_model = str(settings.pretrained_bert_model).lower() != NO_MODEL
    dist = Distribution.start(choose_device(settings.device) if uses_model else "cpu")
    wanted = manifest(source, total, chunks, output_settings(settings, spec, sampling),
                      compute_record(settings, dist.device))
    parts.check(wanted)  # every rank: the same files, the same verdict, before anyone writes
    finder = load_finder(settings, sampling, progress)
    os.makedirs(directory, exist_ok=True)
    done = dist.broadcast(parts.begin(wanted) if dist.is_main else None, "process 0 to list the finished parts")
    if not dist.is_main:
        parts.check(wanted)  # rank 0's manifest: a rank on another kind of GPU must not add its parts
    todo = sorted(set(range(chunks)) - set(done))
    mine = set(todo[dist.rank::dist.world_size])
    size_of = lambda i: min(settings.chunk_rows, total - i * settings.chunk_rows)  # noqa: E731
    if done and dist.is_main:
        print(f"resuming {parts.directory}: {len(done)} of {chunks} chunks done, {len(todo)} to go"
              + (f" on {dist.world_size} processes" if dist.several else ""))
    started = time.time()
    with tqdm(total=sum(size_of(i) for i in mine), desc=f"augmenting {spec.name}", unit=" rows",
              disable=not (progress and dist.is_main), file=sys.stderr) as bar:
        last = max(mine, default=-1)
        for index, chunk in enumerate(rows.chunks(settings.chunk_rows)):
            if index > last:
                break  # the rest of the file is done or another process's
            if index in mine:
                parts.write(index, augment_chunk(chunk, spec, finder, sampling, bar))
    if finder.without_source:
        print(f"note: {finder.without_source} of {finder.candidate_words} candidate words in the rows this process "
              f"augmented were left unchanged: they are several WordPieces (multi-character or rare words), "
              f"which need --glove_embs")
    dist.barrier("every process to write its parts")
    if not dist.is_main:
        print(f"rank {dist.rank}: wrote {len(mine)} part(s) of {chunks}; rank 0 merges them")
        return target
    missing = sorted(set(range(chunks)) - set(parts.finished(chunks)))
    require(not missing, f"{parts.directory}: the parts of chunks {missing[:5]} are missing after every process "
                         f"wrote its own; --glue_dir must be one directory shared by all processes")
    written = parts.merge(rows.header, chunks)
    elapsed = time.time() - started
    augmented = sum(size_of(i) for i in todo)
    print(f"wrote {target}: {written} examples ({total} original + {written - total} new, "
          f"N={sampling.n_samples}, p={sampling.p}) in {elapsed:.1f}s, {augmented / max(elapsed, 1e-9):.1f} rows/s"
          + (f" ({augmented} rows augmented by this run)" if done else "")
          + (f"; skipped {rows.skipped} malformed row(s)" if rows.skipped else ""))
    return target
