"""The token store and the fast tokenizer: same ids as PaddleNLP's BertTokenizer, built once,
reused, rebuilt on any change of what determines it, never trained on when damaged."""
import os
import random

import numpy as np
import pytest
import tiny
from paddlenlp.transformers import BertTokenizer

from tinybert.data import store as store_mod
from tinybert.data.fast_tokenizer import FastWordPiece, paddlenlp_encode
from tinybert.data.features import featurize
from tinybert.data.glue import read_examples
from tinybert.data.tasks import get_task
from tinybert.errors import UserError

EXTRA = ["中", "国", "人", "的", "cafe", "naive", "resume", "##e", "e", "a", "b", "c", "x"]
HOSTILE = ["The movie was GOOD.", "Café naïve résumé", "中国人 good 的", "bad\x00\x07film\u200b fine", "a" * 150 + " good",
           "unbelievable", "", "   ", "good\tbad\r\n", "Ünbelievable!!", "ﬁne", "quite good " * 40, "[SEP] a [CLS]",
           "x\u3000y", "Ｆｕｌｌ width", "tab\x0bvertical\x0cfeed", "über-cool (really)", "😀 emoji", "\ufeffbom"]


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    directory = tmp_path_factory.mktemp("vocab")
    path = tiny.write_vocab(str(directory))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(EXTRA) + "\n")
    return path


@pytest.mark.parametrize("kind", ["bert", "bert-cased", "ernie"])
@pytest.mark.parametrize("max_length", [3, 5, 9, 16, 128])
def test_the_fast_tokenizer_gives_paddlenlps_ids_on_hostile_text(vocab, kind, max_length):
    from paddlenlp.transformers import ErnieTokenizer

    tokenizer = ErnieTokenizer(vocab) if kind == "ernie" else BertTokenizer(vocab, do_lower_case=kind == "bert")
    fast = FastWordPiece(tokenizer, max_length)
    rng = random.Random(max_length)
    seconds = [rng.choice(HOSTILE + ["", "a good plot " * rng.randint(0, 30)]) for _ in HOSTILE]
    for second in (None, seconds):
        assert fast.encode(HOSTILE, second).rows() == paddlenlp_encode(tokenizer, HOSTILE, second, max_length).rows()


def test_pair_truncation_matches_paddlenlp_for_every_length_combination(vocab):
    """Longest-first truncation in closed form against PaddleNLP's token-by-token loop."""
    tokenizer = BertTokenizer(vocab, do_lower_case=True)
    first = [" ".join(["good"] * a) for a in range(0, 14) for b in range(0, 14)]
    second = [" ".join(["bad"] * b) for a in range(0, 14) for b in range(0, 14)]
    for max_length in (4, 7, 12, 20):
        fast = FastWordPiece(tokenizer, max_length)
        assert fast.encode(first, second).rows() == paddlenlp_encode(tokenizer, first, second, max_length).rows()


@pytest.fixture()
def task(tmp_path):
    glue = tmp_path / "glue"
    tiny.write_task(str(glue), "MRPC", n_train=300, n_dev=10)
    tiny.make_bert(str(tmp_path / "model"))
    return tmp_path, str(glue / "MRPC" / "train.tsv")


def open_store(tmp_path, path, tokenizer, max_seq_length=32, may_build=True, cache="cache"):
    return store_mod.open_store(str(tmp_path / cache), path, get_task("MRPC"), "train", tokenizer, max_seq_length,
                                False, may_build, progress=False)


def test_a_store_holds_what_in_memory_featurization_gives(task, monkeypatch):
    tmp_path, path = task
    monkeypatch.setattr(store_mod, "CHUNK_ROWS", 64)  # several chunks, so the chunk seams are exercised
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    stored = open_store(tmp_path, path, tokenizer)
    expected = featurize(read_examples(path, get_task("MRPC")).examples, tokenizer, 32, False)
    assert len(stored) == len(expected) == 300
    for i in range(len(expected)):
        ids, types = stored.example(i)
        assert ids.tolist() == expected.input_ids[i] and types.tolist() == expected.token_type_ids[i]
    np.testing.assert_array_equal(stored.labels, expected.labels)
    np.testing.assert_array_equal(stored.lengths, expected.lengths)
    assert stored.fingerprint() == expected.fingerprint()  # a resume sees the same data either way
    assert stored.meta["tokenizer_used"] == "fast" and stored.ids.dtype == np.uint16


