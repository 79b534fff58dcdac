"""Chinese data augmentation (docs/math.md#chinese-text): CJK candidates and replacements, the
Chinese stop words, segmented text, spacing, and running without --glove_embs."""
import os

import pytest
import tiny

import data_augmentation
from tinybert.augmentation import augment
from tinybert.augmentation.augment import (
    CandidateFinder,
    GloveNeighbours,
    MaskedLM,
    Sampling,
    augment_texts,
    is_candidate,
    is_cjk_replacement,
)
from tinybert.augmentation.chinese import (
    cjk_pieces,
    is_cjk_word,
    join_words,
    separators,
)
from tinybert.augmentation.glove import load_glove
from tinybert.augmentation.stopwords import ENGLISH_STOP_WORDS, is_stop_word
from tinybert.augmentation.stopwords_zh import CHINESE_STOP_WORDS
from tinybert.data.glue import read_examples
from tinybert.data.tasks import get_task
from tinybert.models.loading import load_masked_lm

CONTENT = list("电影真好看书故事演员猫狗跑快慢美精彩喜欢部")
STOP = list("的了是在这我不也都很无")
OTHER = ["，", "。", "！", "ok", "good", "##影", "##看", "１", "2"]  # never a CJK word's replacement
VOCAB = tiny.SPECIAL + CONTENT + STOP + OTHER
ADMISSIBLE = set(CONTENT)  # the CJK tokens that are not stop words


def make_chinese_mlm(directory):
    """A random tiny BERT with its MLM head over a vocabulary of real Chinese characters."""
    import paddle
    from paddlenlp.transformers import BertConfig, BertForMaskedLM, BertTokenizer

    paddle.seed(0)
    os.makedirs(directory, exist_ok=True)
    vocab = os.path.join(directory, "vocab.txt")
    with open(vocab, "w", encoding="utf-8") as handle:
        handle.write("\n".join(VOCAB) + "\n")
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, type_vocab_size=2)
    BertForMaskedLM(config).save_pretrained(directory)
    BertTokenizer(vocab, do_lower_case=True).save_pretrained(directory)
    return directory


