"""CLUE classification tasks: the task table, the JSON-lines reader, locating and downloading
(docs/formats.md#clue-files). Fixtures are generated CLUE files with Chinese text (tests/tiny.py)."""
import json
import os

import pytest
import tiny

from tinybert.data import glue as data
from tinybert.data.glue import iter_examples, load_split, locate, read_examples
from tinybert.data.tasks import CLUE_TASKS, get_task
from tinybert.errors import UserError


def json_rows(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def paddlenlp_wsc_text(row):
    """CLUEWSC2020's text as PaddleNLP's CLUE classifier builds it (character insertions):
    the independent reference for the reader's span marking."""
    text, target = row["text"], row["target"]
    query, q = target["span1_text"], target["span1_index"]
    pronoun, p = target["span2_text"], target["span2_index"]
    chars = list(text)
    if p > q:
        chars.insert(q, "_")
        chars.insert(q + len(query) + 1, "_")
        chars.insert(p + 2, "[")
        chars.insert(p + len(pronoun) + 2 + 1, "]")
    else:
        chars.insert(p, "[")
        chars.insert(p + len(pronoun) + 1, "]")
        chars.insert(q + 2, "_")
        chars.insert(q + len(query) + 2 + 1, "_")
    return "".join(chars)


def expected_texts(task, row):
    if task == "CLUEWSC2020":
        return (paddlenlp_wsc_text(row),)
    if task == "CSL":
        return (" ".join(row["keyword"]), row["abst"])
    if "sentence1" in row:
        return (row["sentence1"], row["sentence2"])
    return (row["sentence"],)


@pytest.mark.parametrize("task", tiny.CLUE_TASKS)
def test_label_order_and_file_names_equal_paddlenlps_clue_dataset(task):
    """Teachers fine-tuned with PaddleNLP's CLUE datasets use this label order."""
    from paddlenlp.datasets.clue import Clue

    config = Clue.BUILDER_CONFIGS[task.lower()]
    assert list(get_task(task).labels) == config["labels"]
    assert os.path.basename(config["splits"]["dev"][0]) == get_task(task).dev_files[0]


def test_the_table_holds_every_classification_task_of_paddlenlps_clue():
    from paddlenlp.datasets.clue import Clue

    assert {name.lower() for name in CLUE_TASKS} == set(Clue.BUILDER_CONFIGS) == {t.lower() for t in tiny.CLUE_TASKS}


@pytest.mark.parametrize("task", tiny.CLUE_TASKS)
def test_every_clue_task_reads_its_json_lines_as_published(tmp_path, task):
    tiny.write_clue_task(str(tmp_path), task, n_train=12, n_dev=5)
    spec = get_task(task.lower())  # matched case-insensitively, like GLUE names
    train, = load_split(str(tmp_path), spec, "train")
    rows = json_rows(os.path.join(tmp_path, task, "train.json"))
    kept = [(number, row) for number, row in enumerate(rows, start=1) if row["label"] != "-"]
    assert [ex.line for ex in train.examples] == [number for number, _ in kept]
    assert [ex.texts for ex in train.examples] == [expected_texts(task, row) for _, row in kept]
    assert [spec.labels[ex.label] for ex in train.examples] == [row["label"] for _, row in kept]
    assert all(len(ex.texts) == spec.num_texts for ex in train.examples)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in train.examples[0].texts[0])


@pytest.mark.parametrize("task", ["OCNLI", "CMNLI"])
def test_nli_rows_without_a_gold_label_are_dropped_and_counted(tmp_path, capsys, task):
    tiny.write_clue_task(str(tmp_path), task, n_train=10, n_dev=4, unlabelled=3)
    path = os.path.join(tmp_path, task, "dev.json")
    counts = {}
    examples = list(iter_examples(path, get_task(task), counts=counts))
    assert len(examples) == 4 and counts == {"skipped": 0, "dropped": 3}
    assert f"{path}: dropped 3 row(s) labelled '-'" in capsys.readouterr().out


def test_wsc_marks_the_later_span_first_whichever_comes_first():
    spec = get_task("cluewsc2020")
    for row in ({"text": "小猫说它饿了", "target": {"span1_text": "小猫", "span1_index": 0, "span2_text": "它",
                                                     "span2_index": 3}, "label": "true"},
                {"text": "它说小猫饿了", "target": {"span1_text": "小猫", "span1_index": 2, "span2_text": "它",
                                                     "span2_index": 0}, "label": "false"}):
        texts, label = data.parse_json_row(json.dumps(row, ensure_ascii=False), spec)
        assert texts == (paddlenlp_wsc_text(row),) and label == spec.labels.index(row["label"])
    assert texts == ("[它]说_小猫_饿了",)


