"""Task files: locating them and reading them into examples (docs/formats.md#glue-files).

One entry point, :func:`iter_examples`, reads every file of every task and dispatches on the
task's ``file_format``: GLUE's TSV (``train.tsv``, the dev files, ``train_aug.tsv``) and
CLUE's JSON lines (``train.json``, ``dev.json``, ``train_aug.json``), so the token store,
training and evaluation never see the difference. GLUE text may contain quote characters, so
rows are split on tabs only, never with csv quoting. Every problem names the file and the
1-based line number.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

from ..errors import UserError
from .tasks import TaskSpec

AUG_FILE = "train_aug.tsv"  # GLUE's; a task's own is ``spec.aug_file``


@dataclass(frozen=True)
class Example:
    texts: Tuple[str, ...]  # one text (single-sentence tasks) or two (pair tasks)
    label: Union[int, float]  # label index, or the score for regression
    line: int  # 1-based line number in the source file


@dataclass
class ExampleSet:
    path: str
    examples: List[Example]
    skipped: int = 0  # malformed rows dropped because the user asked to skip them

    def __len__(self) -> int:
        return len(self.examples)


def data_home() -> str:
    """PaddleNLP's dataset home (``DATA_HOME``), under which ``load_dataset`` stores downloads."""
    try:
        from paddlenlp.utils.env import DATA_HOME
    except Exception:  # pragma: no cover - paddlenlp missing or broken
        DATA_HOME = os.path.join(os.path.expanduser("~"), ".paddlenlp", "datasets")
    return DATA_HOME


def default_glue_dir() -> str:
    """Where ``load_dataset("glue", ...)`` stores GLUE; CLUE tasks sit beside GLUE's there."""
    return os.path.join(data_home(), "Glue")


def task_dir(glue_dir: Optional[str], spec: TaskSpec) -> str:
    return os.path.join(glue_dir or default_glue_dir(), spec.name)


def parse_label(raw: str, spec: TaskSpec) -> Union[int, float]:
    """Label text -> index (classification) or float score (regression); ValueError if bad."""
    raw = raw.strip()
    if spec.is_regression:
        value = float(raw)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"score '{raw}' is not a finite number")
        return value
    if raw not in spec.labels:
        raise ValueError(f"label '{raw}' is not one of {', '.join(spec.labels)}")
    return spec.labels.index(raw)


def parse_row(line: str, spec: TaskSpec) -> Tuple[Tuple[str, ...], Union[int, float]]:
    """Split one data line into (texts, label). ValueError says what is wrong with it."""
    columns = line.split("\t")
    if len(columns) < spec.min_columns:
        raise ValueError(
            f"has {len(columns)} tab-separated column(s), {spec.name} needs at least {spec.min_columns}"
        )
    texts = tuple(columns[i].strip() for i in spec.text_columns)
    for column, text in zip(spec.text_columns, texts):
        if not text:
            raise ValueError(f"text column {column} is empty")
    return texts, parse_label(columns[spec.label_column], spec)


def marked_wsc_text(row: dict) -> str:
    """CLUEWSC2020's text with the candidate noun as ``_noun_`` and the pronoun as ``[pronoun]``.

    PaddleNLP's CLUE classifier feeds the task this way (one sentence, both spans marked), so
    a teacher fine-tuned there sees the same text here. ValueError if a span is not where
    its index says.
    """
    text, target = row.get("text"), row.get("target")
    if not isinstance(text, str) or not isinstance(target, dict):
        raise ValueError("has no 'text' string and 'target' object")
    spans = []
    for number, mark in ((1, "_{}_"), (2, "[{}]")):
        span, index = target.get(f"span{number}_text"), target.get(f"span{number}_index")
        if not isinstance(span, str) or not span or not isinstance(index, int) or isinstance(index, bool):
            raise ValueError(f"target.span{number}_text/span{number}_index are missing")
        if text[index:index + len(span)] != span:
            raise ValueError(f"target.span{number}_text '{span}' is not at span{number}_index {index} of the text")
        spans.append((index, span, mark))
    for index, span, mark in sorted(spans, reverse=True):  # the later span first keeps the earlier index valid
        text = text[:index] + mark.format(span) + text[index + len(span):]
    return text


def _json_text(row: dict, name: str) -> str:
    value = row.get(name)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = " ".join(value)  # CSL's keyword list, joined as PaddleNLP's CLUE classifier does
    if not isinstance(value, str):
        raise ValueError(f"has no '{name}' text" if value is None else f"field '{name}' is not text")
    return value