GLOVE_WORDS = ["电影", "影片", "书籍", "好看", "精彩", "漂亮", "故事", "，", "的", "我们", "ok", "123", "电"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    base = tmp_path_factory.mktemp("augment-zh")
    return {"mlm": make_chinese_mlm(str(base / "mlm")),
            "vectors": tiny.write_glove(str(base / "zh-vectors.txt"), GLOVE_WORDS, seed=3)}


@pytest.fixture(scope="module")
def masked_lm(assets):
    return MaskedLM(*load_masked_lm(assets["mlm"]))


def write_sst2(tmp_path, sentences):
    directory = tmp_path / "SST-2"
    directory.mkdir()
    rows = "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(sentences))
    (directory / "train.tsv").write_text("sentence\tlabel\n" + rows, encoding="utf-8")
    return directory


def augment_cli(tmp_path, assets, *extra):
    data_augmentation.main(["--pretrained_bert_model", assets["mlm"], "--glue_dir", str(tmp_path),
                            "--task_name", "SST-2", "--device", "cpu", "--N", "8", "--p", "1", "--M", "4", *extra])
    path = tmp_path / "SST-2" / "train_aug.tsv"
    return path.read_text(encoding="utf-8").split("\n")[:-1]


# --- candidate words and stop words ---------------------------------------------------------------

def test_cjk_ideographs_are_candidates_punctuation_digits_and_stop_words_are_not():
    for word in ["电", "影", "电影", "好看"]:
        assert is_candidate(word) and is_cjk_word(word), word
    for word in ["，", "。", "！", "？", "、", "「", "」", "（", "）", "：", "１２３", "２", "〇", "…"]:
        assert not is_candidate(word), word  # full-width punctuation and digits are not letters
    for word in ["的", "了", "是", "在", "我们", "没有", "不"]:
        assert is_stop_word(word) and not is_candidate(word), word
    for word in ["ok", "看ok", "々", "ー", "##影", "[UNK]"]:
        assert not is_cjk_replacement(word), word  # not (only) CJK ideographs


def test_the_chinese_list_holds_only_cjk_words_and_shares_nothing_with_the_english_one():
    assert 100 <= len(CHINESE_STOP_WORDS) <= 250
    assert all(is_cjk_word(word) for word in CHINESE_STOP_WORDS)  # no typo, stray Latin or punctuation
    assert not CHINESE_STOP_WORDS & ENGLISH_STOP_WORDS
    assert is_stop_word("The") and is_stop_word("的")


# --- masked-LM candidates of CJK words ----------------------------------------------------------

def test_a_cjk_characters_predictions_are_cjk_characters_never_stop_words_punctuation_or_pieces(masked_lm):
    """K = the whole vocabulary: exactly the admissible tokens remain (the filter, nothing else)."""
    finder = CandidateFinder(None, len(VOCAB), 8, masked_lm)
    words = finder.words("这部电影真好看！")
    assert words == list("这部电影真好看") + ["！"]
    found = finder.find([words])[0]
    assert sorted(found) == [1, 2, 3, 4, 5, 6]  # 这 is a stop word, ！ not a letter
    assert set(found[2]) == ADMISSIBLE - {"电"}


def test_k_cjk_candidates_are_chosen_among_admissible_predictions_not_cut_down_after(masked_lm):
    """A random model ranks ，。! and stop words anywhere; the K kept must still be K."""
    finder = CandidateFinder(None, 3, 8, masked_lm)
    for position, candidates in finder.find([list("这部电影真好看")])[0].items():
        assert len(candidates) == 3 and set(candidates) <= ADMISSIBLE, position


def test_an_english_word_in_the_same_vocabulary_keeps_the_papers_filter(masked_lm):
    finder = CandidateFinder(None, len(VOCAB), 8, masked_lm)
    found = finder.find([["good", "电"]])[0]
    assert {"ok", "，", "的"} <= set(found[0])  # unchanged for English: only pieces and specials go
    assert not {"##影", "[UNK]", "good"} & set(found[0])


def test_a_segmented_word_reaches_the_masked_lm_as_its_characters(masked_lm):
    assert cjk_pieces("电影") == ["电", "影"] and cjk_pieces("看ok") == ["看", "ok"] and cjk_pieces("ok") == ["ok"]
    query = masked_lm.query(["这部", "电影", "真", "好看"], 2)
    tokens = masked_lm.tokenizer.convert_ids_to_tokens(list(query.input_ids))
    assert tokens[:8] == ["[CLS]", "这", "部", "电", "影", "[MASK]", "好", "看"]  # not [UNK], not ##影
    assert not masked_lm.predictable("电影")  # several pieces: GloVe's, or unchanged


# --- spacing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, joined", [
    ("这部电影很好看！", "这部电影很好看！"),
    ("我用iPhone拍，很好看", "我用iphone拍，很好看"),
    ("这部 电影 真 好看 ！", "这部 电影 真 好看 ！"),  # glued inside a chunk, spaces between chunks
    ("what does 你好 mean?", "what does 你好 mean ?"),
    ("The MOVIE wasn't good", "the movie wasn ' t good"),  # no CJK: spaces everywhere, as before
])
def test_variants_keep_the_originals_spacing_around_cjk_text(text, joined):
    tokenizer = augment.basic_tokenizer(True)
    words = tokenizer.tokenize(text)
    assert join_words(words, separators(text, words, tokenizer.tokenize)) == joined
    assert separators("good movie", ["good", "movie"], tokenizer.tokenize) is None


# --- whole files ----------------------------------------------------------------------------------

def replaced(original_chars, variant_chars):
    assert len(variant_chars) == len(original_chars)
    return [(o, v) for o, v in zip(original_chars, variant_chars) if o != v]


def test_chinese_sst2_without_vectors_replaces_only_content_characters_by_cjk_ones(tmp_path, assets, capsys):
    sentences = ["这部电影真好看！", "我不喜欢这个故事。", "猫在跑，狗也在跑"]
    write_sst2(tmp_path, sentences)
    lines = augment_cli(tmp_path, assets)  # no --glove_embs: nothing fails
    assert "note:" not in capsys.readouterr().out  # every CJK character is one piece: none lacked a source
    examples = read_examples(str(tmp_path / "SST-2" / "train_aug.tsv"), get_task("SST-2")).examples
    assert len(examples) == len(lines) - 1 > len(sentences)
    by_original, current = {}, None
    for line in lines[1:]:
        text, label = line.split("\t")
        if text in sentences:
            current = text
            by_original[current] = []
        else:
            by_original[current].append(text)
    assert list(by_original) == sentences and all(by_original.values())
    for original, variants in by_original.items():
        for variant in variants:
            changes = replaced(list(original), list(variant))  # same length: spacing kept, one character each
            assert changes
            for before, after in changes:
                assert before in ADMISSIBLE and after in ADMISSIBLE and before != after
    # p = 1: every content character of every variant changed; stop words and punctuation never did
    for original, variants in by_original.items():
        for variant in variants:
            for before, after in zip(original, variant):
                assert (before == after) == (not is_candidate(before))


