"""The GLUE task table, the TSV reader and featurization/batching (docs/formats.md#glue-files)."""
import os

import numpy as np
import pytest
import tiny
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybert.data.features import collate, epoch_batches, featurize
from tinybert.data.glue import AUG_FILE, load_split, locate, read_examples
from tinybert.data.tasks import GLUE_TASKS, TASKS, get_task
from tinybert.errors import UserError

N_TRAIN, N_DEV = 12, 6


@pytest.fixture(scope="module")
def glue(tmp_path_factory):
    """Every task's fixture files, one QQP row with missing fields included."""
    directory = str(tmp_path_factory.mktemp("glue"))
    tiny.write_all_tasks(directory, n_train=N_TRAIN, n_dev=N_DEV, qqp_bad_row=True)
    return directory


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from paddlenlp.transformers import BertTokenizer

    vocab = tiny.write_vocab(str(tmp_path_factory.mktemp("vocab")))
    return BertTokenizer(vocab, do_lower_case=True)


def write(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": ""})) as handle:
        handle.write(content)
    return str(path)


def data_rows(path, has_header=True):
    """The data rows of a fixture file split on tabs: the reference the reader is checked against."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip()]
    return [line.split("\t") for line in lines[1 if has_header else 0:]]


# ------------------------------------------------------------------ task table
PADDLENLP_CONFIG_NAMES = {"CoLA": "cola", "SST-2": "sst-2", "MRPC": "mrpc", "STS-B": "sts-b", "QQP": "qqp",
                          "MNLI": "mnli", "QNLI": "qnli", "RTE": "rte", "WNLI": "wnli"}


def test_the_table_holds_exactly_the_tasks_of_paddlenlps_glue_dataset():
    from paddlenlp.datasets.glue import Glue

    assert {get_task(name).name for name in PADDLENLP_CONFIG_NAMES.values()} == set(GLUE_TASKS)
    assert set(PADDLENLP_CONFIG_NAMES.values()) <= set(Glue.BUILDER_CONFIGS)


@pytest.mark.parametrize("task", tiny.ALL_TASKS)
def test_label_order_equals_paddlenlp_glue_dataset(task):
    from paddlenlp.datasets.glue import Glue

    expected = Glue.BUILDER_CONFIGS[PADDLENLP_CONFIG_NAMES[task]]["labels"]
    labels = TASKS[task].labels
    assert (list(labels) if labels is not None else None) == expected


TEXT_HEADERS = ("sentence", "sentence1", "sentence2", "question", "question1", "question2", "#1 String",
                "#2 String")
LABEL_HEADERS = ("label", "Quality", "score", "is_duplicate", "gold_label")


@pytest.mark.parametrize("task", sorted(tiny.HEADERS))
def test_text_and_label_come_from_the_columns_the_real_header_names(tmp_path, task):
    """One row whose cells are their own header names: the reader must pick the sentence
    columns and the label column that GLUE's header names, whatever indices the table holds."""
    spec = get_task(task)
    header = list(tiny.HEADERS[task])
    label_value = "2.5" if spec.is_regression else spec.labels[-1]
    label_at = max(i for i, name in enumerate(header) if name in LABEL_HEADERS)
    row = [f"<{name}>" for name in header]
    row[label_at] = label_value
    path = write(tmp_path / "train.tsv", "\t".join(header) + "\n" + "\t".join(row) + "\n")
    example = read_examples(path, spec).examples[0]
    assert example.texts == tuple(f"<{name}>" for name in header if name in TEXT_HEADERS)
    assert example.label == (2.5 if spec.is_regression else len(spec.labels) - 1)


def test_cola_reads_the_sentence_from_its_fourth_column_and_has_no_header(tmp_path):
    path = write(tmp_path / "train.tsv", "gj04\t1\t\tthe cat sat\ngj04\t0\t*\tsat cat the\n")
    examples = read_examples(path, get_task("CoLA")).examples
    assert [(e.texts, e.label, e.line) for e in examples] == [(("the cat sat",), 1, 1), (("sat cat the",), 0, 2)]


def test_only_mnli_has_two_dev_files():
    assert {name: spec.dev_files for name, spec in GLUE_TASKS.items() if len(spec.dev_files) > 1} == {
        "MNLI": ("dev_matched.tsv", "dev_mismatched.tsv")}


@pytest.mark.parametrize("name, canonical", [
    ("sst-2", "SST-2"), ("Sst2", "SST-2"), ("SST-2", "SST-2"), ("mnli", "MNLI"), ("cola", "CoLA"),
    ("sts-b", "STS-B"), ("STSB", "STS-B"), ("qqp", "QQP"), ("Rte", "RTE"), ("wnli", "WNLI"),
])
def test_task_names_are_case_insensitive(name, canonical):
    assert get_task(name).name == canonical


@pytest.mark.parametrize("name", ["sst-3", "glue", "", "mnli-m"])
def test_unknown_task_is_a_user_error_listing_the_tasks(name):
    with pytest.raises(UserError, match="unknown task") as caught:
        get_task(name)
    assert all(task in str(caught.value) for task in tiny.ALL_TASKS)


# -------------------------------------------------------------- reading files
@pytest.mark.parametrize("task", tiny.ALL_TASKS)
def test_reader_parses_the_fixture_files_of_every_task(glue, task):
    spec = get_task(task)
    train, = load_split(glue, spec, "train", skip_bad_rows=True, allow_download=False)
    dev_sets = load_split(glue, spec, "dev", allow_download=False)
    assert len(train) == N_TRAIN
    assert [len(d) for d in dev_sets] == [N_DEV] * len(spec.dev_files)
    for example_set in [train] + dev_sets:
        rows = [r for r in data_rows(example_set.path, spec.has_header) if len(r) >= spec.min_columns]
        assert [ex.texts for ex in example_set.examples] == [tuple(r[c] for c in spec.text_columns) for r in rows]
        gold = [r[spec.label_column] for r in rows]
        if spec.is_regression:
            assert [ex.label for ex in example_set.examples] == [float(g) for g in gold]
        else:
            assert [spec.labels[ex.label] for ex in example_set.examples] == gold


def test_cola_has_no_header_so_its_first_line_is_an_example(glue):
    train = read_examples(os.path.join(glue, "CoLA", "train.tsv"), get_task("CoLA"))
    assert train.examples[0].line == 1
    assert len(train) == N_TRAIN


def test_mnli_reads_both_dev_files_with_the_label_in_the_last_column(glue):
    spec = get_task("MNLI")
    matched, mismatched = load_split(glue, spec, "dev", allow_download=False)
    assert os.path.basename(matched.path) == "dev_matched.tsv"
    assert os.path.basename(mismatched.path) == "dev_mismatched.tsv"
    rows = data_rows(matched.path)
    assert len(rows[0]) > 11  # index .. sentence2, annotator labels, gold_label
    assert [spec.labels[ex.label] for ex in matched.examples] == [r[-1] for r in rows]
    train_rows = data_rows(os.path.join(glue, "MNLI", "train.tsv"))
    assert len(train_rows[0]) == 11  # train has one label column less than dev


def test_mnli_label_comes_from_the_last_column_even_when_annotator_labels_differ(tmp_path):
    spec = get_task("MNLI")
    parse = ["( x )", "( y )", "(ROOT x)", "(ROOT y)"]
    row = ["0", "0", "0n", "fiction"] + parse + ["a cat", "a dog", "neutral", "neutral", "entailment", "neutral",
                                                 "neutral", "entailment"]
    path = write(tmp_path / "dev_matched.tsv", "\t".join(tiny.HEADERS["MNLI"]) + "\n" + "\t".join(row) + "\n")
    assert read_examples(path, spec).examples[0].label == spec.labels.index("entailment")


def test_stsb_labels_are_float_scores(glue):
    examples = read_examples(os.path.join(glue, "STS-B", "train.tsv"), get_task("STS-B")).examples
    assert examples[0].label == 5.0
    assert all(isinstance(ex.label, float) and 0 <= ex.label <= 5 for ex in examples)
    assert len({ex.label for ex in examples}) > 2


def test_qqp_row_with_missing_fields_is_an_error_naming_file_and_line(glue):
    path = os.path.join(glue, "QQP", "train.tsv")
    with pytest.raises(UserError) as caught:
        read_examples(path, get_task("QQP"))
    message = str(caught.value)
    assert f"{path}:4:" in message  # header is line 1, the bad row was inserted as line 4
    assert "--skip_bad_rows" in message


def test_qqp_row_with_missing_fields_is_skipped_and_counted_on_request(glue):
    found = read_examples(os.path.join(glue, "QQP", "train.tsv"), get_task("QQP"), skip_bad_rows=True)
    assert found.skipped == 1
    assert len(found) == N_TRAIN
    assert 4 not in [ex.line for ex in found.examples]


def test_skipped_rows_are_reported(glue, capsys):
    load_split(glue, get_task("QQP"), "train", skip_bad_rows=True, allow_download=False)
    assert "skipped 1 malformed row" in capsys.readouterr().out


def test_quote_characters_are_kept_verbatim(tmp_path, glue):
    path = write(tmp_path / "train.tsv", 'sentence\tlabel\n"it\'s good\t1\nsays "bad\t0\n"""\t1\n')
    texts = [ex.texts[0] for ex in read_examples(path, get_task("SST-2")).examples]
    assert texts == ['"it\'s good', 'says "bad', '"""']
    fixture = read_examples(os.path.join(glue, "SST-2", "train.tsv"), get_task("SST-2")).examples
    assert fixture[0].texts[0].endswith(' "quoted"')


def test_file_without_final_newline_keeps_its_last_row(tmp_path):
    tiny.write_task(str(tmp_path), "RTE", n_train=5, n_dev=3, final_newline=False)
    path = os.path.join(tmp_path, "RTE", "train.tsv")
    assert not open(path, "rb").read().endswith(b"\n")
    found = read_examples(path, get_task("RTE"))
    assert len(found) == 5
    assert found.examples[-1].texts == tuple(data_rows(path)[-1][1:3])


def test_crlf_line_endings_are_stripped(tmp_path):
    path = write(tmp_path / "train.tsv", "index\tsentence1\tsentence2\tlabel\r\n0\ta cat\ta dog\tentailment\r\n"
                                         "1\tthe mat\tsat on\tnot_entailment\r\n")
    examples = read_examples(path, get_task("RTE")).examples
    assert [ex.texts for ex in examples] == [("a cat", "a dog"), ("the mat", "sat on")]
    assert [ex.label for ex in examples] == [0, 1]


def test_non_utf8_bytes_are_an_error_naming_the_line(tmp_path):
    path = write(tmp_path / "train.tsv", b"sentence\tlabel\ngood\t1\ncaf\xe9 bad\t0\n")
    with pytest.raises(UserError, match="UTF-8") as caught:
        read_examples(path, get_task("SST-2"))
    assert f"{path}:3:" in str(caught.value)


@pytest.mark.parametrize("task, row", [
    ("SST-2", "a good film\t2"),
    ("MRPC", "yes\t1\t2\ta\tb"),
    ("RTE", "0\ta\tb\tcontradiction"),
    ("MNLI", "\t".join(["0"] * 8 + ["a", "b", "maybe"])),
    ("STS-B", "\t".join(["x"] * 7 + ["a", "b", "high"])),
])
def test_label_outside_the_label_set_is_an_error_naming_file_and_line(tmp_path, task, row):
    header = "\t".join(tiny.HEADERS[task])
    path = write(tmp_path / "train.tsv", f"{header}\n{row}\n")
    with pytest.raises(UserError) as caught:
        read_examples(path, get_task(task))
    assert f"{path}:2:" in str(caught.value)


def test_label_error_names_the_allowed_labels(tmp_path):
    path = write(tmp_path / "train.tsv", "sentence\tlabel\nfine\t1\nbad\tpositive\n")
    with pytest.raises(UserError, match=r":3: .*label 'positive' is not one of 0, 1"):
        read_examples(path, get_task("SST-2"))


@pytest.mark.parametrize("task, row", [("SST-2", " \t1"), ("RTE", "0\ta cat\t\tentailment")])
def test_empty_text_field_is_an_error_naming_the_line(tmp_path, task, row):
    path = write(tmp_path / "train.tsv", "\t".join(tiny.HEADERS[task]) + f"\n{row}\n")
    with pytest.raises(UserError, match="empty") as caught:
        read_examples(path, get_task(task))
    assert f"{path}:2:" in str(caught.value)


@pytest.mark.parametrize("content", ["", "sentence\tlabel\n", "sentence\tlabel", "\n\n"])
def test_empty_file_or_header_only_is_a_user_error(tmp_path, content):
    path = write(tmp_path / "train.tsv", content)
    with pytest.raises(UserError, match="no SST-2 examples"):
        read_examples(path, get_task("SST-2"))


def test_train_aug_file_is_read_with_the_train_format(glue, tmp_path):
    spec = get_task("MRPC")
    directory = tmp_path / "MRPC"
    directory.mkdir()
    with open(os.path.join(glue, "MRPC", "train.tsv"), encoding="utf-8") as handle:
        write(directory / AUG_FILE, handle.read())
    aug, = load_split(str(tmp_path), spec, "aug", allow_download=False)
    train, = load_split(glue, spec, "train", allow_download=False)
    assert aug.examples == train.examples


def test_missing_train_aug_tells_how_to_create_it(tmp_path):
    with pytest.raises(UserError, match="data_augmentation.py"):
        locate(str(tmp_path), get_task("SST-2"), AUG_FILE)


def test_missing_file_offline_names_the_directory_to_fill(tmp_path):
    with pytest.raises(UserError) as caught:
        locate(str(tmp_path), get_task("MNLI"), "dev_matched.tsv", allow_download=False)
    message = str(caught.value)
    assert os.path.join(str(tmp_path), "MNLI") in message
    assert "dev_mismatched.tsv" in message and "--glue_dir" in message


# ---------------------------------------------------------------- featurizing
def test_single_sentence_encoding_is_cls_text_sep(glue, tokenizer):
    examples = read_examples(os.path.join(glue, "SST-2", "dev.tsv"), get_task("SST-2")).examples[:3]
    features = featurize(examples, tokenizer, 128, regression=False)
    for example, ids, types in zip(examples, features.input_ids, features.token_type_ids):
        words = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(example.texts[0]))
        assert ids == [tokenizer.cls_token_id] + words + [tokenizer.sep_token_id]
        assert types == [0] * len(ids)