def test_a_store_is_reused_and_rebuilt_when_what_determines_it_changes(task):
    tmp_path, path = task
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    first = open_store(tmp_path, path, tokenizer)
    again = open_store(tmp_path, path, tokenizer)
    assert again.directory == first.directory and again.meta["seconds"] == first.meta["seconds"]
    others = {open_store(tmp_path, path, tokenizer, max_seq_length=16).directory,
              open_store(tmp_path, path, BertTokenizer(str(tmp_path / "model" / "vocab.txt"), do_lower_case=False)).directory}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("1\t9\t9\tgood film\tgood movie\n")
    changed = open_store(tmp_path, path, tokenizer)
    assert len(changed) == 301 and first.directory not in others | {changed.directory} and len(others) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_a_damaged_store_is_rebuilt_never_used(task, capsys, damage):
    tmp_path, path = task
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    good = open_store(tmp_path, path, tokenizer)
    reference = [good.example(i)[0].tolist() for i in range(len(good))]
    target = os.path.join(good.directory, "meta.json" if damage == "meta" else "ids.bin")
    del good
    with open(target, "r+b") as handle:
        if damage == "truncate":
            handle.truncate(os.path.getsize(target) - 2)
        elif damage == "flip":
            handle.seek(10)
            byte = handle.read(1)
            handle.seek(10)
            handle.write(bytes([byte[0] ^ 0xFF]))
        else:
            handle.write(b"{not json")
    with pytest.raises(UserError, match="damaged"):
        open_store(tmp_path, path, tokenizer, may_build=False)  # a rank that may not build refuses it
    rebuilt = open_store(tmp_path, path, tokenizer)
    assert "rebuilding" in capsys.readouterr().err
    assert [rebuilt.example(i)[0].tolist() for i in range(len(rebuilt))] == reference


def test_a_half_written_store_is_never_seen_and_its_leftovers_go(task, monkeypatch):
    tmp_path, path = task
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    monkeypatch.setattr(store_mod, "CHUNK_ROWS", 64)
    calls = {"n": 0}
    real = store_mod._Encoder.__call__

    def dies_on_the_third_chunk(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, *args)

    monkeypatch.setattr(store_mod._Encoder, "__call__", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        open_store(tmp_path, path, tokenizer)
    assert os.listdir(tmp_path / "cache") == []  # neither a final name nor a temporary is left
    monkeypatch.setattr(store_mod._Encoder, "__call__", real)
    assert len(open_store(tmp_path, path, tokenizer)) == 300


def test_a_fast_tokenizer_that_disagrees_is_replaced_by_paddlenlps_for_the_whole_file(task, monkeypatch, capsys):
    tmp_path, path = task
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    real = FastWordPiece.tokenize

    def wrong_on_one_text(self, texts):
        out = real(self, texts)
        return [ids + [5] if "good" in text and len(text) % 7 == 0 else ids for ids, text in zip(out, texts)]

    monkeypatch.setattr(FastWordPiece, "tokenize", wrong_on_one_text)
    stored = open_store(tmp_path, path, tokenizer)
    assert "differs from PaddleNLP's on example" in capsys.readouterr().err
    expected = featurize(read_examples(path, get_task("MRPC")).examples, tokenizer, 32, False)
    assert stored.meta["tokenizer_used"] == "paddlenlp" and stored.fingerprint() == expected.fingerprint()


def test_a_cache_dir_that_cannot_be_written_is_one_line(task):
    tmp_path, path = task
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="cannot write the token store .*--cache_dir"):
        open_store(tmp_path, path, tokenizer, cache="afile/cache")
