"""Data augmentation (docs/math.md#data-augmentation): candidate rules, GloVe, the file written,
determinism, errors."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tiny
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data_augmentation
from tinybert.augmentation import augment
from tinybert.augmentation.augment import (
    CandidateFinder,
    GloveNeighbours,
    MaskedLM,
    candidate_positions,
    is_candidate,
    sample_variants,
    split_words,
    top_k_rows,
)
from tinybert.augmentation.glove import cache_paths, load_glove
from tinybert.data.glue import read_examples
from tinybert.data.tasks import get_task
from tinybert.errors import UserError
from tinybert.models.loading import load_masked_lm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("augment-assets")
    return {
        "mlm": tiny.make_bert_mlm(str(base / "mlm")),
        "classifier": tiny.make_bert(str(base / "classifier")),
        "glove": tiny.write_glove(str(base / "glove.txt")),
    }


@pytest.fixture(scope="module")
def masked_lm(assets):
    return MaskedLM(*load_masked_lm(assets["mlm"]))


def run_cli(glue_dir, task, assets, *extra, model=None):
    """Run data_augmentation.py in-process; return the path of train_aug.tsv."""
    data_augmentation.main([
        "--pretrained_bert_model", model or assets["mlm"], "--glove_embs", assets["glove"],
        "--glue_dir", str(glue_dir), "--task_name", task, "--device", "cpu", "--N", "4", *extra,
    ])
    return os.path.join(str(glue_dir), get_task(task).name, "train_aug.tsv")


def read_lines(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().split("\n")[:-1]


def split_originals(aug_lines, train_lines):
    """[(original line, [its variant lines])] in file order; every original must appear, in order."""
    groups, current, originals = [], None, list(train_lines)
    position = 0
    for line in aug_lines:
        if position < len(originals) and line == originals[position]:
            current = (line, [])
            groups.append(current)
            position += 1
        else:
            current[1].append(line)
    assert position == len(originals), "every original appears, in order"
    return groups


def data_lines(path, spec):
    lines = [l for l in read_lines(path) if l.strip()]
    return lines[1:] if spec.has_header else lines


# --- candidate words -------------------------------------------------------------------------

def test_candidate_words_are_alphabetic_and_not_stop_words():
    assert is_candidate("movie") and is_candidate("Movie")
    for word in ["the", "The", "was", "don", "t", "42", "good!", "co-op", "'", "", "x2", "\u00b2"]:
        assert not is_candidate(word), word


@pytest.mark.parametrize("word", ["naïve", "Müller", "Straße", "фильм", "película", "映画"])
def test_letters_of_any_script_make_a_candidate_word(word):
    assert is_candidate(word)


def test_a_cased_non_ascii_word_is_split_kept_and_replaced(tmp_path):
    """A cased vocabulary keeps accents: the word must still be a candidate and find its GloVe
    neighbours (ASCII-only candidates left such text unaugmented)."""
    words = split_words("Der Film war großartig", augment.basic_tokenizer(False))
    assert words == ["Der", "Film", "war", "großartig"]
    assert [words[i] for i in candidate_positions(words)] == ["Der", "Film", "war", "großartig"]
    path = tiny.write_glove(str(tmp_path / "g.txt"), ["großartig", "wunderbar", "schön", "film"])
    finder = CandidateFinder(GloveNeighbours(load_glove(path, progress=False), 2, 4), 2, 4)
    found = finder.find([["großartig"]])[0]
    assert set(found[0]) <= {"wunderbar", "schön", "film"} and len(found[0]) == 2


def test_non_english_text_is_augmented_end_to_end(tmp_path, assets):
    directory = tmp_path / "SST-2"
    directory.mkdir()
    (directory / "train.tsv").write_text("sentence\tlabel\nотличное кино\t1\n", encoding="utf-8")
    glove = tiny.write_glove(str(tmp_path / "ru.txt"), ["отличное", "хорошее", "кино", "фильм", "книга"])
    data_augmentation.main(["--pretrained_bert_model", "none", "--glove_embs", glove,
                            "--glue_dir", str(tmp_path), "--task_name", "SST-2", "--N", "4", "--p", "1", "--M", "2"])
    lines = read_lines(str(directory / "train_aug.tsv"))
    assert lines[:2] == ["sentence\tlabel", "отличное кино\t1"]
    assert len(lines) > 2  # new examples were written
    for line in lines[2:]:
        first, second = line.split("\t")[0].split()
        assert first != "отличное" and second != "кино"


def test_basic_tokenizer_splits_punctuation_and_lower_cases():
    words = split_words("The MOVIE wasn't [MASK]-worthy!", augment.basic_tokenizer(True))
    assert words == ["the", "movie", "wasn", "'", "t", "[", "mask", "]", "-", "worthy", "!"]
    assert [words[i] for i in candidate_positions(words)] == ["movie", "mask", "worthy"]  # "wasn": stop word


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("ab \t\"'“”«»\u00a0\u2028\x00\x85é中-")), max_size=60),
    st.lists(st.sampled_from(["good", "the", "movie", "\t", '"', "'", "", "ü"]), max_size=3000).map(" ".join),
))
def test_word_split_never_crashes_and_candidates_obey_the_rules(text):
    words = split_words(text, augment.basic_tokenizer(True))
    assert all(word and not any(ch.isspace() for ch in word) for word in words)
    for position in candidate_positions(words):
        assert words[position].isalpha()
        assert not augment.is_stop_word(words[position])


# --- masked-LM and GloVe candidates ------------------------------------------------------------

def test_masked_lm_candidates_drop_pieces_special_tokens_and_the_word_itself(masked_lm, assets):
    glove = load_glove(assets["glove"], progress=False)
    everything = len(tiny.VOCAB)  # K = whole vocabulary: only the filter removes anything
    finder = CandidateFinder(GloveNeighbours(glove, everything, 8), everything, 8, masked_lm)
    words = finder.words("the movie was good")
    candidates = finder.find([words])[0]
    assert sorted(candidates) == [1, 3]  # "movie", "good"; "the" and "was" are stop words
    movie = candidates[1]
    assert "movie" not in movie
    assert not [w for w in movie if w.startswith("##") or w in tiny.SPECIAL]
    expected = {t for t in tiny.VOCAB if t not in tiny.SPECIAL and not t.startswith("##") and t != "movie"}
    assert set(movie) == expected


def test_masked_lm_input_is_masked_sentence_then_original(masked_lm):
    query = masked_lm.query(["the", "movie", "was", "good"], 1)
    tokens = masked_lm.tokenizer.convert_ids_to_tokens(list(query.input_ids))
    assert tokens == ["[CLS]", "the", "[MASK]", "was", "good", "[SEP]", "the", "movie", "was", "good", "[SEP]"]
    assert query.token_type_ids == (0,) * 6 + (1,) * 5
    assert tokens[query.position] == "[MASK]"


def test_long_sentence_is_windowed_around_the_masked_word(masked_lm):
    words = ["movie"] * 300 + ["good"] + ["film"] * 299
    query = masked_lm.query(words, 300)
    assert len(query.input_ids) <= masked_lm.max_length
    tokens = masked_lm.tokenizer.convert_ids_to_tokens(list(query.input_ids))
    assert tokens[query.position] == "[MASK]" and "good" in tokens


def test_multi_piece_words_get_their_nearest_glove_words_not_themselves(masked_lm, assets):
    glove = load_glove(assets["glove"], progress=False)
    finder = CandidateFinder(GloveNeighbours(glove, 3, 8), 3, 8, masked_lm)
    assert masked_lm.word_pieces("unbelievable") != masked_lm.word_pieces("un")  # several pieces
    found = finder.find([["unbelievable"]])[0][0]
    row = glove.find("unbelievable")
    scores = glove.vectors @ glove.vectors[row]
    scores[row] = -np.inf
    assert set(found) == {glove.words[i] for i in np.argsort(-scores)[:3]}
    assert "unbelievable" not in found


def test_glove_search_is_limited_to_the_first_v_words(assets):
    glove = load_glove(assets["glove"], limit=10, progress=False)
    assert len(glove) == 10
    neighbours = GloveNeighbours(glove, 15, 4).lookup([glove.words[0], "unbelievable"])
    assert set(neighbours[glove.words[0]]) == set(glove.words[1:10])
    assert neighbours["unbelievable"] == []  # beyond the limit: not in GloVe


def test_glove_zero_vectors_give_no_nan_and_are_nobodys_neighbour(tmp_path):
    path = tiny.write_glove(str(tmp_path / "g.txt"), ["good", "bad", "movie", "void"], zero_words={"void"})
    glove = load_glove(path, progress=False)
    assert np.isfinite(glove.vectors).all()
    neighbours = GloveNeighbours(glove, 5, 4).lookup(["good", "void"])
    assert "void" not in neighbours["good"] and neighbours["void"] == []


def test_glove_cache_is_reused_and_rebuilt_when_the_file_changes(tmp_path):
    path = tiny.write_glove(str(tmp_path / "g.txt"), ["good", "bad", "movie"], seed=1)
    first = load_glove(path, progress=False)
    npy, vocab = cache_paths(path, 100000)
    assert os.path.isfile(npy) and os.path.isfile(vocab)
    np.testing.assert_array_equal(load_glove(path, progress=False).vectors, first.vectors)
    tiny.write_glove(path, ["good", "bad", "movie", "film"], seed=2)
    changed = load_glove(path, progress=False)
    assert changed.words == ["good", "bad", "movie", "film"]
    assert not np.allclose(changed.vectors[:3], first.vectors)


def test_malformed_glove_line_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("good 0.1 0.2\nbad 0.3 oops\n")
    with pytest.raises(UserError, match=r"bad\.txt:2: 'oops' is not a number"):
        load_glove(str(path), progress=False)
    path.write_text("good 0.1 0.2\nbad 0.3\n")
    with pytest.raises(UserError, match=r"bad\.txt:2: expected a word and 2 numbers"):
        load_glove(str(path), progress=False)


def test_near_ties_at_the_cut_are_flagged_for_recomputation():
    scores = np.array([[3.0, 2.0, 2.0 + 1e-7, 0.0], [3.0, 2.0, 1.0, 0.0]], dtype=np.float32)
    ids, _, ambiguous = top_k_rows(scores, 2)
    assert ambiguous.tolist() == [True, False]
    assert ids[1].tolist() == [0, 1]


def test_batched_candidates_equal_those_of_each_query_alone(masked_lm, assets, monkeypatch):
    import random

    rng = random.Random(3)
    glove = load_glove(assets["glove"], progress=False)
    texts = [tiny.sentence(rng, i % 2) + " unbelievable" for i in range(12)]

    def candidates():
        finder = CandidateFinder(GloveNeighbours(glove, 5, 64), 5, 64, masked_lm)
        return finder.find([finder.words(t) for t in texts])

    batched = candidates()
    monkeypatch.setattr(augment, "TIE_TOLERANCE", np.inf)  # every top-K recomputed on its own
    assert candidates() == batched


def test_sampling_replaces_with_probability_p_and_keeps_only_new_versions():
    words = ["the", "movie", "was", "good"]
    candidates = {1: ["film", "story"], 3: ["great"]}
    always = sample_variants(words, candidates, 30, 1.0, np.random.default_rng(0))
    assert sorted(map(tuple, always)) == [("the", "film", "was", "great"), ("the", "story", "was", "great")]
    assert sample_variants(words, candidates, 30, 0.0, np.random.default_rng(0)) == []
    some = sample_variants(words, candidates, 30, 0.4, np.random.default_rng(0))
    assert len(some) == len({tuple(v) for v in some}) and words not in some


# --- the file ---------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["SST-2", "CoLA", "MRPC", "MNLI"])
def test_train_aug_has_the_format_of_train_and_reads_back(tmp_path, assets, task):
    spec = get_task(task)
    directory = tiny.write_task(str(tmp_path), task, n_train=12)
    path = run_cli(tmp_path, task.lower(), assets)
    train_lines = read_lines(os.path.join(directory, "train.tsv"))
    aug_lines = read_lines(path)
    assert aug_lines[0] == train_lines[0]  # the header verbatim; CoLA (no header): the first example
    train = read_examples(os.path.join(directory, "train.tsv"), spec)
    aug = read_examples(path, spec)
    assert len(aug) > len(train)
    groups = split_originals(data_lines(path, spec), data_lines(os.path.join(directory, "train.tsv"), spec))
    for original, variants in groups:
        columns = original.split("\t")
        for variant in variants:
            varied = variant.split("\t")
            assert len(varied) == len(columns)
            changed = [i for i in range(len(columns)) if varied[i] != columns[i]]
            assert changed and set(changed) <= set(spec.text_columns), "only text columns change"
            if spec.is_pair:
                assert len(changed) == 1, "the other column is held at its original text"


def test_p_zero_writes_only_the_originals(tmp_path, assets):
    directory = tiny.write_task(str(tmp_path), "MRPC", n_train=10)
    path = run_cli(tmp_path, "MRPC", assets, "--p", "0")
    assert read_lines(path) == read_lines(os.path.join(directory, "train.tsv"))


def test_same_seed_same_file_whatever_the_batch_size(tmp_path, assets, monkeypatch):
    tiny.write_task(str(tmp_path), "MRPC", n_train=20)
    path = run_cli(tmp_path, "MRPC", assets, "--batch_size", "64", "--N", "6")
    reference = read_lines(path)
    monkeypatch.setattr(augment, "EXAMPLES_PER_SEARCH", 7)
    for batch_size in ("1", "5"):
        assert read_lines(run_cli(tmp_path, "MRPC", assets, "--batch_size", batch_size, "--N", "6")) == reference
    other_seed = read_lines(run_cli(tmp_path, "MRPC", assets, "--seed", "7", "--N", "6"))
    assert other_seed != reference and other_seed[0] == reference[0]


def test_a_600_word_sentence_is_augmented(tmp_path, assets):
    directory = tmp_path / "SST-2"
    directory.mkdir()
    words = " ".join((["movie", "unbelievable", "good", "the", "plot"] * 120)[:600])
    (directory / "train.tsv").write_text(f"sentence\tlabel\n{words}\t1\nnice film\t0\n")
    path = run_cli(tmp_path, "SST-2", assets)
    aug = read_examples(path, get_task("SST-2"))
    assert aug.examples[0].texts[0] == words
    assert any(len(e.texts[0].split()) == 600 and e.texts[0] != words for e in aug.examples[1:])


def test_none_model_uses_glove_for_every_word(tmp_path, assets):
    directory = tmp_path / "SST-2"
    directory.mkdir()
    (directory / "train.tsv").write_text("sentence\tlabel\nthe movie\t1\n")
    path = run_cli(tmp_path, "SST-2", assets, "--M", "2", "--p", "1", model="none")
    glove = load_glove(assets["glove"], progress=False)
    scores = glove.vectors @ glove.vectors[glove.find("movie")]
    scores[glove.find("movie")] = -np.inf
    nearest = {glove.words[i] for i in np.argsort(-scores)[:2]}
    variants = [line.split("\t")[0] for line in read_lines(path)[2:]]
    assert {v.split()[1] for v in variants} == nearest


def test_checkpoint_without_masked_lm_head_is_refused(assets):
    with pytest.raises(UserError, match="no masked-LM head"):
        load_masked_lm(assets["classifier"])


def test_default_n_is_the_tables_task_entry_else_its_default(tmp_path):
    config = tmp_path / "glue.json"
    config.write_text('{"defaults": {"augment_n": 99}, "tasks": {"QQP": {"augment_n": 3}}}')
    assert augment.default_n(get_task("QQP"), str(config)) == 3
    assert augment.default_n(get_task("RTE"), str(config)) == 99


def test_default_n_without_a_usable_table_is_a_user_error_not_a_hidden_copy(tmp_path):
    with pytest.raises(UserError, match="not found"):
        augment.default_n(get_task("QQP"), str(tmp_path / "missing.json"))
    config = tmp_path / "glue.json"
    config.write_text('{"defaults": {}, "tasks": {}}')
    with pytest.raises(UserError, match="--N"):
        augment.default_n(get_task("QQP"), str(config))


def test_the_command_uses_the_tables_n(tmp_path, assets, capsys):
    from tinybert.data.hparams import task_hparams

    tiny.write_task(str(tmp_path), "RTE", n_train=3)
    data_augmentation.main(["--pretrained_bert_model", "none", "--glove_embs", assets["glove"],
                            "--glue_dir", str(tmp_path), "--task_name", "rte", "--p", "0"])
    assert f"N={task_hparams('RTE')['augment_n']}," in capsys.readouterr().out


# --- the command's user errors: one line, exit status 2 ----------------------------------------

def run_script(*args, cwd):
    return subprocess.run([sys.executable, os.path.join(ROOT, "data_augmentation.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("content, expected", [
    (None, "glove.txt: no such file"),
    ("good 0.1 0.2\nbad 0.3 x\n", "glove.txt:2: 'x' is not a number"),
])
def test_missing_or_malformed_glove_is_a_one_line_error(tmp_path, content, expected):
    tiny.write_task(str(tmp_path), "SST-2", n_train=4)
    if content is not None:
        (tmp_path / "glove.txt").write_text(content)
    result = run_script("--pretrained_bert_model", "none", "--glove_embs", "glove.txt", "--glue_dir", ".",
                        "--task_name", "SST-2", cwd=str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last