def test_segmented_text_replaces_whole_words_only_from_the_word_vectors(tmp_path, assets, capsys):
    write_sst2(tmp_path, ["这部 电影 真 好看 ！"])
    lines = augment_cli(tmp_path, assets, "--segmented", "--glove_embs", assets["vectors"], "--M", "2")
    assert "note:" not in capsys.readouterr().out
    glove = load_glove(assets["vectors"], progress=False)
    from_vectors = {w for w in GLOVE_WORDS if is_cjk_replacement(w)}  # no ， 的 我们 ok 123
    neighbours = GloveNeighbours(glove, 2, 4).lookup(["电影", "好看"])
    assert all(len(found) == 2 and set(found) <= from_vectors for found in neighbours.values())
    variants = [line.split("\t")[0].split(" ") for line in lines[2:]]
    assert variants
    for words in variants:
        assert len(words) == 5 and words[0] == "这部" and words[4] == "！"  # segmentation kept; 这部 has no vectors
        assert words[1] in neighbours["电影"] and words[3] in neighbours["好看"]  # p = 1, whole words
        assert words[2] in ADMISSIBLE - {"真"}  # a single character: the masked LM's


def test_segmented_text_without_vectors_keeps_multi_character_words_and_says_how_many(tmp_path, assets, capsys):
    write_sst2(tmp_path, ["这部 电影 真 好看 ！", "故事 真 精彩"])
    lines = augment_cli(tmp_path, assets, "--segmented")
    assert "note: 5 of 7 candidate words" in capsys.readouterr().out  # all but the two 真
    for line in lines[3:]:
        words = line.split("\t")[0].split(" ")
        kept = [w for w in words if len(w) > 1]
        assert kept in (["这部", "电影", "好看"], ["故事", "精彩"])


def test_no_model_and_no_vectors_is_a_one_line_error(tmp_path):
    write_sst2(tmp_path, ["这部电影真好看"])
    with pytest.raises(SystemExit) as stopped:
        data_augmentation.main(["--pretrained_bert_model", "none", "--glue_dir", str(tmp_path), "--task_name", "SST-2"])
    assert stopped.value.code == 2


def test_the_row_level_api_works_on_texts_of_any_file_format(masked_lm):
    """What a JSON-lines task (CLUE) needs: text columns in, (column, new text) out, seeded per row."""
    finder = CandidateFinder(None, 4, 8, masked_lm)
    sampling = Sampling(n_samples=3, top_k=4, p=1.0, seed=7)
    rows = [["这部电影真好看", "故事很精彩"], ["猫在跑"]]
    out = augment_texts(rows, [10, 11], finder, sampling)
    assert [j for j, _ in out[0]] == sorted(j for j, _ in out[0]) and {j for j, _ in out[0]} == {0, 1}
    assert all(len(text) == len(rows[r][j]) for r in range(2) for j, text in out[r])
    assert augment_texts(rows[1:], [11], finder, sampling) == out[1:]  # a row's variants are its own


@pytest.mark.parametrize("task", ["AFQMC", "TNEWS", "CSL", "OCNLI"])
def test_a_clue_task_is_augmented_in_its_own_json_format(tmp_path, assets, task):
    """train_aug.json: every original row unchanged, then variants that differ only in a text field
    (CSL's keyword list is copied); it reads back with the task's reader; OCNLI's '-' rows dropped."""
    import json

    tiny.write_clue_task(str(tmp_path), task, n_train=12, n_dev=4)
    data_augmentation.main(["--pretrained_bert_model", assets["mlm"], "--glue_dir", str(tmp_path), "--task_name",
                            task.lower(), "--N", "2", "--p", "1", "--device", "cpu"])
    spec = get_task(task)
    with open(tmp_path / task / "train.json", encoding="utf-8") as handle:
        originals = [json.loads(line) for line in handle if json.loads(line)["label"] != "-"]
    with open(tmp_path / task / "train_aug.json", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert rows[0] == originals[0] and len(rows) > len(originals)
    varied = [name for name in spec.text_fields if isinstance(originals[0][name], str)]
    position = 0
    for row in rows:
        if position < len(originals) and row == originals[position]:
            current, position = originals[position], position + 1
            continue
        assert {k for k in row if row[k] != current[k]} <= set(varied) and row.keys() == current.keys()
    assert position == len(originals)  # every original, in order
    examples = read_examples(str(tmp_path / task / "train_aug.json"), spec).examples
    assert len(examples) == len(rows)
    if task == "CSL":
        assert all(isinstance(row["keyword"], list) for row in rows)


def test_cluewsc_is_refused_because_its_spans_would_move(tmp_path, assets, capsys):
    tiny.write_clue_task(str(tmp_path), "CLUEWSC2020", n_train=6, n_dev=2)
    with pytest.raises(SystemExit) as exit_info:
        data_augmentation.main(["--pretrained_bert_model", assets["mlm"], "--glue_dir", str(tmp_path),
                                "--task_name", "cluewsc2020", "--device", "cpu"])
    assert exit_info.value.code == 2 and "without --use_aug" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "CLUEWSC2020" / "train_aug.json")
