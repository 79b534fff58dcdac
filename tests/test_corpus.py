"""The streaming corpus of general distillation: packing, shuffling, resume, sharding, bad input.

Documents are tagged: every word of document i is either the tag ``d<i>`` or a shared word,
so a packed sequence holding two tags was joined across a document boundary.
"""
from __future__ import annotations

import gc
import gzip
import json
import os
import random
import tracemalloc
from collections import Counter

import numpy as np
import pytest

from tinybert.data import corpus as corpus_mod
from tinybert.data.corpus import (
    MAX_LINE_CHARS,
    BackgroundBatches,
    PackedCorpus,
    StreamPosition,
    find_corpus_files,
)
from tinybert.errors import UserError

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TAGS = [f"d{i}" for i in range(400)]
SHARED = ["the", "cat", "sat", "on", "mat", "un", "##able", "##s", ".", ","]
VOCAB = SPECIAL + TAGS + SHARED


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from paddlenlp.transformers import BertTokenizer

    directory = tmp_path_factory.mktemp("vocab")
    path = directory / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return BertTokenizer(str(path), do_lower_case=True)


def make_documents(count: int, seed: int = 0, long_every: int = 0, first: int = 0):
    """Documents as lists of lines; some lines far longer than a sequence when asked."""
    rng = random.Random(seed)
    docs = []
    for d in range(first, first + count):
        tag = TAGS[d % len(TAGS)]
        lines = []
        for s in range(rng.randint(1, 6)):
            length = rng.randint(1, 12)
            if long_every and (d * 7 + s) % long_every == 0:
                length = rng.randint(20, 60)
            words = [tag if rng.random() < 0.5 else rng.choice(["the", "cat", "sat", "on", "mat", "unable", "mats", ".", ","])
                     for _ in range(length)]
            words[0] = tag
            lines.append(" ".join(words))
        docs.append(lines)
    return docs


def write_corpus(path, docs, gz: bool = False, extra_blank: bool = False):
    text = ("\n\n\n" if extra_blank else "\n\n").join("\n".join(lines) for lines in docs) + "\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    return str(path)


def expected_tokens(tokenizer, docs) -> Counter:
    ids = Counter()
    for lines in docs:
        for line in lines:
            ids.update(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line)))
    return ids


def rows(batch):
    """The real ids of each row (specials stripped), as tuples."""
    out = []
    for ids, mask in zip(batch["input_ids"], batch["attention_mask"]):
        real = ids[mask.astype(bool)]
        out.append(tuple(int(t) for t in real))
    return out


def body_tokens(batches, tokenizer) -> Counter:
    ids = Counter()
    for batch in batches:
        for row in rows(batch):
            assert row[0] == tokenizer.cls_token_id and row[-1] == tokenizer.sep_token_id
            ids.update(row[1:-1])
    return ids


def all_batches(corpus, position=None, num_epochs=1):
    return list(corpus.batches(position, num_epochs))


@pytest.fixture
def small_corpus(tmp_path):
    docs = make_documents(60, seed=1, long_every=9)
    return write_corpus(tmp_path / "c.txt", docs), docs


# --------------------------------------------------------------------------- packing

def test_packing_keeps_documents_apart_and_within_length(tokenizer, small_corpus):
    path, docs = small_corpus
    corpus = PackedCorpus([path], tokenizer, max_seq_length=16, batch_size=4, seed=3, shuffle_window=8)
    tag_ids = set(tokenizer.convert_tokens_to_ids(TAGS))
    batches = [b for b, _ in all_batches(corpus)]
    assert batches
    for batch in batches:
        assert batch["input_ids"].dtype == np.int64 and batch["token_type_ids"].dtype == np.int64
        assert not batch["token_type_ids"].any()
        assert batch["input_ids"].shape[1] <= 16
        # dynamic padding: the batch is as wide as its longest row
        assert batch["attention_mask"].sum(axis=1).max() == batch["input_ids"].shape[1]
        for row in rows(batch):
            assert len(row) <= 16
            assert len(set(row) & tag_ids) <= 1, "a sequence mixes two documents"


