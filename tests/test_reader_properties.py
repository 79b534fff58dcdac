"""Property tests (issue 5): any bytes in a TSV file are either parsed or a clear UserError."""
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinybert.data.glue import read_examples
from tinybert.data.tasks import TASKS
from tinybert.errors import UserError

cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["", "0", "1", "entailment", "neutral", "3.5", '"quoted"', "'", "\r", "a\tb", "x" * 5000])
rows = st.lists(st.lists(cells, min_size=0, max_size=12).map("\t".join), min_size=0, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(task=st.sampled_from(sorted(TASKS)), lines=rows, newline=st.sampled_from(["\n", "\r\n"]),
       raw_tail=st.binary(max_size=8))
def test_random_rows_parse_or_fail_with_a_user_error(task, lines, newline, raw_tail):
    spec = TASKS[task]
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "train.tsv")
        with open(path, "wb") as handle:
            handle.write(newline.join(lines).encode("utf-8") + raw_tail)
        try:
            found = read_examples(path, spec)
        except UserError as err:
            message = str(err)
            assert path in message and "\n" not in message
            return
        for example in found.examples:
            assert len(example.texts) == spec.num_texts and all(t.strip() for t in example.texts)
            if spec.is_regression:
                assert isinstance(example.label, float)
            else:
                assert 0 <= example.label < spec.num_labels


@settings(max_examples=30, deadline=None)
@given(lines=rows)
def test_skipping_bad_rows_never_fails_on_rows_and_counts_what_it_drops(lines):
    spec = TASKS["RTE"]
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "train.tsv")
        good = "0\tpremise here\thypothesis here\tentailment"
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(["header", good] + lines))
        found = read_examples(path, spec, skip_bad_rows=True)
        data_lines = [good] + "\n".join(lines).split("\n") if lines else [good]
        non_blank = [line for line in data_lines if line.rstrip("\r").strip()]
        assert len(found.examples) >= 1
        assert len(found.examples) + found.skipped == len(non_blank)