def parse_json_row(line: str, spec: TaskSpec) -> Optional[Tuple[Tuple[str, ...], Union[int, float]]]:
    """One JSON-lines row into (texts, label); None for a row labelled ``spec.drop_label``."""
    try:
        row = json.loads(line)
    except ValueError:
        raise ValueError("is not a JSON object (CLUE files hold one JSON object per line)") from None
    if not isinstance(row, dict):
        raise ValueError("is not a JSON object (CLUE files hold one JSON object per line)")
    if "label" not in row or isinstance(row["label"], (dict, list, bool)) or row["label"] is None:
        raise ValueError("has no 'label'")
    raw = str(row["label"])
    if spec.drop_label is not None and raw.strip() == spec.drop_label:
        return None
    texts = (marked_wsc_text(row),) if spec.mark_spans else tuple(_json_text(row, f).strip() for f in spec.text_fields)
    for name, text in zip(spec.text_fields, texts):
        if not text.strip():
            raise ValueError(f"field '{name}' is empty")
    return texts, parse_label(raw, spec)


def open_data_file(path: str):
    """``path`` opened for reading bytes, or the one-line error a user can act on."""
    try:
        return open(path, "rb")
    except IsADirectoryError:
        raise UserError(f"{path} is a directory, expected a task data file (.tsv or .json)") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}; check the path and its permissions") from None


def check_readable(path: str) -> None:
    """Fail now, with the reader's message, if ``path`` cannot be read."""
    open_data_file(path).close()


def decoded_lines(path: str):
    """Yield (1-based line number, text) with the line ending removed; errors name the line.

    The file is streamed: memory does not grow with its size.
    """
    handle = open_data_file(path)
    with handle:
        for number, chunk in enumerate(handle, start=1):
            try:
                yield number, chunk.rstrip(b"\n").decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                raise UserError(
                    f"{path}:{number}: bytes that are not UTF-8; re-encode the file as UTF-8 "
                    f"(e.g. iconv -f latin1 -t utf-8)"
                )


def iter_examples(path: str, spec: TaskSpec, skip_bad_rows: bool = False, counts: Optional[dict] = None):
    """Stream the examples of a file of ``spec``'s task, in the task's format (TSV or JSON lines).

    A malformed row is an error naming file and line unless ``skip_bad_rows`` is set; then it
    is counted in ``counts["skipped"]`` (real QQP train has rows with missing fields). Rows
    without a gold label (OCNLI/CMNLI ``-``) are dropped, counted in ``counts["dropped"]``
    and reported once. A file without a single example is an error once the stream ends.
    """
    if not os.path.exists(path):
        raise UserError(f"{path} does not exist")
    counts = counts if counts is not None else {}
    counts.setdefault("skipped", 0)
    counts.setdefault("dropped", 0)
    parse = parse_json_row if spec.file_format == "jsonl" else parse_row
    header_pending, found = spec.has_header, 0
    for number, line in decoded_lines(path):
        if not line.strip():
            continue  # blank lines
        if header_pending:
            header_pending = False
            continue
        try:
            parsed = parse(line, spec)
            if parsed is None:
                counts["dropped"] += 1
                continue
            texts, label = parsed
        except ValueError as err:
            if skip_bad_rows:
                counts["skipped"] += 1
                continue
            raise UserError(
                f"{path}:{number}: row {err}; fix the row or pass --skip_bad_rows to drop such rows"
            )
        found += 1
        yield Example(texts, label, number)
    if counts["dropped"]:
        print(f"{path}: dropped {counts['dropped']} row(s) labelled '{spec.drop_label}' (no gold label)")
    if not found:
        raise UserError(f"{path} holds no {spec.name} examples; it is empty or has only a header")


def read_examples(path: str, spec: TaskSpec, skip_bad_rows: bool = False) -> ExampleSet:
    """All examples of a task file (see :func:`iter_examples`), with the skipped count."""
    counts: dict = {}
    examples: List[Example] = list(iter_examples(path, spec, skip_bad_rows, counts))
    return ExampleSet(path, examples, counts["skipped"])