def test_every_token_used_exactly_once_per_epoch(tokenizer, small_corpus):
    path, docs = small_corpus
    corpus = PackedCorpus([path], tokenizer, max_seq_length=16, batch_size=5, seed=0, shuffle_window=6)
    want = expected_tokens(tokenizer, docs)
    for epoch in range(2):
        got = body_tokens([b for b, _ in corpus.epoch_batches(StreamPosition(epoch))], tokenizer)
        assert got == want


def test_long_sentence_is_cut_into_full_pieces(tokenizer, tmp_path):
    line = " ".join(["d1"] * 25)
    path = write_corpus(tmp_path / "long.txt", [[line, "the cat"]])
    corpus = PackedCorpus([path], tokenizer, max_seq_length=8, batch_size=1, shuffle=False)
    lengths = [len(body) for _, body in corpus.sequences()]
    # 25 tokens in pieces of 6; the remainder (1) is joined by the next sentence (2 tokens)
    assert lengths == [6, 6, 6, 6, 3]


def test_directory_and_gzip_inputs(tokenizer, tmp_path):
    root = tmp_path / "corpus"
    (root / "b").mkdir(parents=True)
    docs_a, docs_b, docs_c = make_documents(10, 1), make_documents(10, 2, first=10), make_documents(10, 3, first=20)
    write_corpus(root / "a.txt", docs_a)
    write_corpus(root / "b" / "b.txt.gz", docs_b, gz=True)
    write_corpus(root / "c.gz", docs_c, gz=True, extra_blank=True)
    (root / ".hidden").write_text("d399 d399\n", encoding="utf-8")
    files = find_corpus_files([str(root)])
    assert [os.path.relpath(f, root) for f in files] == ["a.txt", os.path.join("b", "b.txt.gz"), "c.gz"]
    corpus = PackedCorpus([str(root)], tokenizer, max_seq_length=12, batch_size=3, seed=1, shuffle_window=5)
    got = body_tokens([b for b, _ in all_batches(corpus)], tokenizer)
    assert got == expected_tokens(tokenizer, docs_a + docs_b + docs_c)
    # unshuffled, the stream follows the sorted files
    plain = PackedCorpus([str(root)], tokenizer, max_seq_length=12, batch_size=3, shuffle=False)
    tag_ids = set(tokenizer.convert_tokens_to_ids(TAGS))
    firsts = [int(tokenizer.convert_ids_to_tokens(int(next(t for t in body if t in tag_ids)))[1:])
              for _, body in plain.sequences() if tag_ids & set(body.tolist())]
    assert firsts == sorted(firsts)


# --------------------------------------------------------------------------- order

def test_order_is_deterministic_per_seed_and_epoch(tokenizer, small_corpus):
    path, _ = small_corpus
    make = lambda seed: PackedCorpus([path], tokenizer, max_seq_length=16, batch_size=4, seed=seed,  # noqa: E731
                                     shuffle_window=16)
    first = [rows(b) for b, _ in make(7).epoch_batches(StreamPosition(0))]
    again = [rows(b) for b, _ in make(7).epoch_batches(StreamPosition(0))]
    epoch1 = [rows(b) for b, _ in make(7).epoch_batches(StreamPosition(1))]
    other_seed = [rows(b) for b, _ in make(8).epoch_batches(StreamPosition(0))]
    assert first == again
    assert first != epoch1 and sorted(sum(first, [])) == sorted(sum(epoch1, []))
    assert first != other_seed


# --------------------------------------------------------------------------- resume