@pytest.mark.parametrize("line, problem", [
    ('{"sentence1": "好", "sentence2": "坏"', "is not a JSON object"),
    ('["好", "坏", "0"]', "is not a JSON object"),
    ('{"sentence1": "好", "sentence2": "坏"}', "has no 'label'"),
    ('{"sentence1": "好", "label": "0"}', "has no 'sentence2' text"),
    ('{"sentence1": " ", "sentence2": "坏", "label": "0"}', "field 'sentence1' is empty"),
    ('{"sentence1": "好", "sentence2": "坏", "label": "2"}', "label '2' is not one of 0, 1"),
])
def test_a_bad_json_row_names_file_line_and_problem(tmp_path, line, problem):
    path = tmp_path / "train.json"
    path.write_text('{"sentence1": "好", "sentence2": "棒", "label": "1"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(UserError) as caught:
        read_examples(str(path), get_task("AFQMC"))
    message = str(caught.value)
    assert message.startswith(f"{path}:2: row ") and problem in message and "--skip_bad_rows" in message
    found = read_examples(str(path), get_task("AFQMC"), skip_bad_rows=True)
    assert len(found) == 1 and found.skipped == 1


def test_a_wsc_span_that_is_not_at_its_index_is_a_row_error(tmp_path):
    path = tmp_path / "dev.json"
    row = {"text": "小猫说它饿了", "target": {"span1_text": "小猫", "span1_index": 1, "span2_text": "它",
                                             "span2_index": 3}, "label": "true"}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"dev.json:1: row target.span1_text '小猫' is not at span1_index 1"):
        read_examples(str(path), get_task("CLUEWSC2020"))


def test_integer_labels_are_read_like_their_text(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('{"sentence": "好看", "label": 108}\n', encoding="utf-8")
    assert read_examples(str(path), get_task("tnews")).examples[0].label == get_task("TNEWS").labels.index("108")


def test_missing_clue_files_say_where_they_go_and_augmentation_writes_json(tmp_path):
    spec = get_task("afqmc")
    with pytest.raises(UserError) as caught:
        locate(str(tmp_path), spec, spec.train_file)
    assert f"{tmp_path}/AFQMC/train.json does not exist; put the AFQMC files (train.json, dev.json) in " \
           f"{tmp_path}/AFQMC" in str(caught.value) and "CLUE" in str(caught.value)
    tiny.write_clue_task(str(tmp_path), "AFQMC", n_train=3, n_dev=2)
    assert spec.aug_file == "train_aug.json"
    with pytest.raises(UserError, match=r"AFQMC/train_aug.json does not exist; run data_augmentation.py"):
        data.locate_split(str(tmp_path), spec, "aug")


def test_default_dir_downloads_clue_through_paddlenlp_and_places_the_published_file(tmp_path, monkeypatch):
    """PaddleNLP keeps CLUE under DATA_HOME/Clue/<task>_public/ (OCNLI's train is train.50k.json);
    the file is copied to <DATA_HOME>/Glue/OCNLI/train.json, where augmentation writes beside it."""
    import paddlenlp.datasets

    home = tmp_path / "DATA_HOME"
    monkeypatch.setattr(data, "data_home", lambda: str(home))
    calls = []

    def fake_load_dataset(name, config, splits):
        calls.append((name, config, splits))
        source = tiny.write_clue_task(str(tmp_path / "published"), "OCNLI", n_train=5, n_dev=2)
        os.makedirs(home / "Clue" / "ocnli_public", exist_ok=True)
        os.replace(os.path.join(source, "train.json"), home / "Clue" / "ocnli_public" / "train.50k.json")

    monkeypatch.setattr(paddlenlp.datasets, "load_dataset", fake_load_dataset)
    path = locate(None, get_task("ocnli"), "train.json")
    assert calls == [("clue", "ocnli", ("train",))]
    assert path == str(home / "Glue" / "OCNLI" / "train.json") and len(read_examples(path, get_task("OCNLI"))) == 5
    assert not [name for name in os.listdir(home / "Glue" / "OCNLI") if name.endswith(".part")]


def test_default_dir_offline_says_where_clue_files_go(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "data_home", lambda: str(tmp_path / "DATA_HOME"))
    monkeypatch.setattr(data, "_download_with_paddlenlp", lambda spec, split: None)
    with pytest.raises(UserError, match=r"CLUE could not be downloaded \(offline\?\); put the CSL files "
                                         r"\(train.json, dev.json\) in .*DATA_HOME/Glue/CSL"):
        locate(None, get_task("csl"), "dev.json")