def _download_with_paddlenlp(spec: TaskSpec, split: str) -> Optional[str]:
    """Ask PaddleNLP to download the task (works online only); return its data dir or None.

    GLUE lands in ``<DATA_HOME>/Glue/<TASK>/`` under the names we read. PaddleNLP keeps CLUE
    as published (``<DATA_HOME>/Clue/afqmc_public/train.json``; OCNLI's train file is
    ``train.50k.json``), so the file of ``split`` is copied to ``<DATA_HOME>/Glue/<TASK>/``
    under our name, where augmentation can write beside it.
    """
    import logging

    download_log = logging.getLogger("paddle.utils.download")  # logs every retry at INFO on stderr
    level = download_log.level
    download_log.setLevel(logging.ERROR)
    try:
        from paddlenlp.datasets import load_dataset

        load_dataset(spec.benchmark, spec.name.lower(), splits=(split,))
        if spec.benchmark == "clue":
            _place_clue_file(spec, split)
    except Exception:
        return None
    finally:
        download_log.setLevel(level)
    directory = task_dir(default_glue_dir(), spec)
    return directory if os.path.isdir(directory) else None


def _place_clue_file(spec: TaskSpec, split: str) -> None:
    """Copy PaddleNLP's downloaded CLUE file of ``split`` into the task's directory (atomically)."""
    import shutil

    from paddlenlp.datasets.clue import Clue

    published = Clue.BUILDER_CONFIGS[spec.name.lower()]["splits"][split][0]
    target = os.path.join(task_dir(default_glue_dir(), spec), SPLIT_FILES[split](spec)[0])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(os.path.join(data_home(), "Clue", published), f"{target}.part")
    os.replace(f"{target}.part", target)


def locate(glue_dir: Optional[str], spec: TaskSpec, filename: str, allow_download: bool = True) -> str:
    """Path of ``filename`` for the task.

    Under the default glue_dir (PaddleNLP's ``DATA_HOME/Glue``) a missing file is downloaded
    with ``paddlenlp.datasets.load_dataset`` when online (GLUE or CLUE, the task's
    ``benchmark``). A directory the user gave with ``--glue_dir`` is never filled behind
    their back.
    """
    path = os.path.join(task_dir(glue_dir, spec), filename)
    if os.path.exists(path):  # a directory or unreadable file is reported by the reader
        return path
    if filename == spec.aug_file:
        raise UserError(
            f"{path} does not exist; run data_augmentation.py --task_name {spec.name} "
            f"--glue_dir {glue_dir or default_glue_dir()} first, or drop --use_aug"
        )
    files = f"{spec.name} files ({spec.train_file}, {', '.join(spec.dev_files)})"
    is_default = glue_dir is None or os.path.abspath(glue_dir) == os.path.abspath(default_glue_dir())
    if allow_download and is_default:
        split = "train" if filename == spec.train_file else os.path.splitext(filename)[0]
        print(f"{path} not found: trying paddlenlp.datasets.load_dataset('{spec.benchmark}', "
              f"'{spec.name.lower()}') ...")
        if _download_with_paddlenlp(spec, split) and os.path.isfile(path):
            print(f"downloaded {spec.name} to {task_dir(glue_dir, spec)}")
            return path
        raise UserError(
            f"{path} does not exist and {spec.benchmark.upper()} could not be downloaded (offline?); put the "
            f"{files} in {task_dir(glue_dir, spec)} or pass --glue_dir"
        )
    raise UserError(
        f"{path} does not exist; put the {files} in {task_dir(glue_dir, spec)}, or pass another --glue_dir "
        f"(without it PaddleNLP downloads {spec.benchmark.upper()} when online)"
    )


SPLIT_FILES = {"train": lambda spec: (spec.train_file,), "aug": lambda spec: (spec.aug_file,),
               "dev": lambda spec: tuple(spec.dev_files)}


def locate_split(glue_dir: Optional[str], spec: TaskSpec, split: str, allow_download: bool = True) -> List[str]:
    """Paths of ``train``, ``aug`` (the task's ``aug_file``) or ``dev`` (every dev file of the task)."""
    return [locate(glue_dir, spec, name, allow_download) for name in SPLIT_FILES[split](spec)]


def load_split(
    glue_dir: Optional[str],
    spec: TaskSpec,
    split: str,
    skip_bad_rows: bool = False,
    allow_download: bool = True,
) -> List[ExampleSet]:
    """Read ``train``, ``aug`` (the task's ``aug_file``) or ``dev`` (every dev file of the task)."""
    sets = []
    for path in locate_split(glue_dir, spec, split, allow_download):
        found = read_examples(path, spec, skip_bad_rows)
        if found.skipped:
            print(f"{path}: skipped {found.skipped} malformed row(s) (--skip_bad_rows)")
        sets.append(found)
    return sets