@pytest.mark.parametrize("world_size, piece_lines", [(1, 256), (2, 256), (2, 3)])
def test_resume_from_any_saved_position_continues_exactly(tokenizer, tmp_path, world_size, piece_lines):
    docs = make_documents(40, seed=5, long_every=11)
    paths = [write_corpus(tmp_path / "x1.txt", docs[:25]), write_corpus(tmp_path / "x2.txt", docs[25:])]
    make = lambda: PackedCorpus(paths, tokenizer, max_seq_length=12, batch_size=3, seed=11,  # noqa: E731
                                shuffle_window=7, world_size=world_size, rank=world_size - 1,
                                piece_lines=piece_lines)
    corpus = make()
    full = all_batches(corpus, num_epochs=2)
    cuts = sorted({1, 2, 5, len(full) // 2, len(full) - 2, len(full) - 1})
    for cut in cuts:
        saved = json.loads(json.dumps(corpus.state_dict(full[cut - 1][1])))  # through a checkpoint file
        restored = make()
        position = restored.position_from_state(saved)
        rest = all_batches(restored, position, num_epochs=2)
        assert len(rest) == len(full) - cut
        for (a, pa), (b, pb) in zip(full[cut:], rest):
            assert rows(a) == rows(b)
            assert pa == pb


def test_resume_with_background_process(tokenizer, small_corpus):
    path, _ = small_corpus
    make = lambda: PackedCorpus([path], tokenizer, max_seq_length=16, batch_size=4, seed=2, shuffle_window=9)  # noqa: E731
    reference = [rows(b) for b, _ in all_batches(make(), num_epochs=2)]
    with BackgroundBatches(make(), num_epochs=2, mode="process", prefetch=2) as stream:
        head = [rows(next(stream)) for _ in range(7)]
        state = make().state_dict(stream.position)
    corpus = make()
    with BackgroundBatches(corpus, corpus.position_from_state(state), num_epochs=2, mode="process") as stream:
        tail = [rows(b) for b in stream]
    assert head + tail == reference


def test_resume_refuses_another_corpus_or_settings(tokenizer, small_corpus, tmp_path):
    path, docs = small_corpus
    corpus = PackedCorpus([path], tokenizer, max_seq_length=16, batch_size=4)
    state = corpus.state_dict(StreamPosition(0, 1, 0, 0, 1, 0, 3, 2))
    other = PackedCorpus([write_corpus(tmp_path / "o.txt", docs[:5])], tokenizer, max_seq_length=16, batch_size=4)
    with pytest.raises(UserError, match="corpus files differ"):
        other.position_from_state(state)
    with pytest.raises(UserError, match="global_batch"):
        PackedCorpus([path], tokenizer, max_seq_length=16, batch_size=8).position_from_state(state)
    with pytest.raises(UserError, match="overwrite_output_dir"):
        corpus.position_from_state({"garbage": 1})


# --------------------------------------------------------------------------- background modes

@pytest.mark.parametrize("mode", ["process", "thread"])
def test_background_modes_match_synchronous(tokenizer, small_corpus, mode):
    path, _ = small_corpus
    make = lambda: PackedCorpus([path], tokenizer, max_seq_length=16, batch_size=4, seed=4, shuffle_window=10)  # noqa: E731
    reference = all_batches(make(), num_epochs=2)
    with BackgroundBatches(make(), num_epochs=2, mode=mode, prefetch=3) as stream:
        got = []
        for batch in stream:
            got.append((rows(batch), stream.position))
    assert got == [(rows(b), p) for b, p in reference]


def test_background_process_reports_user_errors(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_mod, "SNIFF_BYTES", 64)  # the bad byte lies beyond the up-front checks
    monkeypatch.setattr(corpus_mod, "LINE_SAMPLE", 5)
    path = tmp_path / "late.txt"
    path.write_bytes(b"d1 the cat\n" * 20 + b"caf\xe9\n")
    corpus = PackedCorpus([str(path)], tokenizer, max_seq_length=64, batch_size=4096)
    with BackgroundBatches(corpus, num_epochs=1, mode="process") as stream:
        with pytest.raises(UserError, match=r"late\.txt:21: bytes that are not UTF-8"):
            list(stream)


# --------------------------------------------------------------------------- sharding

def sharded(tokenizer, paths, world, **kwargs):
    return [PackedCorpus(paths, tokenizer, max_seq_length=16, batch_size=3, seed=9, shuffle_window=8, rank=rank,
                         world_size=world, **kwargs) for rank in range(world)]


def counting_encoder(corpus, calls):
    """Wrap the corpus's tokenizer so every tokenized line is recorded."""
    encode = corpus._encode

    def counted(text):
        calls.append(text)
        return encode(text)
    corpus._encode = counted
    return corpus


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_tokenize_disjoint_shares_that_partition_the_corpus(tokenizer, tmp_path, world):
    docs = make_documents(60, seed=1, long_every=9)
    paths = [write_corpus(tmp_path / "a.txt", docs[:35]), write_corpus(tmp_path / "b.txt", docs[35:])]
    single_calls, calls = [], [[] for _ in range(world)]
    single = counting_encoder(sharded(tokenizer, paths, 1, drop_last=False)[0], single_calls)
    ranks = [counting_encoder(c, calls[c.rank]) for c in sharded(tokenizer, paths, world, drop_last=False)]
    whole = sorted(r for b, _ in all_batches(single) for r in rows(b))
    shares = [[r for b, _ in all_batches(c) for r in rows(b)] for c in ranks]
    # every sequence of the one-process epoch is in exactly one rank's share, built the same way
    assert sorted(sum(shares, [])) == whole
    # each line is tokenized once, by the rank that owns it: nobody tokenizes the whole corpus
    assert sorted(sum(calls, [])) == sorted(single_calls)
    assert all(0 < len(c) < 0.7 * len(single_calls) for c in calls)
    # documents do not straddle ranks: a document's tag appears on one rank only
    tags = [{t for r in share for t in r if 5 <= t < 405} for share in shares]
    assert all(not (tags[i] & tags[j]) for i in range(world) for j in range(i + 1, world))


def test_a_rank_counts_the_batches_it_yields_and_its_share_is_the_same_every_epoch(tokenizer, small_corpus):
    path, _ = small_corpus
    for corpus in sharded(tokenizer, [path], 2):
        epochs = [[rows(b) for b, _ in corpus.epoch_batches(StreamPosition(e))] for e in range(3)]
        assert all(len(batch) == 3 for batch in epochs[0])  # drop_last with several processes
        assert corpus.count_batches(0) == corpus.count_batches(2) == len(epochs[0]) == len(epochs[2]) > 0
        assert epochs[0] != epochs[1]  # reshuffled
    for corpus in sharded(tokenizer, [path], 2, drop_last=False):  # the same share every epoch
        shares = [sorted(r for b, _ in corpus.epoch_batches(StreamPosition(e)) for r in rows(b)) for e in range(2)]
        assert shares[0] == shares[1]


def test_a_long_document_is_cut_into_pieces_that_ranks_share(tokenizer, tmp_path):
    lines = [" ".join(["d7"] + ["the", "cat", "sat"][: 1 + i % 3]) for i in range(200)]
    path = write_corpus(tmp_path / "one-doc.txt", [lines])  # one document, no blank line
    single_calls, calls = [], [[], []]
    single = counting_encoder(sharded(tokenizer, [path], 1, piece_lines=10, drop_last=False)[0], single_calls)
    ranks = [counting_encoder(c, calls[c.rank]) for c in sharded(tokenizer, [path], 2, piece_lines=10, drop_last=False)]
    whole = [r for b, _ in all_batches(single) for r in rows(b)]
    shares = [[r for b, _ in all_batches(c) for r in rows(b)] for c in ranks]
    assert sorted(sum(shares, [])) == sorted(whole)
    assert len(calls[0]) == len(calls[1]) == 100  # 20 pieces of 10 lines, dealt out in turn
    # no sequence crosses a piece boundary: each holds whole lines of one 10-line piece
    sequences = [body for _, body in single.sequences(0)]
    per_piece = [sum(len(single.encode(line)) for line in lines[i:i + 10]) for i in range(0, 200, 10)]
    lengths, piece = iter(len(s) for s in sequences), 0
    for total in per_piece:
        got = 0
        while got < total:
            got += next(lengths)
        assert got == total, f"a sequence crosses the end of piece {piece}"
        piece += 1


def test_a_rank_without_a_batch_is_refused_at_start(tokenizer, tmp_path):
    path = write_corpus(tmp_path / "few.txt", make_documents(3, seed=4))
    corpora = sharded(tokenizer, [path], 2, drop_last=True)
    corpora[0].batch_size = corpora[1].batch_size = 64
    with pytest.raises(UserError, match=r"process 1's share of corpus .*few\.txt yields fewer sequences than one batch of 64"):
        corpora[1].require_one_batch()


# --------------------------------------------------------------------------- memory

def test_memory_stays_bounded_on_a_corpus_much_larger_than_the_buffer(tokenizer, tmp_path):
    window, length = 8, 16

    def peak(doc_count: int, name: str):
        path = write_corpus(tmp_path / name, make_documents(doc_count, seed=doc_count))
        corpus = PackedCorpus([path], tokenizer, max_seq_length=length, batch_size=4, shuffle_window=window)
        gc.collect()
        tracemalloc.start()
        tokens = 0
        for batch, _ in corpus.batches(num_epochs=1):
            tokens += int(batch["attention_mask"].sum())
        _, high = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return high, tokens, corpus.max_buffered

    small_peak, small_tokens, _ = peak(100, "small.txt")
    big_peak, big_tokens, buffered = peak(800, "big.txt")
    assert big_tokens > 50 * window * length  # the corpus is far larger than the shuffle buffer
    assert buffered <= window
    # 8x the corpus, the same peak (give or take allocator noise)
    assert big_peak < 1.5 * small_peak + 64 * 1024, (small_peak, big_peak)
    # and far below what holding the token ids would take (8 bytes each as int64, more as lists)
    assert big_peak < big_tokens * 8


# --------------------------------------------------------------------------- bad input

def test_no_corpus_files(tokenizer, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        PackedCorpus([str(tmp_path / "nope.txt")], tokenizer)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(UserError, match="holds no files"):
        PackedCorpus([str(tmp_path / "empty_dir")], tokenizer)
    with pytest.raises(UserError, match="no corpus given"):
        PackedCorpus([], tokenizer)


def test_empty_corpus(tokenizer, tmp_path):
    (tmp_path / "a.txt").write_text("", encoding="utf-8")
    (tmp_path / "b.txt").write_text("\n   \n\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"holds no text") as err:
        PackedCorpus([str(tmp_path)], tokenizer)
    assert "\n" not in str(err.value) and "a.txt" in str(err.value)


def test_corpus_smaller_than_one_batch(tokenizer, tmp_path):
    path = write_corpus(tmp_path / "tiny.txt", [["d1 the"], ["d2 cat"]])
    corpus = PackedCorpus([path], tokenizer, max_seq_length=16, batch_size=2, world_size=2, rank=1)
    with pytest.raises(UserError, match="fewer sequences than one batch"):
        all_batches(corpus)
    with pytest.raises(UserError, match="fewer sequences than one batch"):
        corpus.require_one_batch()


@pytest.mark.parametrize("content, line, what", [
    (b"d1 the cat\nd2 \x00\x01\x02 mat\n", 2, "NUL byte"),
    (b"d1 the cat\n\nd2 caf\xe9\n", 3, "not UTF-8"),
])
def test_binary_or_non_utf8_file_named_with_line(tokenizer, tmp_path, content, line, what):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    (tmp_path / "good.txt").write_text("d3 the\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"bad\.txt:{line}: .*{what}") as err:
        PackedCorpus([str(tmp_path)], tokenizer)
    assert "\n" not in str(err.value)


def test_binary_gzip_and_corrupt_gzip(tokenizer, tmp_path):
    with gzip.open(tmp_path / "bin.gz", "wb") as handle:
        handle.write(bytes(range(256)) * 4)
    with pytest.raises(UserError, match=r"bin\.gz:1: NUL byte"):
        PackedCorpus([str(tmp_path / "bin.gz")], tokenizer)
    (tmp_path / "fake.gz").write_bytes(b"plain text, not gzip\n")
    with pytest.raises(UserError, match=r"fake\.gz is not a valid gzip file"):
        PackedCorpus([str(tmp_path / "fake.gz")], tokenizer)


def test_line_longer_than_the_limit(tokenizer, tmp_path):
    assert MAX_LINE_CHARS == 1_000_000
    path = tmp_path / "long.txt"
    path.write_text("d1 the cat\n" + "d2 " * 50 + "\nd3\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"long\.txt:2: line longer than 100 characters"):  # at start: the sample
        all_batches(PackedCorpus([str(path)], tokenizer, max_seq_length=16, batch_size=1, max_line_chars=100))
    # the default limit, on a real megabyte-long line without newline
    (tmp_path / "huge.txt").write_text("d1 the cat\n" + "x" * (MAX_LINE_CHARS + 10), encoding="utf-8")
    with pytest.raises(UserError, match=r"huge\.txt:2: line longer than 1,000,000 characters"):
        all_batches(PackedCorpus([str(tmp_path / "huge.txt")], tokenizer, batch_size=1))


def test_long_line_limit_is_exported():
    assert corpus_mod.MAX_LINE_CHARS == MAX_LINE_CHARS


# --------------------------------------------------------------------------- degenerate corpora

def test_the_corpus_sample_counts_tokens_and_unknowns_like_an_independent_tokenization(tokenizer, tmp_path):
    """Numbers from packing, against a count of the tokenizer's own output per document."""
    from tinybert.data.corpus import require_real_tokens

    docs = [["d1 the cat sat", "on the mat zebra"], ["d2 the qqq xyz", "mats ."], ["d3 unable"]]
    path = write_corpus(tmp_path / "mixed.txt", docs)
    corpus = PackedCorpus([path], tokenizer, max_seq_length=64, batch_size=1, shuffle=False)
    pieces = [sum((tokenizer.tokenize(line) for line in lines), []) for lines in docs]  # one sequence per document
    found = require_real_tokens(corpus)
    assert found["sequences"] == 3
    assert found["tokens_per_sequence"] == pytest.approx(np.mean([len(p) for p in pieces]))
    assert found["unk_share"] == pytest.approx(sum(p.count("[UNK]") for p in pieces) / sum(len(p) for p in pieces))
    # only the sample is read: the first two sequences say nothing of the third
    assert require_real_tokens(corpus, sample=2)["sequences"] == 2


@pytest.mark.parametrize("text, fragment", [
    ("x" * 200_000 + "\n", "1 packed sequence(s) hold 1.0 token(s) each besides [CLS] and [SEP], 100% of them [UNK]"),
    ("qqq zzz www d1\nvvv d2 uuu yyy\n", "hold 8.0 token(s) each besides [CLS] and [SEP], 75% of them [UNK]; the teacher's"),
    ("".join(f"d{i}\n\n" for i in range(300)), "first 256 packed sequence(s) hold 1.0 token(s) each besides [CLS] and [SEP], "
                                              "0% of them [UNK]; its documents are too short"),
])
def test_a_degenerate_corpus_is_refused_with_what_was_found(tokenizer, tmp_path, text, fragment):
    from tinybert.data.corpus import require_real_tokens

    (tmp_path / "bad.txt").write_text(text, encoding="utf-8")
    corpus = PackedCorpus([str(tmp_path / "bad.txt")], tokenizer, max_seq_length=128, batch_size=1, shuffle=False)
    with pytest.raises(UserError) as err:
        require_real_tokens(corpus)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_the_test_corpora_pass_the_sample_check(tokenizer, small_corpus):
    from tinybert.data.corpus import MIN_TOKENS_PER_SEQUENCE, require_real_tokens

    found = require_real_tokens(PackedCorpus([small_corpus[0]], tokenizer, max_seq_length=16, batch_size=4))
    assert found["unk_share"] == 0 and found["tokens_per_sequence"] > MIN_TOKENS_PER_SEQUENCE


def test_the_corpus_tokenizes_with_the_fast_tokenizer_and_gets_paddlenlps_ids(tokenizer, tmp_path, monkeypatch):
    """The compiled tokenizer serves the corpus only after it agreed on the sample; the packed
    stream is the same with it as with PaddleNLP's tokenizer alone."""
    path = tmp_path / "mixed.txt"
    path.write_text("The cat SAT, on the mat!\nnaïve café 中 the\n\nd2 [SEP] the\tcat\n" * 30, encoding="utf-8")
    fast = PackedCorpus([str(path)], tokenizer, max_seq_length=16, batch_size=2, shuffle=False)
    assert fast.encode.__self__._encode.__name__ == "<lambda>"  # the fast path was chosen
    monkeypatch.setenv("TINYBERT_FAST_TOKENIZER", "0")
    slow = PackedCorpus([str(path)], tokenizer, max_seq_length=16, batch_size=2, shuffle=False)
    assert slow.encode.__self__._encode.__name__ == "reference"
    assert [b.tolist() for _, b in fast.sequences()] == [b.tolist() for _, b in slow.sequences()]
