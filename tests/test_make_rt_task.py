"""scripts/make_rt_task.py: an SST-2-format task from the Rotten Tomatoes snippets."""
import bz2
import csv
import io
import json
import os

import pytest
from scripts_import import load_script

from tinybert.data.glue import load_split
from tinybert.data.tasks import get_task
from tinybert.errors import UserError

make_rt_task = load_script("make_rt_task")


def write_corpus(path, n_fresh=30, n_rotten=20, extra_rows=()):
    rows = [("plot", "A long synopsis.\n\nWith paragraphs.", "some_movie", "True")]
    rows += [("fresh", f"a fine film number {i}", f"m{i}", "True") for i in range(n_fresh)]
    rows += [("rotten", f"a dull film number {i}", f"r{i}", "False") for i in range(n_rotten)]
    rows += list(extra_rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["category", "text", "movie_name", "has_plot_and_reviews"])
    writer.writerows(rows)
    with bz2.open(path, "wt", encoding="utf-8") as handle:
        handle.write(buffer.getvalue())
    return str(path)


QUIRKS = [
    ("fresh", "a fine film number 1", "m1", "True"),  # exact duplicate of a fresh row
    ("fresh", "a fine film number 2", "other_movie", "True"),  # same text, other movie: still a duplicate
    ("rotten", 'tabs\there and "quotes"\nand a\r\nline break', "q", "False"),
    ("fresh", "loved and hated", "x", "True"),
    ("rotten", "loved and hated", "y", "False"),  # the same text with both labels: dropped
    ("plot", "another synopsis", "z", "False"),
]


def read_tsv(path):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n").split("\t") for line in handle]


def test_drops_plot_rows_duplicates_and_conflicts_and_maps_labels(tmp_path):
    source = write_corpus(tmp_path / "rt.csv.bz2", extra_rows=QUIRKS)
    record = make_rt_task.make_task(source, str(tmp_path / "SST-2"), dev_size=10, seed=1)
    assert record["snippets"] == 30 + 20 + 1
    assert record["dropped"]["plot"] == 2 and record["dropped"]["duplicates"] == 3
    assert record["dropped"]["conflicting"] == 1
    rows = read_tsv(tmp_path / "SST-2" / "train.tsv")[1:] + read_tsv(tmp_path / "SST-2" / "dev.tsv")[1:]
    labels = {text: label for text, label in rows}
    assert len(labels) == len(rows) == 51
    assert labels["a fine film number 3"] == "1" and labels["a dull film number 3"] == "0"
    assert "loved and hated" not in labels and not any("synopsis" in text for text in labels)


def test_sentences_are_one_line_without_tabs_with_the_sst2_header(tmp_path):
    source = write_corpus(tmp_path / "rt.csv.bz2", extra_rows=QUIRKS)
    make_rt_task.make_task(source, str(tmp_path / "SST-2"), dev_size=10, seed=1)
    for name in ("train.tsv", "dev.tsv"):
        rows = read_tsv(tmp_path / "SST-2" / name)
        assert rows[0] == ["sentence", "label"]
        assert all(len(row) == 2 for row in rows)
    texts = [row[0] for row in read_tsv(tmp_path / "SST-2" / "train.tsv") + read_tsv(tmp_path / "SST-2" / "dev.tsv")]
    assert 'tabs here and "quotes" and a line break' in texts


def test_split_is_seeded_disjoint_and_sized(tmp_path):
    source = write_corpus(tmp_path / "rt.csv.bz2")
    make_rt_task.make_task(source, str(tmp_path / "a"), dev_size=12, train_size=20, seed=3)
    make_rt_task.make_task(source, str(tmp_path / "b"), dev_size=12, train_size=20, seed=3)
    make_rt_task.make_task(source, str(tmp_path / "c"), dev_size=12, train_size=20, seed=4)
    a = {n: read_tsv(tmp_path / "a" / n)[1:] for n in ("train.tsv", "dev.tsv")}
    b = {n: read_tsv(tmp_path / "b" / n)[1:] for n in ("train.tsv", "dev.tsv")}
    c = {n: read_tsv(tmp_path / "c" / n)[1:] for n in ("train.tsv", "dev.tsv")}
    assert a == b and a != c
    assert len(a["train.tsv"]) == 20 and len(a["dev.tsv"]) == 12
    assert not {r[0] for r in a["train.tsv"]} & {r[0] for r in a["dev.tsv"]}


def test_train_size_zero_takes_all_the_rest(tmp_path):
    source = write_corpus(tmp_path / "rt.csv.bz2")
    record = make_rt_task.make_task(source, str(tmp_path / "SST-2"), dev_size=15)
    assert (record["train"], record["dev"]) == (35, 15)


def test_the_suite_reads_it_as_sst2(tmp_path):
    source = write_corpus(tmp_path / "rt.csv.bz2", extra_rows=QUIRKS)
    make_rt_task.main(["--source", source, "--output_dir", str(tmp_path / "glue" / "SST-2"), "--dev_size", "10"])
    spec = get_task("SST-2")
    train, = load_split(str(tmp_path / "glue"), spec, "train", allow_download=False)
    dev, = load_split(str(tmp_path / "glue"), spec, "dev", allow_download=False)
    assert len(train) == 41 and len(dev) == 10
    assert {e.label for e in train.examples} == {0, 1}
    assert json.load(open(tmp_path / "glue" / "SST-2" / "source.json"))["dev"] == 10


def test_dev_size_defaults_to_1000(tmp_path):
    args = make_rt_task.parse_args(["--output_dir", str(tmp_path)])
    assert args.dev_size == 1000


@pytest.mark.parametrize("argv, message", [
    (["--dev_size", "45", "--train_size", "10"], "not enough"),
    (["--dev_size", "0"], "at least 1"),
])
def test_impossible_sizes_are_one_line_errors(tmp_path, capsys, argv, message):
    source = write_corpus(tmp_path / "rt.csv.bz2")
    with pytest.raises(SystemExit) as exit_info:
        make_rt_task.main(["--source", source, "--output_dir", str(tmp_path / "SST-2")] + argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1
    assert not os.path.exists(tmp_path / "SST-2")


def test_missing_or_foreign_source_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="fetch_assets"):
        make_rt_task.make_task(str(tmp_path / "none.csv.bz2"), str(tmp_path / "out"))
    plain = tmp_path / "plain.csv.bz2"
    plain.write_text("category,text\n")
    with pytest.raises(UserError, match="not a readable"):
        make_rt_task.make_task(str(plain), str(tmp_path / "out"))
    wrong = tmp_path / "wrong.csv.bz2"
    with bz2.open(wrong, "wt") as handle:
        handle.write("label,sentence\n1,good\n")
    with pytest.raises(UserError, match="no column"):
        make_rt_task.make_task(str(wrong), str(tmp_path / "out"))


def test_an_unknown_category_names_the_row(tmp_path):
    source = write_corpus(tmp_path / "rt.csv.bz2", n_fresh=2, n_rotten=2,
                          extra_rows=[("spilled", "what is this", "m", "True")])
    with pytest.raises(UserError, match="data row 6: category 'spilled'"):
        make_rt_task.make_task(source, str(tmp_path / "out"), dev_size=1)
