"""The token store and the fast tokenizer: same ids as PaddleNLP's BertTokenizer, built once,
reused, rebuilt on any change of what determines it, never trained on when damaged."""
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tiny
from paddlenlp.transformers import BertTokenizer

from tinybert.data import parallel
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


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_half_written_store_is_never_seen_and_its_leftovers_go(task, monkeypatch, workers):
    tmp_path, path = task
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    monkeypatch.setattr(store_mod, "CHUNK_ROWS", 64)
    monkeypatch.setenv("TINYBERT_STORE_WORKERS", workers)
    real = store_mod._pieces

    def dies_on_the_third_piece(*args):
        for number, piece in enumerate(real(*args), start=1):
            if number == 3:
                raise KeyboardInterrupt  # Ctrl-C while the workers encode the first pieces
            yield piece

    monkeypatch.setattr(store_mod, "_pieces", dies_on_the_third_piece)
    with pytest.raises(KeyboardInterrupt):
        open_store(tmp_path, path, tokenizer)
    assert os.listdir(tmp_path / "cache") == []  # neither a final name nor a temporary is left
    assert multiprocessing.active_children() == []  # nor a worker process
    monkeypatch.setattr(store_mod, "_pieces", real)
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


# ----------------------------------------------------------------------- building in worker processes
@pytest.fixture()
def many_seams(monkeypatch):
    """Chunks of 64 rows in pieces of 16, samples of 20 rows (7 in later chunks) encoded by PaddleNLP in
    jobs of 5: every seam a parallel build has, on a small file. Returns the pools the builds made."""
    for name, value in {"CHUNK_ROWS": 64, "PIECE_ROWS": 16, "CHECK_ROWS": 20, "LATER_CHECK_ROWS": 7,
                        "CHECK_PIECE_ROWS": 5}.items():
        monkeypatch.setattr(store_mod, name, value)
    pools, real = [], parallel.pool

    def recorded(function, count):
        pools.append(real(function, count))
        return pools[-1]

    monkeypatch.setattr(parallel, "pool", recorded)
    return pools


def write_pairs(path, rows, marked=(), bad_line=None):
    """An MRPC train.tsv of ``rows`` examples; the examples numbered in ``marked`` (from 1) hold the
    word "zzz", and line ``bad_line`` (the header is line 1) has too few columns."""
    rng = random.Random(0)
    lines = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    for number in range(1, rows + 1):
        label = rng.randint(0, 1)
        first = tiny.sentence(rng, label) + (" zzz" if number in marked else "")
        lines.append(f"{label}\t{number}\t{number}\t{first}\t{rng.choice(HOSTILE[:6])} {tiny.sentence(rng, label)}")
    if bad_line:
        lines.insert(bad_line - 1, "1\tonly three columns")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def test_a_store_built_by_worker_processes_is_byte_for_byte_the_one_built_here(task, many_seams, monkeypatch):
    tmp_path, _ = task
    path = write_pairs(str(tmp_path / "train.tsv"), 300)
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    stores = {}
    for workers in ("0", "2"):
        monkeypatch.setenv("TINYBERT_STORE_WORKERS", workers)
        stores[workers] = open_store(tmp_path, path, tokenizer, cache=f"cache{workers}")
    assert [type(pool) for pool in many_seams] == [parallel.InProcess, parallel.Workers]
    here, there = stores["0"], stores["2"]
    for name in store_mod.ARRAYS:
        with open(os.path.join(here.directory, f"{name}.bin"), "rb") as a, \
                open(os.path.join(there.directory, f"{name}.bin"), "rb") as b:
            assert a.read() == b.read(), name
    assert {**here.meta, "seconds": 0} == {**there.meta, "seconds": 0}
    assert here.meta["tokenizer_used"] == "fast" and here.meta["checked_rows"] > 20 + 4 * 7  # and the accented rows
    expected = featurize(read_examples(path, get_task("MRPC")).examples, tokenizer, 32, False)
    assert there.fingerprint() == expected.fingerprint()
    assert multiprocessing.active_children() == []


def wrong_on_zzz(monkeypatch):
    real = FastWordPiece.tokenize
    monkeypatch.setattr(FastWordPiece, "tokenize", lambda self, texts: [
        ids + [5] if "zzz" in text else ids for ids, text in zip(real(self, texts), texts)])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_difference_in_a_later_chunk_is_named_and_falls_back_whoever_encodes(task, many_seams, monkeypatch,
                                                                                capsys, workers):
    tmp_path, _ = task
    monkeypatch.setattr(store_mod, "LATER_CHECK_ROWS", 64)  # every row of the later chunks is compared
    path = write_pairs(str(tmp_path / "train.tsv"), 300, marked=(140, 200))
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    wrong_on_zzz(monkeypatch)
    monkeypatch.setenv("TINYBERT_STORE_WORKERS", workers)
    stored = open_store(tmp_path, path, tokenizer)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "differs" in line]
    assert warnings == [f"warning: {path}: the fast tokenizer differs from PaddleNLP's on example 140; "
                        f"featurizing the whole file with PaddleNLP's tokenizer (slower)"]
    expected = featurize(read_examples(path, get_task("MRPC")).examples, tokenizer, 32, False)
    assert stored.meta["tokenizer_used"] == "paddlenlp" and stored.fingerprint() == expected.fingerprint()
    assert isinstance(many_seams[0], parallel.Workers if workers == "2" else parallel.InProcess)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_bad_row_is_one_line_after_an_earlier_difference_whoever_encodes(task, many_seams, monkeypatch, capsys,
                                                                           workers):
    """As when read chunk by chunk: the difference in chunk 3 is named (and PaddleNLP's build begun)
    although the workers were already past the bad row of chunk 4 when it was found."""
    tmp_path, _ = task
    monkeypatch.setattr(store_mod, "LATER_CHECK_ROWS", 64)
    path = write_pairs(str(tmp_path / "train.tsv"), 300, marked=(140,), bad_line=205)
    tokenizer = BertTokenizer.from_pretrained(str(tmp_path / "model"))
    wrong_on_zzz(monkeypatch)
    monkeypatch.setenv("TINYBERT_STORE_WORKERS", workers)
    with pytest.raises(UserError, match=f"^{path}:205: row has 2 tab-separated column"):
        open_store(tmp_path, path, tokenizer)
    assert "differs from PaddleNLP's on example 140;" in capsys.readouterr().err
    assert os.listdir(tmp_path / "cache") == [] and multiprocessing.active_children() == []
    assert len(many_seams) == 2  # the fast build, then PaddleNLP's


ORPHAN = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from tinybert.data import parallel
pool = parallel.pool(lambda seconds: time.sleep(seconds), 2)
for _ in range(4):
    pool.submit(0.2)
print(" ".join(str(p.pid) for p in pool.processes), flush=True)
time.sleep(60)
"""


def test_workers_stop_by_themselves_when_their_parent_is_killed_outright(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN, os.path.dirname(os.path.dirname(store_mod.__file__))],
                              stdout=subprocess.PIPE, text=True)
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    parent.send_signal(signal.SIGKILL)  # no finally runs
    parent.wait()

    def running(pid):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.time() + 5
    while any(map(running, workers)) and time.time() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if running(pid)]
    for pid in left:  # leave no orphan behind even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert len(workers) == 2 and not left