def test_pair_encoding_gives_the_second_segment_token_type_1(glue, tokenizer):
    examples = read_examples(os.path.join(glue, "MRPC", "dev.tsv"), get_task("MRPC")).examples[:3]
    features = featurize(examples, tokenizer, 128, regression=False)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    for example, ids, types in zip(examples, features.input_ids, features.token_type_ids):
        a, b = (tokenizer.convert_tokens_to_ids(tokenizer.tokenize(t)) for t in example.texts)
        assert ids == [cls] + a + [sep] + b + [sep]
        assert types == [0] * (len(a) + 2) + [1] * (len(b) + 1)


@pytest.mark.filterwarnings("ignore:Be aware, overflowing tokens")
def test_long_inputs_are_truncated_to_max_seq_length(tokenizer):
    from tinybert.data.glue import Example

    long_text = " ".join(["good movie"] * 60)
    single = featurize([Example((long_text,), 1, 2)], tokenizer, 16, regression=False)
    pair = featurize([Example((long_text, long_text), 1, 2)], tokenizer, 16, regression=False)
    for features in (single, pair):
        assert len(features.input_ids[0]) == 16
        assert features.input_ids[0][0] == tokenizer.cls_token_id
        assert features.input_ids[0][-1] == tokenizer.sep_token_id
    assert pair.input_ids[0].count(tokenizer.sep_token_id) == 2
    assert 1 in pair.token_type_ids[0]


def test_labels_are_int64_for_classification_and_float32_for_stsb(glue, tokenizer):
    sst = read_examples(os.path.join(glue, "SST-2", "dev.tsv"), get_task("SST-2")).examples
    sts = read_examples(os.path.join(glue, "STS-B", "dev.tsv"), get_task("STS-B")).examples
    classification = featurize(sst, tokenizer, 64, regression=False).labels
    regression = featurize(sts, tokenizer, 64, regression=True).labels
    assert classification.dtype == np.int64
    assert regression.dtype == np.float32
    np.testing.assert_allclose(regression, [ex.label for ex in sts], rtol=1e-6)


def test_a_batch_is_padded_to_its_own_longest_example_not_max_seq_length(glue, tokenizer):
    examples = read_examples(os.path.join(glue, "SST-2", "train.tsv"), get_task("SST-2")).examples
    features = featurize(examples, tokenizer, 128, regression=False)
    indices = [0, 1, 2, 3]
    batch = collate(features, indices, tokenizer.pad_token_id)
    longest = max(len(features.input_ids[i]) for i in indices)
    assert longest < 128
    assert batch["input_ids"].shape == (4, longest)
    for row, i in enumerate(indices):
        n = len(features.input_ids[i])
        assert batch["input_ids"][row, :n].tolist() == features.input_ids[i]
        assert (batch["input_ids"][row, n:] == tokenizer.pad_token_id).all()
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (longest - n)
        assert (batch["token_type_ids"][row, n:] == 0).all()
    assert batch["labels"].tolist() == [features.labels[i] for i in indices]
    assert batch["index"].tolist() == indices


def test_collate_pads_to_a_fixed_width_on_request(glue, tokenizer):
    examples = read_examples(os.path.join(glue, "SST-2", "dev.tsv"), get_task("SST-2")).examples
    features = featurize(examples, tokenizer, 64, regression=False)
    assert collate(features, [0, 1], tokenizer.pad_token_id, pad_to=64)["input_ids"].shape == (2, 64)


# ------------------------------------------------------------------- batching
lengths_strategy = st.lists(st.integers(min_value=1, max_value=128), min_size=1, max_size=300)


@settings(max_examples=60, deadline=None)
@given(lengths=lengths_strategy, batch_size=st.integers(1, 40), seed=st.integers(0, 2**31), epoch=st.integers(0, 50),
       bucket=st.booleans())
def test_epoch_batches_cover_every_example_exactly_once(lengths, batch_size, seed, epoch, bucket):
    batches = epoch_batches(np.array(lengths), batch_size, seed, epoch, bucket=bucket)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert len(batches) == -(-len(lengths) // batch_size)


@settings(max_examples=30, deadline=None)
@given(lengths=lengths_strategy, batch_size=st.integers(1, 40), seed=st.integers(0, 2**31), epoch=st.integers(0, 50))
def test_epoch_batches_are_a_pure_function_of_seed_and_epoch(lengths, batch_size, seed, epoch):
    first = epoch_batches(np.array(lengths), batch_size, seed, epoch)
    epoch_batches(np.array(lengths), batch_size, seed + 1, epoch + 1)  # no hidden state between calls
    again = epoch_batches(np.array(lengths), batch_size, seed, epoch)
    assert [b.tolist() for b in first] == [b.tolist() for b in again]


def test_epoch_batches_differ_between_epochs_and_seeds():
    lengths = np.random.default_rng(0).integers(1, 100, size=200)
    order = lambda seed, epoch: np.concatenate(epoch_batches(lengths, 8, seed, epoch)).tolist()  # noqa: E731
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)


def padding(lengths, batches):
    return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)


def test_bucketing_by_length_reduces_total_padding():
    lengths = np.random.default_rng(0).integers(3, 128, size=2000)
    for epoch in range(3):
        bucketed = padding(lengths, epoch_batches(lengths, 32, seed=7, epoch=epoch, bucket=True))
        plain = padding(lengths, epoch_batches(lengths, 32, seed=7, epoch=epoch, bucket=False))
        assert bucketed < 0.25 * plain


def test_bucketed_batches_still_come_in_random_order():
    lengths = np.arange(1, 1001)
    batches = epoch_batches(lengths, 10, seed=0, epoch=0, bucket=True)
    longest = [int(lengths[b].max()) for b in batches]
    assert longest != sorted(longest)
